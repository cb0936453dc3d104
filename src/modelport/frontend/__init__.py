"""The front end: the router in front of a target's services (Azure ML's ``azureml-fe``).

The same code runs inside the local agent and, on a cluster, as a Deployment: it authenticates
requests, routes ``/api/v1/service/<name>/score`` to ready replicas, queues, enforces timeouts,
exports metrics and feeds the autoscaler.
"""
