"""What users build: nodes, pipelines, nesting, map specs, the graph and its checks."""
