"""Handlers for modelversions."""
