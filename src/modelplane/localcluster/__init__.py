"""modelplane.localcluster."""
