"""The Kubernetes compute target: manifests, the init container's fetch program, the driver."""
