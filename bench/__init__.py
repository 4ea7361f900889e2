"""Benchmarks run by hand (`python -m bench.<name>`), not tests: they print numbers and assert none."""
