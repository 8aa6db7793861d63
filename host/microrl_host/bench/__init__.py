"""Benchmarks: learning on the mirror, speed of device code, and suites run on a board."""
