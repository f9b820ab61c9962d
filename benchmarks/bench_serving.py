"""Time to simulate the Azure conversation trace with each memory model, on one core.

    python benchmarks/bench_serving.py [--repeat 3]

The whole trace (19,366 requests), then its first 25% and 50%, served by Llama-2-13B on one
A100-80GB (62,633 KV slots at gpu_memory_utilization 0.9, blocks of 16 slots) with the
roofline cost model. The figure is the serving engine's run time (best of --repeat); the last
column is the time per 1,000 requests at 100% over that at 25% (1.00 = linear).
"""

from __future__ import annotations

import argparse

from kvsim.allocators import REGISTRY, PoolParams, make_allocator
from kvsim.engines.cost import CostModel, HardwareSpec, ModelSpec, kv_capacity_slots
from kvsim.engines.serving import ServingEngine
from kvsim.workloads.trace_file import TraceWorkload

MODEL = ModelSpec("Llama-2-13B", 13.0e9, 40, 40, 128, 2, 4096)
GPU = HardwareSpec("A100-80GB", 80 * 2 ** 30, 2.039e12, 312e12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    capacity = kv_capacity_slots(MODEL, GPU, 0.9)
    full = TraceWorkload().generate()
    shares = (0.25, 0.5, 1.0)
    print(f"Azure conversation trace, {len(full):,} requests; capacity {capacity:,} slots\n")
    print("| model | 25% | 50% | 100% | preemptions (100%) | cost per request, 100% / 25% |")
    print("|---|---|---|---|---|---|")
    for name in REGISTRY:
        times, counts = [], None
        for share in shares:
            trace = full.head(int(len(full) * share))
            best = float("inf")
            for _ in range(args.repeat):
                pool = make_allocator(name, PoolParams(capacity=capacity, block_size=16))
                run = ServingEngine(CostModel(MODEL, GPU)).run(trace, pool)
                best = min(best, run.seconds)
            times.append((best, len(trace)))
            counts = run.counts
        cells = " | ".join(f"{t:.2f} s" for t, _ in times)
        ratio = (times[-1][0] / times[-1][1]) / (times[0][0] / times[0][1])
        print(f"| {name} | {cells} | {counts['preemptions']:,} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
