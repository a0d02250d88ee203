"""A two-tower retrieval model (user tower, item tower) on synthetic interactions, exported with embedrt.

Run it: `python examples/two_tower/run.py` (trains in seconds, exports both towers, recommends, evaluates).
"""
