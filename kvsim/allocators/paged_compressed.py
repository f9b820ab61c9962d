"""Paged memory whose cold blocks are compressed when the pool is under pressure."""

from __future__ import annotations

import math
from collections import OrderedDict

from kvsim.allocators.base import Allocator, bad_grow
from kvsim.allocators.paged import pool_blocks
from kvsim.errors import check_fraction


class _Owner:
    """What one owner holds: resident blocks, compressed blocks, and where it writes next."""

    __slots__ = ("tokens", "resident", "pages", "tail", "room", "compressed_tokens", "reserve")

    def __init__(self, reserve: int) -> None:
        self.reserve = reserve  # the total it will write; its tail is hot until then
        self.tokens = 0
        self.resident: dict[int, None] = {}  # physical ids, in write order (an ordered set)
        self.pages: list[int] = []  # one entry per compressed block: the page it lives in
        self.tail = -1  # the resident block receiving writes, or -1
        self.room = 0  # free slots left in the tail block
        self.compressed_tokens = 0


class PagedCompressedAllocator(Allocator):
    """``paged`` plus a compression gate on the least recently used blocks.

    Owns: the physical free pool, the recency order of resident (uncompressed) blocks, the
    compressed pages and their tenants, and per owner what it holds.

    Pressure is physical use: (resident blocks + compressed pages) / blocks. After a grow,
    while pressure exceeds ``pressure_threshold``, the least recently used resident block
    (written or touched) is compressed. A compressed block takes ``compression_ratio`` r of
    a block, and k = floor(1/r) of them pack into one physical block, a *page*: compressing
    a block moves it into a page with room, which frees its physical block, or, when no
    page has room, turns its own physical block into a new page. So k compressions free
    k - 1 blocks, and with r > 1/2 (k = 1) compression cannot free anything: the gate then
    stays shut rather than pay fidelity for nothing. A page returns to the free pool when
    its last tenant's owner is released.

    A grow that would fail first compresses cold blocks of other owners, but only if that
    is sure to make room; otherwise it fails and nothing changes. The partly filled last
    block of an owner still writing (fewer tokens than the ``reserve`` it announced) is the
    most recently written block there is and is never compressed. Any other block may be: a
    compressed block is sealed, so if it was its owner's partly filled tail, the owner's next
    tokens start a new block, and the sealed block's unused slots stay internal
    fragmentation.

    >>> pool = PagedCompressedAllocator(capacity=64, block_size=16,
    ...                                 compression_ratio=0.5, pressure_threshold=0.5)
    >>> pool.grow(owner=1, n=48)   # 3 of 4 blocks: 0.75 > 0.5, compress the 2 coldest
    True
    >>> pool.compressed_blocks, pool.blocks_in_use()
    (2, 2)
    """

    name = "paged_compressed"

    def __init__(
        self,
        capacity: int,
        block_size: int,
        compression_ratio: float = 0.5,
        pressure_threshold: float = 0.8,
        watermark: float = 0.0,
    ) -> None:
        self.block_size = block_size
        self.num_blocks = pool_blocks(capacity, block_size)
        self.capacity = self.num_blocks * block_size
        self.compression_ratio = check_fraction("compression_ratio", compression_ratio)
        self.pressure_threshold = check_fraction(
            "pressure_threshold", pressure_threshold, high_open=False
        )
        self.watermark = check_fraction("watermark", watermark, low_open=False)
        self._watermark_blocks = math.ceil(self.watermark * self.num_blocks)
        self.pack = int(1 / self.compression_ratio + 1e-9)  # k = floor(1/r)
        # Pressure above the threshold means more blocks in use than this many.
        self._gate_blocks = math.floor(self.pressure_threshold * self.num_blocks + 1e-9)
        self._free: list[int] = list(range(self.num_blocks - 1, -1, -1))
        self._lru: OrderedDict[int, int] = OrderedDict()  # resident block -> owner, coldest first
        self._hot: dict[int, int] = {}  # tails still being written: never compressed
        self._owners: dict[int, _Owner] = {}
        self._tenants: dict[int, int] = {}  # page -> compressed blocks in it
        self._open: set[int] = set()  # pages with room for another compressed block
        self._open_room = 0  # sum of the room of the open pages
        self.stored = 0
        self.held = 0
        self.compressed_blocks = 0
        self.compressed_tokens = 0
        self.compressions = 0

    # -- state ---------------------------------------------------------------------------

    def blocks_in_use(self) -> int:
        """Physical blocks in use: resident blocks plus compressed pages."""
        return self.num_blocks - len(self._free)

    def tokens_of(self, owner: int) -> int:
        record = self._owners.get(owner)
        return record.tokens if record else 0

    def resident_blocks_of(self, owner: int) -> list[int]:
        record = self._owners.get(owner)
        return list(record.resident) if record else []

    def pages_of(self, owner: int) -> list[int]:
        """The page of each of the owner's compressed blocks (a page may repeat)."""
        record = self._owners.get(owner)
        return list(record.pages) if record else []

    def page_tenants(self) -> dict[int, int]:
        return dict(self._tenants)

    def free_blocks(self) -> list[int]:
        return list(self._free)

    def largest_free(self) -> int:
        return len(self._free) * self.block_size

    def headroom(self, owner: int) -> int:
        record = self._owners.get(owner)
        return record.room if record else 0

    def footprint(self) -> float:
        """Slots the live tokens occupy: compressed tokens count r of a slot each."""
        return self.stored - self.compressed_tokens * (1.0 - self.compression_ratio)

    def snapshot(self) -> tuple:
        return (
            self.stored,
            self.held,
            0,
            len(self._free) * self.block_size,
            self.compressed_blocks,
            self.compressed_tokens,
        )

    def counters(self) -> dict[str, int]:
        return {"compressions": self.compressions}

    # -- operations ----------------------------------------------------------------------

    def grow(self, owner: int, n: int, reserve: int = 0) -> bool:
        if n < 1:
            raise bad_grow(n)
        record = self._owners.get(owner)
        is_new = record is None
        room = 0 if is_new else record.room
        bs = self.block_size
        need = (n - room + bs - 1) // bs if n > room else 0
        if need:
            want = need + (self._watermark_blocks if is_new else 0)
            short = want - len(self._free)
            if short > 0:
                if not self._make_room(short, None if is_new else record):
                    return False
        if is_new:
            record = self._owners[owner] = _Owner(reserve)
        self._write(owner, record, n, need)
        if self.pack > 1 and self.num_blocks - len(self._free) > self._gate_blocks:
            self._gate()
        return True

    def _write(self, owner: int, record: _Owner, n: int, need: int) -> None:
        lru = self._lru
        hot = self._hot
        tail = record.tail
        if tail in hot:
            if need:  # about to be filled: an ordinary block from now on
                del hot[tail]
                lru[tail] = owner
        elif record.room:
            lru.move_to_end(tail)
        if need:
            free = self._free
            bs = self.block_size
            for _ in range(need):
                block = free.pop()
                record.resident[block] = None
                lru[block] = owner
            record.tail = block
            record.room = record.room + need * bs - n
            self.held += need * bs
        else:
            record.room -= n
        record.tokens += n
        self.stored += n
        tail = record.tail
        writing = record.room and record.tokens < record.reserve
        if writing and tail not in hot:
            del lru[tail]
            hot[tail] = owner
        elif not writing and tail in hot:
            del hot[tail]
            lru[tail] = owner

    def _freed_by(self, x: int) -> int:
        """Physical blocks freed by compressing x more blocks, given the room in open pages."""
        opened = 0 if x <= self._open_room else -(-(x - self._open_room) // self.pack)
        return x - opened

    def _make_room(self, short: int, record: _Owner | None) -> bool:
        """Compress cold blocks until ``short`` more blocks are free, if that can succeed.

        The growing owner's tail is kept out of reach (moved to the warm end and excluded
        from the count) because compressing it would seal it and change what it needs.
        """
        if self.pack == 1:
            return False
        candidates = len(self._lru)
        if record is not None and record.room and record.tail in self._lru:
            self._lru.move_to_end(record.tail)
            candidates -= 1
        if self._freed_by(candidates) < short:
            return False
        target = len(self._free) + short
        while len(self._free) < target:
            self._compress_coldest()
        return True

    def _gate(self) -> None:
        free = self._free
        floor_free = self.num_blocks - self._gate_blocks
        lru = self._lru
        while len(free) < floor_free and lru:
            self._compress_coldest()

    def _compress_coldest(self) -> None:
        block, owner = self._lru.popitem(last=False)
        record = self._owners[owner]
        del record.resident[block]
        if block == record.tail:
            tokens = self.block_size - record.room
            record.tail = -1
            record.room = 0
        else:
            tokens = self.block_size
        if self._open:
            page = self._open.pop()
            tenants = self._tenants[page] + 1
            self._tenants[page] = tenants
            if tenants < self.pack:
                self._open.add(page)
            self._open_room -= 1
            self._free.append(block)
            self.held -= self.block_size
        else:
            page = block  # the block's own physical block becomes the page
            self._tenants[page] = 1
            if self.pack > 1:
                self._open.add(page)
                self._open_room += self.pack - 1
        record.pages.append(page)
        record.compressed_tokens += tokens
        self.compressed_blocks += 1
        self.compressed_tokens += tokens
        self.compressions += 1

    def release(self, owner: int) -> int:
        record = self._owners.pop(owner, None)
        if record is None:
            return 0
        lru = self._lru
        free = self._free
        for block in record.resident:
            if lru.pop(block, None) is None:
                del self._hot[block]
        free.extend(record.resident)
        freed = len(record.resident)
        tenants = self._tenants
        pack = self.pack
        for page in record.pages:
            left = tenants[page] - 1
            if left:
                tenants[page] = left
                self._open.add(page)
                self._open_room += 1
            else:
                del tenants[page]
                self._open.discard(page)
                self._open_room -= pack - 1
                free.append(page)
                freed += 1
        slots = freed * self.block_size
        self.held -= slots
        self.stored -= record.tokens
        self.compressed_blocks -= len(record.pages)
        self.compressed_tokens -= record.compressed_tokens
        return slots

    def touch(self, owner: int) -> None:
        record = self._owners.get(owner)
        if record is not None:
            lru = self._lru
            for block in record.resident:
                if block in lru:
                    lru.move_to_end(block)
