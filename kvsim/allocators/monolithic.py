"""The monolithic memory model: one contiguous extent per owner in a single arena."""

from __future__ import annotations

from bisect import bisect_left, insort

from kvsim.allocators.base import Allocator, bad_grow
from kvsim.errors import ConfigError, check_int

PLACEMENTS = ("first_fit", "best_fit")


class FirstFitIndex:
    """Finds the lowest-addressed hole of at least n slots in O(log capacity).

    Holes are grouped by the 64-slot chunk their start falls in. A max-tree over chunks
    holds, per chunk, the size of its largest hole, so the search walks down the tree to
    the first chunk that has a fitting hole and then reads that chunk's few holes in
    address order. Chunking keeps the tree small enough to stay in cache; a chunk holds
    at most 32 holes, because two holes are never adjacent.
    """

    CHUNK_BITS = 6

    def __init__(self, capacity: int, hole_size: dict[int, int]) -> None:
        self._hole_size = hole_size  # shared with the allocator: start -> size
        n_chunks = (capacity >> self.CHUNK_BITS) + 1
        self._leaves = 1 << (n_chunks - 1).bit_length()
        self._tree = [0] * (2 * self._leaves)
        self._starts: list[list[int]] = [[] for _ in range(n_chunks)]

    def largest(self) -> int:
        return self._tree[1]

    def find(self, n: int) -> int:
        """The start of the first hole of size >= n, or -1."""
        tree = self._tree
        if tree[1] < n:
            return -1
        i = 1
        leaves = self._leaves
        while i < leaves:
            i <<= 1
            if tree[i] < n:
                i += 1
        hole_size = self._hole_size
        for start in self._starts[i - leaves]:
            if hole_size[start] >= n:
                return start
        raise AssertionError("first-fit index out of step with the holes")  # pragma: no cover

    def add(self, start: int, size: int) -> None:
        chunk = start >> self.CHUNK_BITS
        insort(self._starts[chunk], start)
        tree = self._tree
        i = self._leaves + chunk
        while i and tree[i] < size:
            tree[i] = size
            i >>= 1

    def remove(self, start: int, size: int) -> None:
        chunk = start >> self.CHUNK_BITS
        starts = self._starts[chunk]
        del starts[bisect_left(starts, start)]
        if self._tree[self._leaves + chunk] == size:
            self._refresh(chunk)

    def resize(self, start: int, old: int, new: int) -> None:
        """The hole at ``start`` changed size from ``old`` to ``new`` (its start is kept)."""
        chunk = start >> self.CHUNK_BITS
        tree = self._tree
        i = self._leaves + chunk
        if new > old:
            while i and tree[i] < new:
                tree[i] = new
                i >>= 1
        elif tree[i] == old:
            self._refresh(chunk)

    def _refresh(self, chunk: int) -> None:
        """Recompute a chunk's largest hole after it may have shrunk, and its ancestors."""
        hole_size = self._hole_size
        best = 0
        for start in self._starts[chunk]:
            size = hole_size[start]
            if size > best:
                best = size
        tree = self._tree
        i = self._leaves + chunk
        tree[i] = best
        while i > 1:
            a = tree[i]
            b = tree[i ^ 1]
            i >>= 1
            m = a if a > b else b
            if tree[i] == m:
                break
            tree[i] = m


class BestFitIndex:
    """Finds the smallest hole of at least n slots (lowest address among equals).

    Distinct hole sizes are kept sorted, each with the sorted starts of its holes; a search
    is one binary search over the sizes.
    """

    def __init__(self, capacity: int, hole_size: dict[int, int]) -> None:
        self._sizes: list[int] = []
        self._starts_by_size: dict[int, list[int]] = {}

    def largest(self) -> int:
        return self._sizes[-1] if self._sizes else 0

    def find(self, n: int) -> int:
        sizes = self._sizes
        j = bisect_left(sizes, n)
        if j == len(sizes):
            return -1
        return self._starts_by_size[sizes[j]][0]

    def add(self, start: int, size: int) -> None:
        starts = self._starts_by_size.get(size)
        if starts is None:
            self._starts_by_size[size] = [start]
            insort(self._sizes, size)
        else:
            insort(starts, start)

    def remove(self, start: int, size: int) -> None:
        starts = self._starts_by_size[size]
        if len(starts) == 1:
            del self._starts_by_size[size]
            del self._sizes[bisect_left(self._sizes, size)]
        else:
            del starts[bisect_left(starts, start)]

    def resize(self, start: int, old: int, new: int) -> None:
        self.remove(start, old)
        self.add(start, new)


class MonolithicAllocator(Allocator):
    """One arena of ``capacity`` slots; each owner holds one contiguous extent.

    Owns: the holes (free extents, coalesced on release so two holes are never adjacent),
    a placement index over them, and per owner its extent and token count.

    A new owner gets an extent of ``max(n, reserve)`` slots from the first hole in address
    order that fits (``first_fit``) or the smallest that fits (``best_fit``). The extent is
    cut from the top of the hole, as in Knuth's first-fit (TAOCP vol. 1, sec. 2.5,
    Algorithm A), which leaves the hole's start, and so its place in the index, unchanged.
    Slots reserved but not yet written are ``reserved``; free slots outside the largest
    hole are lost to external fragmentation. Growing an owner past its extent extends the
    extent in place when the hole right after it is large enough, and fails otherwise:
    a contiguous reservation cannot move.

    >>> pool = MonolithicAllocator(capacity=16)
    >>> pool.grow(owner=1, n=4), pool.extent_of(1)
    (True, (12, 4))
    """

    name = "monolithic"
    reserves_ahead = True

    def __init__(self, capacity: int, placement: str = "first_fit") -> None:
        self.capacity = check_int("capacity", capacity, minimum=1)
        if placement not in PLACEMENTS:
            raise ConfigError("placement", placement, "one of " + ", ".join(PLACEMENTS))
        self.placement = placement
        self._hole_size: dict[int, int] = {}  # start -> size
        self._hole_at_end: dict[int, int] = {}  # end -> start, to coalesce with a left neighbour
        index_type = FirstFitIndex if placement == "first_fit" else BestFitIndex
        self._index = index_type(capacity, self._hole_size)
        self._owners: dict[int, list[int]] = {}  # owner -> [start, extent, tokens]
        self.stored = 0
        self.held = 0
        self._add_hole(0, capacity)

    def _add_hole(self, start: int, size: int) -> None:
        self._hole_size[start] = size
        self._hole_at_end[start + size] = start
        self._index.add(start, size)

    def _remove_hole(self, start: int) -> int:
        size = self._hole_size.pop(start)
        del self._hole_at_end[start + size]
        self._index.remove(start, size)
        return size

    def grow(self, owner: int, n: int, reserve: int = 0) -> bool:
        if n < 1:
            raise bad_grow(n)
        record = self._owners.get(owner)
        if record is not None:
            start, extent, tokens = record
            if tokens + n > extent and not self._extend(record, tokens + n - extent):
                return False
            record[2] = tokens + n
            self.stored += n
            return True
        # A new owner: cut its extent from the top of the hole the index picks.
        size = reserve if reserve > n else n
        index = self._index
        start = index.find(size)
        if start < 0:
            return False
        hole_size = self._hole_size
        hole = hole_size[start]
        end = start + hole
        del self._hole_at_end[end]
        rest = hole - size
        if rest:
            hole_size[start] = rest
            self._hole_at_end[start + rest] = start
            index.resize(start, hole, rest)
        else:
            del hole_size[start]
            index.remove(start, hole)
        self._owners[owner] = [end - size, size, n]
        self.held += size
        self.stored += n
        return True

    def _extend(self, record: list[int], extra: int) -> bool:
        """Grow an extent in place by ``extra`` slots from the hole right after it."""
        end = record[0] + record[1]
        hole = self._hole_size.get(end, 0)
        if hole < extra:
            return False
        self._remove_hole(end)
        if hole > extra:
            self._add_hole(end + extra, hole - extra)
        record[1] += extra
        self.held += extra
        return True

    def release(self, owner: int) -> int:
        record = self._owners.pop(owner, None)
        if record is None:
            return 0
        start, extent, tokens = record
        end = start + extent
        hole_size = self._hole_size
        at_end = self._hole_at_end
        index = self._index
        right = hole_size.pop(end, 0)
        if right:  # absorb the hole on the right
            del at_end[end + right]
            index.remove(end, right)
            end += right
        left = at_end.pop(start, None)
        if left is None:
            hole_size[start] = end - start
            at_end[end] = start
            index.add(start, end - start)
        else:
            # Enlarge the hole on the left in place: its start, and so its index entry, stay.
            hole_size[left] = end - left
            at_end[end] = left
            index.resize(left, start - left, end - left)
        self.stored -= tokens
        self.held -= extent
        return extent

    def tokens_of(self, owner: int) -> int:
        record = self._owners.get(owner)
        return record[2] if record else 0

    def headroom(self, owner: int) -> int:
        record = self._owners.get(owner)
        return record[1] - record[2] if record else 0

    def extent_of(self, owner: int) -> tuple[int, int] | None:
        """The owner's extent as (start, size), or None."""
        record = self._owners.get(owner)
        return (record[0], record[1]) if record else None

    def holes(self) -> list[tuple[int, int]]:
        """The free extents as (start, size), in address order."""
        return sorted(self._hole_size.items())

    def largest_free(self) -> int:
        return self._index.largest()

    def snapshot(self) -> tuple:
        held = self.held
        return (self.stored, held, held - self.stored, self._index.largest(), 0, 0)
