"""Benchmark statistics over models x tasks: ranks and intervals (stats.py), rank and paired tests (rank_tests.py)."""
