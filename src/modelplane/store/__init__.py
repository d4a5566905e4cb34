"""modelplane.store."""
