"""modelplane.operator."""
