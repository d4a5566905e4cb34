"""modelplane.cli."""
