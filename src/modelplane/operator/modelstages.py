"""Handlers for modelstages."""
