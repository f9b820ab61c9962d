import pytest

from kvsim.allocators import IdealAllocator


def test_ideal_stores_exactly_the_live_tokens():
    pool = IdealAllocator(capacity=10)
    assert pool.grow(1, 6)
    assert pool.grow(2, 3)
    assert pool.grow(1, 1)
    assert (pool.stored, pool.held, pool.free, pool.largest_free()) == (10, 10, 0, 0)
    assert not pool.grow(3, 1)
    assert pool.release(1) == 7
    assert (pool.stored, pool.held, pool.free, pool.largest_free()) == (3, 3, 7, 7)
    assert pool.tokens_of(1) == 0 and pool.tokens_of(2) == 3


def test_ideal_release_of_an_unknown_owner_returns_nothing():
    pool = IdealAllocator(capacity=4)
    assert pool.release(99) == 0


def test_a_grow_of_zero_tokens_is_a_programming_error():
    with pytest.raises(ValueError, match="n >= 1"):
        IdealAllocator(capacity=4).grow(1, 0)
