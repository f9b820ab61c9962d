"""The ideal memory model: the bound every real design is measured against."""

from __future__ import annotations

from kvsim.allocators.base import Allocator, bad_grow
from kvsim.errors import check_int


class IdealAllocator(Allocator):
    """Stores exactly the live tokens: no blocks, no reservations, no fragmentation.

    A grow succeeds whenever the pool has room for the new tokens, wherever they are, so
    ``held == stored`` and ``largest_free == free`` at all times. Figures draw it as the
    limit the other models approach.

    >>> pool = IdealAllocator(capacity=10)
    >>> pool.grow(owner=1, n=7), pool.grow(owner=2, n=4), pool.free
    (True, False, 3)
    """

    name = "ideal"
    keeps_headroom = False

    def __init__(self, capacity: int) -> None:
        self.capacity = check_int("capacity", capacity, minimum=1)
        self.stored = 0
        self.held = 0
        self._tokens: dict[int, int] = {}

    def grow(self, owner: int, n: int, reserve: int = 0) -> bool:
        if n < 1:
            raise bad_grow(n)
        if self.stored + n > self.capacity:
            return False
        tokens = self._tokens
        tokens[owner] = tokens.get(owner, 0) + n
        self.stored += n
        self.held = self.stored
        return True

    def release(self, owner: int) -> int:
        n = self._tokens.pop(owner, 0)
        self.stored -= n
        self.held = self.stored
        return n

    def grow_each(self, owners: list[int], start: int = 0) -> int:
        grown = min(len(owners) - start, self.capacity - self.stored)
        tokens = self._tokens
        for owner in owners[start:start + grown]:
            tokens[owner] += 1
        self.stored += grown
        self.held = self.stored
        return grown

    def tokens_of(self, owner: int) -> int:
        return self._tokens.get(owner, 0)

    def largest_free(self) -> int:
        return self.capacity - self.stored

    def snapshot(self) -> tuple:
        s = self.stored
        return (s, s, 0, self.capacity - s, 0, 0)
