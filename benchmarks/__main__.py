"""Run every benchmark: ``python -m benchmarks`` (or ``make bench``)."""

from __future__ import annotations

import sys

from benchmarks import bench_cli, bench_datasets, bench_model, bench_registry


def main() -> int:
    bench_cli.main([])
    bench_registry.main(sys.argv[1:])
    bench_datasets.main(sys.argv[1:])
    bench_model.main([])
    __import__("benchmarks.bench_attribution").bench_attribution.main(["--faiss-sizes", "10000,100000"])
    __import__("benchmarks.bench_guard").bench_guard.main(["--sizes", "10000,100000"])
    __import__("benchmarks.bench_royalties").bench_royalties.main(["--events", "1000000"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
