"""Unit tests of modelplane.core.

A package, so its modules are imported as `core.test_*` and may share base names with the
integration tests in tests/operator (test_runs.py, test_experiments.py) without colliding.
"""
