"""Service lifecycle above the target drivers: desired state, deploy, update, delete, states, errors.

Deploy, update and delete write the desired state into the workspace and return at once; a
target driver (local agent, Kubernetes) reconciles it and reports the observed state. States,
error codes, defaults and validation live here, once, for every target.
"""
