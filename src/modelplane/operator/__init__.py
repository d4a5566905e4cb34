"""The kopf operator: thin handlers, one module per kind, that parse, call core, apply, patch.

Run it with `python -m modelplane.operator` or `modelplane operator`.
"""
