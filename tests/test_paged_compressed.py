import pytest

from kvsim.allocators import PagedCompressedAllocator
from kvsim.errors import ConfigError


def make(capacity=64, block_size=16, r=0.5, threshold=1.0):
    return PagedCompressedAllocator(capacity, block_size, compression_ratio=r,
                                    pressure_threshold=threshold)


def test_gate_compresses_the_coldest_blocks_and_accounts_physically():
    pool = make(r=0.25, threshold=0.5)  # 4 blocks, k = 4 per page, gate above 2 in use
    assert pool.grow(1, 16) and pool.grow(2, 16)
    assert pool.compressed_blocks == 0 and pool.blocks_in_use() == 2
    assert pool.grow(3, 8)  # 3 in use > 2: compress blocks 0 then 1
    # Block 0 becomes a page (frees nothing); block 1 moves into it (frees block 1).
    assert pool.compressed_blocks == 2 and pool.compressions == 2
    assert pool.page_tenants() == {0: 2}
    assert pool.blocks_in_use() == 2 and sorted(pool.free_blocks()) == [1, 3]
    assert (pool.stored, pool.held, pool.compressed_tokens) == (40, 32, 32)
    # footprint: 8 resident tokens + 32 compressed tokens at r = 0.25
    assert pool.footprint() == 16.0
    assert pool.grow(3, 8)  # fills owner 3's block: nothing new


def test_a_page_returns_to_the_pool_when_its_last_tenant_leaves():
    pool = make(r=0.25, threshold=0.5)
    pool.grow(1, 16)
    pool.grow(2, 16)
    pool.grow(3, 8)
    assert pool.release(1) == 0  # page 0 still holds owner 2's block
    assert pool.page_tenants() == {0: 1} and pool.compressed_blocks == 1
    assert pool.release(2) == 16
    assert pool.page_tenants() == {} and pool.compressed_tokens == 0
    assert (pool.stored, pool.held) == (8, 16)


def test_an_allocation_that_would_fail_compresses_cold_blocks_first():
    pool = make(r=0.5)  # threshold 1: the gate never opens
    for owner in range(4):
        assert pool.grow(owner, 16)
    assert pool.free == 0
    assert pool.grow(9, 16)  # compress blocks 0 and 1 into one page, take block 1
    assert pool.compressions == 2
    assert pool.resident_blocks_of(9) == [1]
    assert pool.pages_of(0) == [0] and pool.pages_of(1) == [0]


def test_a_grow_that_compression_cannot_rescue_changes_nothing():
    pool = make(capacity=32, r=0.5)  # 2 blocks
    pool.grow(1, 16)
    pool.grow(2, 16)
    before = (pool.snapshot(), pool.compressions, pool.resident_blocks_of(1))
    # Compressing both blocks frees only one: not enough for two.
    assert not pool.grow(3, 32)
    assert (pool.snapshot(), pool.compressions, pool.resident_blocks_of(1)) == before


def test_the_growing_owners_partly_filled_tail_is_never_compressed_for_it():
    pool = make(r=0.5)
    pool.grow(1, 8)  # block 0, 8 slots of room
    for owner in (2, 3, 4):
        pool.grow(owner, 16)
    assert pool.grow(1, 4)  # into the room of block 0
    assert pool.grow(1, 8)  # 4 into block 0, 4 into a block freed by compressing 1 and 2
    assert pool.resident_blocks_of(1) == [0, 2]
    assert pool.pages_of(2) == [1] and pool.pages_of(3) == [1]
    assert pool.tokens_of(1) == 20


def test_a_compressed_tail_is_sealed():
    pool = make(r=0.5, threshold=0.25)  # gate above 1 block in use
    pool.grow(1, 8)
    pool.grow(2, 8)  # compresses owner 1's tail (8 tokens), then owner 2's
    assert pool.compressed_blocks == 2 and pool.blocks_in_use() == 1
    assert pool.grow(1, 1)  # sealed: a new block, which the gate compresses in turn
    assert pool.compressed_blocks == 3 and pool.compressed_tokens == 17
    assert pool.blocks_in_use() == 2 and pool.held == 32


def test_ratios_above_one_half_pack_one_block_per_page_so_the_gate_stays_shut():
    pool = make(r=0.75, threshold=0.25)
    for owner in range(4):
        assert pool.grow(owner, 16)
    assert pool.compressions == 0
    assert not pool.grow(9, 1)


def test_touch_makes_an_owner_warm():
    pool = make(r=0.5)
    for owner in range(4):
        pool.grow(owner, 16)
    pool.touch(0)
    assert pool.grow(9, 16)  # compresses blocks 1 and 2, not 0
    assert pool.pages_of(0) == [] and pool.pages_of(1) == [1] and pool.pages_of(2) == [1]


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"compression_ratio": 0.0}, "compression_ratio"),
    ({"compression_ratio": 1.0}, "compression_ratio"),
    ({"pressure_threshold": 0.0}, "pressure_threshold"),
    ({"pressure_threshold": 1.01}, "pressure_threshold"),
])
def test_compressed_rejects_bad_parameters_by_name(kwargs, key):
    with pytest.raises(ConfigError) as info:
        PagedCompressedAllocator(64, 16, **kwargs)
    assert info.value.key == key


def test_the_block_an_owner_is_still_writing_is_never_compressed():
    pool = make(r=0.5, threshold=0.25)  # 4 blocks; gate above 1 in use
    assert pool.grow(1, 8, reserve=40)  # still writing: its tail (block 0) stays hot
    assert pool.grow(2, 16)  # 2 in use > 1: only owner 2's block may be compressed
    assert pool.pages_of(1) == [] and pool.pages_of(2) == [1]
    assert pool.headroom(1) == 8
    assert pool.grow(1, 8)  # fills block 0: now an ordinary block, compressed by the gate
    assert pool.pages_of(1) == [1] and pool.headroom(1) == 0
