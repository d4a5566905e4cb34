"""modelplane.core."""
