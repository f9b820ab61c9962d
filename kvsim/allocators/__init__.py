"""The memory models, and the one place they are registered.

Adding a model: write a module with an :class:`Allocator` subclass, add it to
:data:`REGISTRY` below with how to build it from a :class:`PoolParams`, and add
``conf/allocator/<name>.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kvsim.allocators.base import STATE_FIELDS, Allocator
from kvsim.allocators.ideal import IdealAllocator
from kvsim.allocators.monolithic import MonolithicAllocator
from kvsim.allocators.paged import PagedAllocator
from kvsim.allocators.paged_compressed import PagedCompressedAllocator
from kvsim.errors import ConfigError


@dataclass(frozen=True)
class PoolParams:
    """The memory-model parameters of one run; each model reads the ones it uses."""

    capacity: int = 4096
    block_size: int = 16
    compression_ratio: float = 0.5
    pressure_threshold: float = 0.8
    placement: str = "first_fit"
    watermark: float = 0.0


#: name -> how to build the model from the run's pool parameters.
REGISTRY: dict[str, Callable[[PoolParams], Allocator]] = {
    "ideal": lambda p: IdealAllocator(p.capacity),
    "monolithic": lambda p: MonolithicAllocator(p.capacity, p.placement),
    "paged": lambda p: PagedAllocator(p.capacity, p.block_size, p.watermark),
    "paged_compressed": lambda p: PagedCompressedAllocator(
        p.capacity, p.block_size, p.compression_ratio, p.pressure_threshold, p.watermark
    ),
}

#: The parameters each model depends on (a sweep over any other does not multiply its runs):
#: its pool parameters, and ``reservation`` (the serving engine's reservation policy) for a
#: model that reserves ahead.
USES: dict[str, tuple[str, ...]] = {
    "ideal": ("capacity",),
    "monolithic": ("capacity", "placement", "reservation"),
    "paged": ("capacity", "block_size", "watermark"),
    "paged_compressed": (
        "capacity", "block_size", "compression_ratio", "pressure_threshold", "watermark",
    ),
}


def make_allocator(name: str, params: PoolParams) -> Allocator:
    """Build the model registered as ``name``."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise ConfigError("allocator", name, "one of " + ", ".join(REGISTRY)) from None
    return factory(params)


__all__ = [
    "REGISTRY",
    "STATE_FIELDS",
    "USES",
    "Allocator",
    "IdealAllocator",
    "MonolithicAllocator",
    "PagedAllocator",
    "PagedCompressedAllocator",
    "PoolParams",
    "make_allocator",
]
