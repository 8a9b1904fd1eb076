"""Execution: compiled plans, the run context, step layers, every step and item loop, the
executors that submit work, and the remote kit that runs items in other processes."""
