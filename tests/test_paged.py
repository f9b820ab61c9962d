import pytest

from kvsim.allocators import PagedAllocator
from kvsim.errors import ConfigError


def test_paged_owner_holds_ceil_tokens_over_block_size_blocks():
    pool = PagedAllocator(capacity=64, block_size=16)  # 4 blocks
    assert pool.grow(1, 20)
    assert pool.blocks_of(1) == [0, 1]
    assert (pool.stored, pool.held) == (20, 32)
    assert pool.grow(2, 16)
    assert pool.blocks_of(2) == [2]
    # 12 more tokens fill owner 1's second block exactly: no new block.
    assert pool.grow(1, 12)
    assert pool.blocks_of(1) == [0, 1] and pool.held == 48
    # One more token needs a third block.
    assert pool.grow(1, 1)
    assert pool.blocks_of(1) == [0, 1, 3]
    assert (pool.stored, pool.held, pool.free) == (49, 64, 0)


def test_paged_failed_grow_changes_nothing():
    pool = PagedAllocator(capacity=64, block_size=16)  # 4 blocks
    assert pool.grow(1, 33)  # 3 blocks, 15 slots of room in the last
    assert not pool.grow(2, 17)  # a new owner needing 2 blocks; 1 is free
    assert not pool.grow(1, 32)  # 65 tokens would need 5 blocks
    assert (pool.stored, pool.held, pool.blocks_of(1), pool.blocks_of(2)) == (33, 48, [0, 1, 2], [])
    assert pool.free_blocks() == [3]
    assert pool.grow(1, 31)  # 64 tokens: exactly 4 blocks
    assert pool.free == 0


def test_paged_free_returns_exactly_the_owners_blocks():
    # The sketch's PagedKV.free(n) released the first n used pages of anyone.
    pool = PagedAllocator(capacity=64, block_size=16)
    pool.grow(1, 16)
    pool.grow(2, 32)
    pool.grow(3, 16)
    assert pool.release(2) == 32
    assert pool.blocks_of(1) == [0] and pool.blocks_of(3) == [3]
    assert sorted(pool.free_blocks()) == [1, 2]
    assert (pool.stored, pool.held) == (32, 32)


def test_paged_watermark_applies_to_new_owners_only():
    pool = PagedAllocator(capacity=64, block_size=16, watermark=0.25)  # keep 1 of 4 free
    assert pool.grow(1, 48)  # 3 blocks, leaves 1
    assert not pool.grow(2, 1)  # a new owner may not take the last block
    assert pool.grow(1, 16)  # a running owner may
    assert pool.free == 0


def test_paged_pool_is_whole_blocks_only():
    pool = PagedAllocator(capacity=70, block_size=16)
    assert (pool.num_blocks, pool.capacity) == (4, 64)


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"capacity": 8, "block_size": 16}, "capacity"),
    ({"capacity": 64, "block_size": 0}, "block_size"),
    ({"capacity": 0, "block_size": 16}, "capacity"),
    ({"capacity": 64, "block_size": 16, "watermark": 1.5}, "watermark"),
])
def test_paged_rejects_bad_parameters_by_name(kwargs, key):
    with pytest.raises(ConfigError) as info:
        PagedAllocator(**kwargs)
    assert info.value.key == key
