"""Events per second of each memory model on the synthetic workload, recording included.

    python benchmarks/bench_allocators.py [--repeat 3] [--steps 200000]

For each pool size (128, 4,096 and 65,536 blocks of 16 slots) the default synthetic
workload (mixed sizes, live tokens averaging 85% of the pool) runs through the event engine
with ``record_every=1``, in this one process (one core). The figure is trace events divided
by the engine's loop time (allocator work plus per-step recording), best of ``--repeat``.
The last column compares the per-event cost at 65,536 blocks with that at 128.

The first row, ``owner-dict floor``, is no model at all: it only inserts a small record
per owner into a dict at each allocation and pops it at each free, on the same traces.
Its slowdown with the pool size is what CPython pays in cache misses once the live owners
no longer fit in the CPU caches (about 50,000 live owners at 65,536 blocks); the models
keep per-owner state too and cannot do better than that floor.
"""

from __future__ import annotations

import argparse
import platform
import time

from kvsim.allocators import REGISTRY, PoolParams, make_allocator
from kvsim.engines import EventEngine
from kvsim.workloads import SyntheticWorkload

POOLS = (128, 4096, 65536)
BLOCK_SIZE = 16


FLOOR = "owner-dict floor"


def workload_trace(blocks: int, steps: int):
    capacity = blocks * BLOCK_SIZE
    _, longest = SyntheticWorkload(steps=steps, capacity=capacity, seed=1).lifetimes
    # Long enough to spend most of the run in the steady state, whatever the pool size.
    return SyntheticWorkload(steps=max(steps, 4 * longest), capacity=capacity, seed=1).generate()


def owner_dict_seconds(trace) -> float:
    owners: dict[int, list[int]] = {}
    started = time.perf_counter()
    for kind, owner, size in zip(trace.kind.tolist(), trace.owner.tolist(), trace.size.tolist()):
        if kind:
            owners[owner] = [owner, size, size]
        else:
            owners.pop(owner, None)
    return time.perf_counter() - started


def measure(name: str, trace, blocks: int, repeat: int) -> float:
    """Events per second, best of ``repeat``."""
    best = float("inf")
    for _ in range(repeat):
        if name == FLOOR:
            seconds = owner_dict_seconds(trace)
        else:
            params = PoolParams(capacity=blocks * BLOCK_SIZE, block_size=BLOCK_SIZE)
            seconds = EventEngine(record_every=1).run(trace, make_allocator(name, params)).seconds
        best = min(best, seconds)
    return len(trace) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--models", nargs="*", default=list(REGISTRY))
    args = parser.parse_args()

    traces = {blocks: workload_trace(blocks, args.steps) for blocks in POOLS}
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"block_size={BLOCK_SIZE}, record_every=1, best of {args.repeat}; events per trace: "
          + ", ".join(f"{len(t):,}" for t in traces.values()) + "\n")
    head = " | ".join(f"{b:,} blocks" for b in POOLS)
    print(f"| model | {head} | cost at 65,536 / at 128 |")
    print("|---" * (len(POOLS) + 2) + "|")
    for name in [FLOOR, *args.models]:
        rates = [measure(name, traces[blocks], blocks, args.repeat) for blocks in POOLS]
        cells = " | ".join(f"{r / 1e6:.2f} M/s" for r in rates)
        print(f"| {name} | {cells} | {rates[0] / rates[-1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
