"""Handlers for runs."""
