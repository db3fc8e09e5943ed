"""``python -m benchmarks.throughput`` (options: ``--help``)."""

from benchmarks.throughput.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
