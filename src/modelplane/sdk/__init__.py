"""modelplane.sdk."""
