"""modelplane.api."""
