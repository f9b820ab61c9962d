"""The event engine: applies a synthetic trace to one memory model, step by step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from kvsim.allocators.base import STATE_FIELDS, Allocator
from kvsim.errors import check_int
from kvsim.recorder import StepRecorder
from kvsim.workloads.synthetic import EventTrace

#: Columns recorded per step: the step, the slots the workload asked for at that step and
#: the slots refused, then the allocator's state after the step (see STATE_FIELDS).
STEP_FIELDS: tuple[str, ...] = ("step", "requested", "rejected") + STATE_FIELDS


@dataclass
class EventRun:
    """What one engine run produced: the per-step series and the run's event counts."""

    allocator: str
    capacity: int
    series: dict[str, np.ndarray]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the event loop; never part of a result table
    compression_ratio: float = 1.0  # of the model: what a compressed token occupies


class EventEngine:
    """Applies alloc/free events to an allocator and records its state.

    An alloc event grows a new owner by its size; if the allocator refuses, the allocation
    is rejected (counted; the owner's later free finds nothing to release). A free event
    releases the owner. The state after every ``record_every``-th step (0, k, 2k, ...) is
    recorded, steps on which nothing happened included.
    """

    def __init__(self, record_every: int = 1) -> None:
        self.record_every = check_int("record_every", record_every, minimum=1)

    def run(self, trace: EventTrace, allocator: Allocator) -> EventRun:
        recorder = StepRecorder(STEP_FIELDS)
        extend = recorder.extend
        pack = recorder.pack
        snapshot = allocator.snapshot
        grow = allocator.grow
        release = allocator.release
        every = self.record_every

        attempts = rejections = 0
        current = 0  # the step whose events are being applied
        requested = rejected = 0
        started = time.perf_counter()
        for step, kind, owner, size in zip(
            trace.step.tolist(), trace.kind.tolist(), trace.owner.tolist(), trace.size.tolist()
        ):
            if step != current:
                if current % every == 0:
                    extend((current, requested, rejected))
                    extend(snapshot())
                    if not current & 4095:  # bound the staging list, without a call per step
                        pack()
                # Steps without events are recorded too: the state carries over.
                for quiet in range(current + 1, step):
                    if quiet % every == 0:
                        extend((quiet, 0, 0))
                        extend(snapshot())
                current = step
                requested = rejected = 0
            if kind:
                attempts += 1
                requested += size
                if not grow(owner, size):
                    rejections += 1
                    rejected += size
            else:
                release(owner)
        for step in range(current, trace.steps):
            if step % every == 0:
                extend((step, requested, rejected) if step == current else (step, 0, 0))
                extend(snapshot())
        elapsed = time.perf_counter() - started

        series = recorder.columns()
        counts = {
            "events": len(trace),
            "allocations": attempts,
            "rejections": rejections,
            **allocator.counters(),
        }
        return EventRun(allocator.name, allocator.capacity, series, counts, elapsed,
                        allocator.compression_ratio)
