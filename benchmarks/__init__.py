"""Accord's benchmarks: each prints a table with a ratio against a baseline measured in the same run."""
