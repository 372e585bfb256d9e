"""Benchmarks (scripts run from the repository root) and the helpers they share.

A package so that worker processes can import the benchmarks' task modules
(``bench.handlers``, ``bench.peer_q2``, ...) by name; pytest only collects ``tests/``.
"""
