"""modelplane: the machine-learning model lifecycle as Kubernetes resources."""

__version__ = "0.1.0"
