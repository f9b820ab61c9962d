"""Invariants of every memory model over random grow / release / touch sequences."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.allocators import (
    REGISTRY,
    IdealAllocator,
    MonolithicAllocator,
    PagedAllocator,
    PagedCompressedAllocator,
    PoolParams,
    make_allocator,
)

OWNERS = st.integers(0, 7)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("grow"), OWNERS, st.integers(1, 40), st.integers(0, 48)),
        st.tuples(st.just("release"), OWNERS, st.just(0), st.just(0)),
        st.tuples(st.just("touch"), OWNERS, st.just(0), st.just(0)),
    ),
    max_size=60,
)
PARAMS = st.builds(
    PoolParams,
    capacity=st.integers(16, 160),
    block_size=st.sampled_from([1, 4, 8, 16]),
    compression_ratio=st.sampled_from([0.2, 0.25, 0.3, 0.5, 0.75]),
    pressure_threshold=st.sampled_from([0.3, 0.6, 0.8, 1.0]),
    placement=st.sampled_from(["first_fit", "best_fit"]),
    watermark=st.sampled_from([0.0, 0.1]),
)


def fingerprint(pool):
    """Everything observable about a pool, to check that a failed grow changed nothing."""
    owners = range(8)
    extra = ()
    if isinstance(pool, PagedAllocator):
        extra = (tuple(tuple(pool.blocks_of(o)) for o in owners), tuple(pool.free_blocks()))
    elif isinstance(pool, MonolithicAllocator):
        extra = (tuple(pool.extent_of(o) for o in owners), tuple(pool.holes()))
    elif isinstance(pool, PagedCompressedAllocator):
        extra = (tuple(tuple(pool.resident_blocks_of(o)) for o in owners),
                 tuple(tuple(pool.pages_of(o)) for o in owners),
                 tuple(sorted(pool.free_blocks())), tuple(sorted(pool.page_tenants().items())),
                 pool.compressions)
    return (pool.snapshot(), tuple(pool.tokens_of(o) for o in owners), extra)


def check_ideal(pool: IdealAllocator, tokens):
    assert pool.held == pool.stored


def check_paged(pool: PagedAllocator, tokens):
    seen = list(pool.free_blocks())
    for owner, t in tokens.items():
        table = pool.blocks_of(owner)
        assert len(table) == math.ceil(t / pool.block_size)
        seen += table
    # No block belongs to two owners, or to an owner and the free pool; none is lost.
    assert sorted(seen) == list(range(pool.num_blocks))
    assert pool.held == (pool.num_blocks - len(pool.free_blocks())) * pool.block_size


def check_monolithic(pool: MonolithicAllocator, tokens):
    pieces = [(s, n, "hole") for s, n in pool.holes()]
    for owner, t in tokens.items():
        start, size = pool.extent_of(owner)
        assert size >= t
        pieces.append((start, size, owner))
    pieces.sort()
    # Extents and holes tile the arena exactly; two holes are never adjacent.
    at = 0
    for (start, size, what), nxt in zip(pieces, pieces[1:] + [None]):
        assert start == at and size > 0
        at = start + size
        if nxt is not None:
            assert not (what == "hole" and nxt[2] == "hole")
    assert at == pool.capacity
    assert pool.largest_free() == max((n for _, n in pool.holes()), default=0)


def check_compressed(pool: PagedCompressedAllocator, tokens):
    k = pool.pack
    resident = [b for o in tokens for b in pool.resident_blocks_of(o)]
    tenants = pool.page_tenants()
    # Every physical block is exactly one of: free, resident in one owner, a page.
    everything = resident + pool.free_blocks() + list(tenants)
    assert sorted(everything) == list(range(pool.num_blocks))
    assert pool.held == (len(resident) + len(tenants)) * pool.block_size
    # Compressed accounting equals the physical pages in use.
    pages = [p for o in tokens for p in pool.pages_of(o)]
    assert sorted(pages) == sorted(p for p, n in tenants.items() for _ in range(n))
    assert all(1 <= n <= k for n in tenants.values())
    # The pages open for another tenant, and the room they have, match the tenant counts.
    assert pool._open == {p for p, n in tenants.items() if n < k}
    assert pool._open_room == sum(k - n for n in tenants.values() if n < k)
    assert pool.compressed_blocks == len(pages)
    for owner, t in tokens.items():
        blocks = len(pool.resident_blocks_of(owner)) + len(pool.pages_of(owner))
        assert blocks * pool.block_size >= t
    # The blocks kept out of compression are exactly the partly filled tails of owners
    # still writing (fewer tokens than their reserve).
    writing = {pool._owners[o].tail for o in tokens
               if pool._owners[o].room and pool._owners[o].tokens < pool._owners[o].reserve}
    assert set(pool._hot) == writing
    assert set(pool._lru) | set(pool._hot) == set(resident)
    if k > 1 and pool.blocks_in_use() > pool._gate_blocks:
        # Over the threshold only if there is nothing left to compress.
        assert not pool._lru


CHECKS = {
    IdealAllocator: check_ideal,
    PagedAllocator: check_paged,
    MonolithicAllocator: check_monolithic,
    PagedCompressedAllocator: check_compressed,
}


def replay(pool, ops):
    tokens: dict[int, int] = {}
    for op, owner, n, reserve in ops:
        before = fingerprint(pool)
        held_before = pool.held
        if op == "grow":
            if pool.grow(owner, n, reserve):
                tokens[owner] = tokens.get(owner, 0) + n
            else:
                assert fingerprint(pool) == before, "a failed grow changed the pool"
        elif op == "release":
            returned = pool.release(owner)
            tokens.pop(owner, None)
            assert pool.held == held_before - returned
            assert pool.tokens_of(owner) == 0
        else:
            pool.touch(owner)
            assert fingerprint(pool)[:2] == before[:2]
        assert 0 <= pool.held <= pool.capacity
        assert pool.free == pool.capacity - pool.held
        assert pool.stored == sum(tokens.values())
        assert all(pool.tokens_of(o) == t for o, t in tokens.items())
        CHECKS[type(pool)](pool, tokens)
    return tokens


@settings(max_examples=150, deadline=None)
@given(params=PARAMS, ops=OPS, name=st.sampled_from(sorted(REGISTRY)))
def test_every_model_keeps_its_invariants(params, ops, name):
    if params.capacity < params.block_size:
        return
    replay(make_allocator(name, params), ops)


@settings(max_examples=100, deadline=None)
@given(params=PARAMS, ops=OPS, name=st.sampled_from(sorted(REGISTRY)))
def test_releasing_every_owner_empties_the_pool(params, ops, name):
    pool = make_allocator(name, params)
    tokens = replay(pool, ops)
    for owner in list(tokens):
        pool.release(owner)
    assert (pool.stored, pool.held, pool.free) == (0, 0, pool.capacity)
    assert pool.largest_free() == pool.capacity


class SlotOracle:
    """A slot-by-slot monolithic arena: the obvious, slow implementation to compare with."""

    def __init__(self, capacity, placement):
        self.slots = [None] * capacity
        self.placement = placement

    def holes(self):
        out, start = [], None
        for i, s in enumerate(self.slots + ["end"]):
            if s is None and start is None:
                start = i
            elif s is not None and start is not None:
                out.append((start, i - start))
                start = None
        return out

    def place(self, owner, size):
        fits = [h for h in self.holes() if h[1] >= size]
        if not fits:
            return None
        if self.placement == "best_fit":
            fits.sort(key=lambda h: (h[1], h[0]))
        start, length = fits[0]
        at = start + length - size  # the top of the hole
        for i in range(at, at + size):
            self.slots[i] = owner
        return (at, size)

    def release(self, owner):
        self.slots = [None if s == owner else s for s in self.slots]


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 96),
    placement=st.sampled_from(["first_fit", "best_fit"]),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 9), st.integers(1, 24)), max_size=80),
)
def test_monolithic_placements_match_a_slot_by_slot_oracle(capacity, placement, ops):
    pool = MonolithicAllocator(capacity, placement)
    oracle = SlotOracle(capacity, placement)
    live = set()
    for is_alloc, owner, size in ops:
        if is_alloc and owner not in live:
            expected = oracle.place(owner, size)
            assert pool.grow(owner, size) == (expected is not None)
            if expected is not None:
                live.add(owner)
                assert pool.extent_of(owner) == expected
        elif not is_alloc:
            oracle.release(owner)
            pool.release(owner)
            live.discard(owner)
        assert pool.holes() == oracle.holes()


@settings(max_examples=100, deadline=None)
@given(capacity=st.integers(1, 200), ops=st.lists(
    st.tuples(st.booleans(), st.integers(0, 9), st.integers(1, 60)), max_size=60))
def test_ideal_and_paged_accept_exactly_what_fits(capacity, ops):
    ideal = IdealAllocator(capacity)
    paged = PagedAllocator(max(capacity, 8), 8)
    ideal_tokens: dict[int, int] = {}
    paged_tokens: dict[int, int] = {}
    for is_grow, owner, n in ops:
        if is_grow:
            fits = sum(ideal_tokens.values()) + n <= capacity
            assert ideal.grow(owner, n) == fits
            if fits:
                ideal_tokens[owner] = ideal_tokens.get(owner, 0) + n
            blocks = sum(math.ceil(t / 8) for o, t in paged_tokens.items() if o != owner)
            own = math.ceil((paged_tokens.get(owner, 0) + n) / 8)
            fits = blocks + own <= paged.num_blocks
            assert paged.grow(owner, n) == fits
            if fits:
                paged_tokens[owner] = paged_tokens.get(owner, 0) + n
        else:
            ideal.release(owner)
            paged.release(owner)
            ideal_tokens.pop(owner, None)
            paged_tokens.pop(owner, None)
