"""Benchmarks behind `cityedge bench ...`; each prints one JSON object."""
