import numpy as np
import pytest

from kvsim.allocators import IdealAllocator
from kvsim.engines import EventEngine
from kvsim.errors import ConfigError
from kvsim.workloads import ALLOC, FREE, SIZE_CLASSES, SyntheticWorkload


def arrays(trace):
    return [trace.step, trace.kind, trace.owner, trace.size]


def test_same_seed_same_trace_and_another_seed_another():
    a = SyntheticWorkload(steps=500, seed=3).generate()
    b = SyntheticWorkload(steps=500, seed=3).generate()
    c = SyntheticWorkload(steps=500, seed=4).generate()
    assert all(np.array_equal(x, y) for x, y in zip(arrays(a), arrays(b)))
    assert not np.array_equal(a.size, c.size)


def test_no_event_is_lost_when_many_fall_on_one_step():
    # Five allocations a step, each freed exactly one step later: every step after the
    # first carries ten events; the sketch kept one of them.
    w = SyntheticWorkload(steps=50, allocs_per_step=5, lifetime_range=(1, 1))
    t = w.generate()
    allocs, frees = t.kind == ALLOC, t.kind == FREE
    assert allocs.sum() == 250
    assert frees.sum() == 245  # the last step's allocations live to the end
    assert np.bincount(t.step[frees], minlength=50).tolist() == [0] + [5] * 49
    assert sorted(t.owner[allocs].tolist()) == list(range(250))
    freed_owner_steps = dict(zip(t.owner[frees].tolist(), t.step[frees].tolist()))
    alloc_steps = dict(zip(t.owner[allocs].tolist(), t.step[allocs].tolist()))
    assert all(step == alloc_steps[o] + 1 for o, step in freed_owner_steps.items())


def test_each_free_follows_its_allocation_by_a_lifetime_in_range():
    t = SyntheticWorkload(steps=2000, lifetime_range=(5, 50), free_probability=0.3).generate()
    alloc_step = dict(zip(t.owner[t.kind == ALLOC].tolist(), t.step[t.kind == ALLOC].tolist()))
    frees = list(zip(t.owner[t.kind == FREE].tolist(), t.step[t.kind == FREE].tolist()))
    assert len({o for o, _ in frees}) == len(frees)  # freed at most once
    assert all(5 <= s - alloc_step[o] <= 50 for o, s in frees)
    assert 0.25 < len(frees) / len(alloc_step) < 0.35


def test_events_are_in_step_order_with_frees_first():
    t = SyntheticWorkload(steps=300, allocs_per_step=3, lifetime_range=(1, 4)).generate()
    key = t.step * 2 + t.kind  # FREE = 0 sorts before ALLOC = 1 within a step
    assert np.all(np.diff(key) >= 0)


@pytest.mark.parametrize("size_class", sorted(SIZE_CLASSES))
def test_sizes_stay_inside_the_class(size_class):
    lo, hi = SIZE_CLASSES[size_class]
    t = SyntheticWorkload(steps=3000, size_class=size_class).generate()
    sizes = t.size[t.kind == ALLOC]
    assert sizes.min() == lo and sizes.max() == hi


def test_a_custom_size_range_overrides_the_class():
    t = SyntheticWorkload(steps=2000, size_class="short", size_range=(40, 41)).generate()
    assert set(t.size[t.kind == ALLOC].tolist()) == {40, 41}


def test_default_lifetimes_follow_littles_law():
    # mixed sizes average 16.5 slots; 0.85 * 4096 / 16.5 = 211.0 steps
    assert SyntheticWorkload(capacity=4096).lifetimes == (106, 316)


def test_the_default_workload_is_a_steady_state_near_capacity():
    w = SyntheticWorkload(steps=10_000, capacity=4096)
    run = EventEngine().run(w.generate(), IdealAllocator(4096))
    stored = run.series["stored"]
    second_half = stored[5000:]
    # Live tokens average target_load of the pool, and do not drift upward.
    assert 0.8 * 4096 < second_half.mean() < 0.9 * 4096
    assert abs(stored[5000:7500].mean() - stored[7500:].mean()) < 0.05 * 4096
    assert run.counts["rejections"] < 0.01 * run.counts["allocations"]


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"lifetime_range": (9, 3)}, "workload.lifetime_range"),
    ({"size_range": (0, 3)}, "workload.size_range"),
    ({"size_class": "huge"}, "workload.size_class"),
    ({"free_probability": 1.5}, "workload.free_probability"),
    ({"steps": 0}, "workload.steps"),
])
def test_bad_workload_values_are_named(kwargs, key):
    with pytest.raises(ConfigError) as info:
        SyntheticWorkload(**kwargs)
    assert info.value.key == key
