import pytest

from kvsim.allocators import MonolithicAllocator
from kvsim.errors import ConfigError


def test_monolithic_first_fit_cuts_extents_from_the_top_of_the_first_hole():
    pool = MonolithicAllocator(capacity=16)
    assert pool.grow(1, 4) and pool.extent_of(1) == (12, 4)
    assert pool.grow(2, 4) and pool.extent_of(2) == (8, 4)
    assert pool.grow(3, 4) and pool.extent_of(3) == (4, 4)
    assert pool.holes() == [(0, 4)]


def test_monolithic_holes_are_real_external_fragmentation():
    pool = MonolithicAllocator(capacity=16)
    for owner in (1, 2, 3):
        pool.grow(owner, 4)  # extents at 12, 8, 4; hole [0, 4)
    assert pool.release(2) == 4
    assert pool.holes() == [(0, 4), (8, 4)]
    assert (pool.free, pool.largest_free()) == (8, 4)
    # 8 slots are free, but no 5 of them are contiguous.
    assert not pool.grow(4, 5)
    assert pool.holes() == [(0, 4), (8, 4)] and pool.extent_of(4) is None
    assert pool.grow(5, 3) and pool.extent_of(5) == (1, 3)  # first hole in address order
    assert pool.holes() == [(0, 1), (8, 4)]


def _pool_with_holes(placement):
    """Holes (0, 5) and (9, 3), extents A=(12, 4) and C=(5, 4)."""
    pool = MonolithicAllocator(capacity=16, placement=placement)
    pool.grow("A", 4)
    pool.grow("B", 3)
    pool.grow("C", 4)
    assert [pool.extent_of(o) for o in "ABC"] == [(12, 4), (9, 3), (5, 4)]
    pool.release("B")
    assert pool.holes() == [(0, 5), (9, 3)]
    return pool


def test_first_fit_takes_the_lowest_hole_that_fits():
    pool = _pool_with_holes("first_fit")
    assert pool.grow("D", 3) and pool.extent_of("D") == (2, 3)
    assert pool.holes() == [(0, 2), (9, 3)]


def test_best_fit_takes_the_smallest_hole_that_fits():
    pool = _pool_with_holes("best_fit")
    assert pool.grow("D", 3) and pool.extent_of("D") == (9, 3)
    assert pool.holes() == [(0, 5)]


@pytest.mark.parametrize("placement", ["first_fit", "best_fit"])
def test_release_coalesces_with_both_neighbours(placement):
    pool = _pool_with_holes(placement)
    assert pool.release("C") == 4
    assert pool.holes() == [(0, 12)]
    assert pool.largest_free() == 12
    assert pool.release("A") == 4
    assert pool.holes() == [(0, 16)]
    assert (pool.stored, pool.held) == (0, 0)


def test_a_reservation_holds_slots_for_future_tokens():
    pool = MonolithicAllocator(capacity=16)
    assert pool.grow(1, 3, reserve=8)
    assert pool.extent_of(1) == (8, 8)
    assert pool.snapshot()[:3] == (3, 8, 5)  # stored, held, reserved
    assert pool.grow(1, 5)  # fills the reservation
    assert pool.snapshot()[:3] == (8, 8, 0)


def test_growing_past_the_extent_extends_in_place_or_fails():
    pool = MonolithicAllocator(capacity=16)
    pool.grow(1, 4)  # (12, 4)
    pool.grow(2, 4)  # (8, 4)
    pool.release(1)  # hole (12, 4) right after owner 2
    assert pool.grow(2, 3)  # extends into it
    assert pool.extent_of(2) == (8, 7) and pool.holes() == [(0, 8), (15, 1)]
    assert not pool.grow(2, 2)  # one slot follows the extent
    assert pool.extent_of(2) == (8, 7) and pool.tokens_of(2) == 7


def test_monolithic_rejects_an_unknown_placement():
    with pytest.raises(ConfigError) as info:
        MonolithicAllocator(capacity=16, placement="worst_fit")
    assert info.value.key == "placement"
