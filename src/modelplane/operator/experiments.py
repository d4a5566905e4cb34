"""Handlers for experiments."""
