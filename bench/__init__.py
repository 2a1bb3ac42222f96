"""pytest-benchmark suite: `pytest bench` (see conftest.py)."""
