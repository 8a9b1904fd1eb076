"""Observation: callbacks, the events the run loops emit, and how hooks are called."""
