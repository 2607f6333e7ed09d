"""auditveil's throughput and memory benchmark (apart from the tests; see docs/performance.md).

Run with ``python -m bench`` from the repository root. It generates synthetic CloudTrail and
Vault audit logs, runs the hand-written reference loop (``bench/reference/baseline.py``) and
``auditveil run`` on the same input in the same invocation, alternating, and reports ratios:
auditveil events/s ÷ baseline events/s. Absolute times alone mean little on a shared machine.
"""
