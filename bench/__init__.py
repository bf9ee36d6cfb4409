"""Benchmarks of nav-rewards; run them as modules, e.g. `python -m bench.leaderboards`."""
