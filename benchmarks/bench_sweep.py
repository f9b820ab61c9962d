"""What a sweep costs beyond its cells' own work, and how well it uses the cores.

    python benchmarks/bench_sweep.py [--cells-overhead 1000] [--n-jobs 2]

1. Per-cell overhead: after a first sweep that starts the workers (reported too), sweeps of
   1,020 and 2,040 cells that simulate almost nothing
   (``workload.steps=1``), end to end as ``kvsim -m`` runs them (grid expansion, worker
   start, dispatch, chunk files, the final tables; no report). Reported: wall time per cell,
   core time per cell (wall x workers / cells), and the marginal wall time per cell (the
   difference between the two sweeps over the 1,020 extra cells), which leaves out the
   one-off costs (composing the configs, starting the workers).
2. A 1,020-cell sweep of 10,000-step synthetic runs (paged_compressed over 3 workloads x 4
   ratios x 5 thresholds x 17 seeds, ``record_every=10``), against the sum of the cells'
   own times: parallel efficiency = sum of cell times / (wall time x workers).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from kvsim.grid import expand
from kvsim.sweep import run_sweep


def timed_sweep(overrides: list[str], n_jobs: int) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        grid = expand(overrides + [f"hydra.sweep.dir={tmp}"])
        expanded = time.perf_counter()
        outcome = run_sweep(grid, n_jobs=n_jobs, progress=False)
        done = time.perf_counter()
    assert outcome.failed == 0
    return expanded - started, done - started, float(outcome.results["wall_seconds"].sum()), \
        len(grid.cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()

    tiny = ["allocator=paged_compressed", "workload=short,long,mixed",
            "compression_ratio=0.2,0.25,0.33,0.5", "pressure_threshold=0.5,0.6,0.7,0.8,0.9",
            "workload.steps=1"]
    _, cold, _, cold_cells = timed_sweep(tiny + ["seed=range(17)"], args.n_jobs)
    print(f"first sweep in this process (starts the workers): {cold_cells} near-empty cells "
          f"in {cold:.2f} s = {cold / cold_cells * 1e3:.2f} ms wall per cell")
    expand_s, wall, cell_sum, cells = timed_sweep(tiny + ["seed=range(17)"], args.n_jobs)
    _, wall2, _, cells2 = timed_sweep(tiny + ["seed=range(34)"], args.n_jobs)
    print(f"per-cell overhead, n_jobs={args.n_jobs}: {cells} near-empty cells in {wall:.2f} s = "
          f"{wall / cells * 1e3:.2f} ms wall ({wall * args.n_jobs / cells * 1e3:.2f} ms of core "
          f"time) per cell; {cells2} cells in {wall2:.2f} s; marginal "
          f"{(wall2 - wall) / (cells2 - cells) * 1e3:.2f} ms wall per extra cell. Grid "
          f"expansion {expand_s / cells * 1e3:.2f} ms per cell; a cell's own run "
          f"{cell_sum / cells * 1e3:.2f} ms")
    if args.skip_big:
        return
    big = ["allocator=paged_compressed", "workload=short,long,mixed",
           "compression_ratio=0.2,0.25,0.33,0.5", "pressure_threshold=0.5,0.6,0.7,0.8,0.9",
           "seed=range(17)", "workload.steps=10000", "record_every=10"]
    expand_s, wall, cell_sum, cells = timed_sweep(big, args.n_jobs)
    print(f"{cells} cells of 10,000 steps, n_jobs={args.n_jobs}: wall {wall:.1f} s, "
          f"sum of cell times {cell_sum:.1f} s, parallel efficiency "
          f"{cell_sum / (wall * args.n_jobs):.0%} ({cell_sum / wall:.2f}x speed-up)")


if __name__ == "__main__":
    main()
