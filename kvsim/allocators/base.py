"""The interface every memory model implements.

An allocator owns a pool of ``capacity`` slots (one slot holds one token's K and V for all
layers) and hands them to *owners*: an allocation id in the synthetic workload, a request
in serving. It knows nothing of workloads, engines, configs or files.

Three operations, all with per-owner accounting:

- ``grow(owner, n, reserve=0)`` stores ``n`` more tokens for ``owner``. All or nothing: a
  grow that cannot be satisfied returns False and changes nothing. ``reserve`` is the total
  the owner will need (0: it is complete now): monolithic reserves that much ahead, and
  paged_compressed does not compress the block an owner is still writing.
- ``release(owner)`` gives back everything the owner holds and returns the number of slots
  that went back to the free pool.
- ``touch(owner)`` marks the owner's memory as recently used (models with recency use it).

State, read by the engine after each step through ``snapshot()``, in slots:

- ``stored``: live tokens;
- ``held``: slots taken from the pool by owners (physical use);
- ``reserved``: held slots set aside for tokens not written yet (monolithic reservations);
- ``largest_free``: the largest extent of free memory one owner could use (the largest
  contiguous hole; for block-based models every free block, wherever it lies);
- ``compressed_blocks`` / ``compressed_tokens``: compression state (0 elsewhere).

The slots the live tokens themselves occupy, their *footprint*, follow from these:
``stored - compressed_tokens * (1 - compression_ratio)``, where ``compression_ratio`` is
the model's (1 for a model that does not compress). So ``held - footprint - reserved`` is
internal fragmentation and ``free - largest_free`` is free memory stranded by external
fragmentation. All state values are integers. Every operation costs O(1) or
O(log capacity) per block it moves; nothing scans the pool.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

#: The order of the values returned by :meth:`Allocator.snapshot`.
STATE_FIELDS: tuple[str, ...] = (
    "stored",
    "held",
    "reserved",
    "largest_free",
    "compressed_blocks",
    "compressed_tokens",
)


class Allocator(ABC):
    """A KV-cache memory model: a pool of slots shared by owners."""

    #: The name the model is registered and configured under.
    name: ClassVar[str]

    #: Usable slots in the pool.
    capacity: int
    #: Live tokens over all owners.
    stored: int
    #: Slots taken from the pool by owners.
    held: int
    #: Slots a compressed token occupies (1.0: the model does not compress).
    compression_ratio: float = 1.0
    #: Whether the model sets a request's whole ``reserve`` aside when it first grows
    #: (monolithic): engines then tell it a reservation policy's size, not the final size.
    reserves_ahead: ClassVar[bool] = False
    #: Whether an owner can have room for later tokens (a block's tail, a reservation). A
    #: model without (ideal) needs a grow for every token; engines grow it in bulk.
    keeps_headroom: ClassVar[bool] = True

    @abstractmethod
    def grow(self, owner: int, n: int, reserve: int = 0) -> bool:
        """Store ``n`` (>= 1) more tokens for ``owner``; False and no change if impossible."""

    @abstractmethod
    def release(self, owner: int) -> int:
        """Free everything ``owner`` holds; return the slots returned to the pool (0 if unknown)."""

    def touch(self, owner: int) -> None:
        """Mark ``owner``'s memory as just used. Models without recency ignore it."""

    def grow_each(self, owners: list[int], start: int = 0) -> int:
        """Grow ``owners[start:]`` by one token each, in order, until one cannot grow; return
        how many grew. What a decode iteration asks of a model that keeps no headroom."""
        grown = 0
        for owner in owners[start:]:
            if not self.grow(owner, 1):
                break
            grown += 1
        return grown

    def headroom(self, owner: int) -> int:
        """Tokens ``owner`` can still add without the pool changing: room left in its last
        block or its reservation. An engine may defer those tokens' grow until the owner
        needs more (the serving engine does); the default, 0, defers nothing."""
        return 0

    @abstractmethod
    def tokens_of(self, owner: int) -> int:
        """Tokens stored for ``owner`` (0 if it holds nothing)."""

    @abstractmethod
    def largest_free(self) -> int:
        """The largest extent of free memory, in slots, that one owner could use."""

    @property
    def free(self) -> int:
        """Slots not held by any owner."""
        return self.capacity - self.held

    def snapshot(self) -> tuple:
        """The current state, in the order of :data:`STATE_FIELDS`."""
        return (self.stored, self.held, 0, self.largest_free(), 0, 0)

    def counters(self) -> dict[str, int]:
        """Per-run event counts of the model's own (compressions, ...). Empty by default."""
        return {}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(capacity={self.capacity}, stored={self.stored}, "
                f"held={self.held})")


def bad_grow(n: int) -> ValueError:
    """The error for a grow of fewer than one token (a zero-token owner would hold nothing)."""
    return ValueError(f"grow needs n >= 1 tokens, got {n}")
