"""Tests of the benchmarks' pure helpers (bench/common.py); the benchmarks themselves are run
by hand, not by the test suite: speed is measured in benchmarks, not in timed tests."""
