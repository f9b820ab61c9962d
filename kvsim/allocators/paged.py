"""The paged memory model: fixed-size blocks from a free pool, one block table per owner."""

from __future__ import annotations

import math

from kvsim.allocators.base import Allocator, bad_grow
from kvsim.errors import ConfigError, check_fraction, check_int


def pool_blocks(capacity: int, block_size: int) -> int:
    """Whole blocks in a pool of ``capacity`` slots; at least one, or a ConfigError."""
    check_int("capacity", capacity, minimum=1)
    check_int("block_size", block_size, minimum=1)
    if capacity < block_size:
        raise ConfigError("capacity", capacity,
                          f"at least one block (block_size={block_size} slots)")
    return capacity // block_size


class PagedAllocator(Allocator):
    """Blocks of ``block_size`` slots from a free pool; each owner has a block table.

    Owns: the free pool (a stack of block ids, so taking and returning a block is O(1)) and,
    per owner, its token count and block table. An owner with t tokens holds
    ceil(t / block_size) blocks; the unused tail of its last block is internal
    fragmentation. Any free block serves any owner, so there is no external fragmentation.
    The pool is ``capacity // block_size`` blocks; a remainder smaller than one block is
    not usable and not counted in ``capacity``.

    ``watermark`` is the fraction of blocks a *new* owner's first grow must leave free
    (vLLM keeps 1% so that running requests can still grow); growing an existing owner may
    use them.

    >>> pool = PagedAllocator(capacity=64, block_size=16)
    >>> pool.grow(owner=1, n=20), pool.blocks_of(1), pool.held - pool.stored
    (True, [0, 1], 12)
    """

    name = "paged"

    def __init__(self, capacity: int, block_size: int, watermark: float = 0.0) -> None:
        self.block_size = block_size
        self.num_blocks = pool_blocks(capacity, block_size)
        self.capacity = self.num_blocks * block_size
        self.watermark = check_fraction("watermark", watermark, low_open=False)
        self._watermark_blocks = math.ceil(self.watermark * self.num_blocks)
        # Popped from the end: block 0 is handed out first on a fresh pool.
        self._free: list[int] = list(range(self.num_blocks - 1, -1, -1))
        self._owners: dict[int, list] = {}  # owner -> [tokens, block table]
        self.stored = 0
        self.held = 0

    def grow(self, owner: int, n: int, reserve: int = 0) -> bool:
        if n < 1:
            raise bad_grow(n)
        bs = self.block_size
        free = self._free
        record = self._owners.get(owner)
        if record is None:
            need = (n + bs - 1) // bs
            if need + self._watermark_blocks > len(free):
                return False
            self._owners[owner] = [n, free[-1 : -need - 1 : -1]]
            del free[-need:]
        else:
            tokens, table = record
            need = (tokens + n + bs - 1) // bs - len(table)
            if need:
                if need > len(free):
                    return False
                table.extend(free[-1 : -need - 1 : -1])
                del free[-need:]
            record[0] = tokens + n
        self.stored += n
        self.held += need * bs
        return True

    def release(self, owner: int) -> int:
        record = self._owners.pop(owner, None)
        if record is None:
            return 0
        tokens, table = record
        # Reversed, so the owner's first block is the next one handed out again.
        self._free.extend(reversed(table))
        slots = len(table) * self.block_size
        self.stored -= tokens
        self.held -= slots
        return slots

    def tokens_of(self, owner: int) -> int:
        record = self._owners.get(owner)
        return record[0] if record else 0

    def headroom(self, owner: int) -> int:
        record = self._owners.get(owner)
        return len(record[1]) * self.block_size - record[0] if record else 0

    def blocks_of(self, owner: int) -> list[int]:
        """The owner's block table, in the order its tokens were written."""
        record = self._owners.get(owner)
        return list(record[1]) if record else []

    def free_blocks(self) -> list[int]:
        """The ids of the blocks in the free pool."""
        return list(self._free)

    def largest_free(self) -> int:
        # A block table makes every free block usable by one owner, wherever it lies.
        return len(self._free) * self.block_size

    def snapshot(self) -> tuple:
        return (self.stored, self.held, 0, len(self._free) * self.block_size, 0, 0)
