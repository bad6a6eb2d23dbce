"""Benchmarks: each module runs one scenario set, prints a table and writes JSON to bench/results/."""
