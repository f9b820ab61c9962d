"""The synthetic workload: a seeded stream of alloc(id, size) and free(id) events."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kvsim.errors import ConfigError, check_fraction, check_int

#: Size classes in slots, inclusive (the sketch's short / long / mixed).
SIZE_CLASSES: dict[str, tuple[int, int]] = {"short": (1, 4), "long": (8, 32), "mixed": (1, 32)}

FREE, ALLOC = 0, 1


@dataclass(frozen=True)
class EventTrace:
    """Events in the order they apply, as parallel arrays (one entry per event).

    ``kind`` is ALLOC (``size`` slots for a new ``owner``) or FREE (release ``owner``;
    ``size`` is 0). Within a step, frees come before allocations, so memory freed at a
    step is available to the allocations of the same step.
    """

    steps: int
    step: np.ndarray
    kind: np.ndarray
    owner: np.ndarray
    size: np.ndarray

    def __len__(self) -> int:
        return len(self.step)

    @property
    def allocations(self) -> int:
        return int(np.count_nonzero(self.kind == ALLOC))


@dataclass(frozen=True)
class SyntheticWorkload:
    """Allocations of random size, each freed after a random lifetime.

    At every one of ``steps`` steps, ``allocs_per_step`` allocations arrive, with sizes
    drawn uniformly from ``size_range`` (or the range of ``size_class``). Each is freed
    ``lifetime`` steps later, lifetime uniform in ``lifetime_range``, with probability
    ``free_probability``; otherwise, or if that falls past the last step, it lives to the
    end. Any number of events can share a step; none is dropped.

    The default keeps the pool busy in a steady state: with ``lifetime_range`` unset, the
    mean lifetime is chosen by Little's law so that the live tokens average
    ``target_load`` of the pool (``L = target_load * capacity / (allocs_per_step *
    mean_size)``, drawn from [L/2, 3L/2]). At the default 0.85, ideal memory runs near
    full, while block rounding and holes push the real designs past capacity, so the
    models differ in what they reject, not only in how fast they fill.

    >>> trace = SyntheticWorkload(steps=3, size_range=(2, 2), lifetime_range=(1, 1)).generate()
    >>> trace.step.tolist(), trace.kind.tolist(), trace.owner.tolist()
    ([0, 1, 1, 2, 2], [1, 0, 1, 0, 1], [0, 0, 1, 1, 2])
    """

    steps: int = 10_000
    size_class: str = "mixed"
    size_range: tuple[int, int] | None = None
    free_probability: float = 1.0
    lifetime_range: tuple[int, int] | None = None
    target_load: float = 0.85
    allocs_per_step: int = 1
    seed: int = 0
    capacity: int = 4096

    def __post_init__(self) -> None:
        check_int("workload.steps", self.steps, minimum=1)
        check_int("workload.allocs_per_step", self.allocs_per_step, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_int("capacity", self.capacity, minimum=1)
        check_fraction("workload.free_probability", self.free_probability,
                       low_open=False, high_open=False)
        if not (isinstance(self.target_load, (int, float)) and self.target_load > 0):
            raise ConfigError("workload.target_load", self.target_load, "a number > 0")
        if self.size_range is None and self.size_class not in SIZE_CLASSES:
            raise ConfigError("workload.size_class", self.size_class,
                              "one of " + ", ".join(SIZE_CLASSES) + " (or set workload.size_range)")
        _check_range("workload.size_range", self.size_range)
        _check_range("workload.lifetime_range", self.lifetime_range)

    @property
    def sizes(self) -> tuple[int, int]:
        """The inclusive range allocation sizes are drawn from, in slots."""
        if self.size_range is not None:
            return tuple(self.size_range)
        return SIZE_CLASSES[self.size_class]

    @property
    def lifetimes(self) -> tuple[int, int]:
        """The inclusive range lifetimes are drawn from, in steps."""
        if self.lifetime_range is not None:
            return tuple(self.lifetime_range)
        lo, hi = self.sizes
        mean = self.target_load * self.capacity / (self.allocs_per_step * (lo + hi) / 2)
        return max(1, math.ceil(mean / 2)), max(1, math.floor(1.5 * mean))

    def generate(self) -> EventTrace:
        """The event trace; the same parameters always give the same trace."""
        rng = np.random.default_rng(self.seed)
        n = self.steps * self.allocs_per_step
        alloc_step = np.repeat(np.arange(self.steps, dtype=np.int64), self.allocs_per_step)
        lo, hi = self.sizes
        size = rng.integers(lo, hi + 1, size=n, dtype=np.int64)
        lo_life, hi_life = self.lifetimes
        lifetime = rng.integers(lo_life, hi_life + 1, size=n, dtype=np.int64)
        freed = rng.random(n) < self.free_probability
        free_step = alloc_step + lifetime
        freed &= free_step < self.steps
        owners = np.arange(n, dtype=np.int64)

        step = np.concatenate([alloc_step, free_step[freed]])
        kind = np.concatenate([np.full(n, ALLOC, np.int8),
                               np.full(int(freed.sum()), FREE, np.int8)])
        owner = np.concatenate([owners, owners[freed]])
        sizes = np.concatenate([size, np.zeros(int(freed.sum()), np.int64)])
        order = np.lexsort((owner, kind, step))  # by step, frees first, then by id
        return EventTrace(self.steps, step[order], kind[order], owner[order], sizes[order])


def _check_range(key: str, value: tuple[int, int] | None) -> None:
    if value is None:
        return
    ok = (
        len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 1 <= value[0] <= value[1]
    )
    if not ok:
        raise ConfigError(key, list(value), "[low, high] with 1 <= low <= high")
