"""Compute targets: where services run (``local`` processes on this machine, or a Kubernetes cluster)."""
