"""Benchmarks of the gateway (run from the repository's root): ``throughput``
(the whole system, ``python -m benchmarks.throughput``), ``stages``,
``relay_bench`` and ``audit_bench`` (parts alone, each a script)."""
