"""The serving engine: hand-worked scenarios and properties over random workloads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.allocators import (
    IdealAllocator,
    MonolithicAllocator,
    PagedAllocator,
    PagedCompressedAllocator,
)
from kvsim.engines.cost import CostModel, HardwareSpec, ModelSpec
from kvsim.engines.serving import DONE, REJECTED, ServingEngine, reservation_slots
from kvsim.workloads.requests import RequestTrace

TINY = ModelSpec("tiny", parameters=1e6, num_layers=1, num_kv_heads=1, head_dim=1,
                 max_model_len=64)
HW = HardwareSpec("hw", memory_bytes=1e9, bandwidth_bytes_per_s=1e9, peak_flops=1e12)


def engine(**kwargs) -> ServingEngine:
    return ServingEngine(CostModel(TINY, HW, "unit"), **kwargs)


def requests(*rows) -> RequestTrace:
    arrival, prompt, output = zip(*rows)
    return RequestTrace(np.array(arrival, float), np.array(prompt), np.array(output))


def test_two_requests_batch_together_with_hand_computed_latencies():
    # A (t=0, prompt 4, output 3) and B (t=0.5, prompt 2, output 2), one second an iteration.
    # it0 [0,1): A prefills 4 tokens, emits token 1.  it1 [1,2): A decodes (token 2), B
    # arrived at 0.5 and prefills 2 (token 1).  it2 [2,3): both emit their last token.
    run = engine().run(requests((0.0, 4, 3), (0.5, 2, 2)), IdealAllocator(100))
    r = run.requests
    assert r["first_token"].tolist() == [1.0, 2.0]
    assert r["finish"].tolist() == [3.0, 3.0]
    s = run.series
    assert s["running"].tolist() == [1, 2, 2]
    assert s["batch_tokens"].tolist() == [4, 3, 2]
    assert s["prefill_tokens"].tolist() == [4, 2, 0]
    assert s["stored"].tolist() == [4, 7, 0]  # recorded after completions
    assert s["time"].tolist() == [1.0, 2.0, 3.0]
    assert run.counts["output_tokens"] == 5 and run.counts["completed"] == 2


def test_a_request_that_cannot_grow_preempts_the_newest_which_recomputes_later():
    # Paged, 4 blocks of 2 slots. A and B (prompt 3, output 4: 6 slots = 3 blocks each) both
    # fit at first (2 blocks each). it1: both write into their last block's spare slot.
    # it2: A needs a third block, none is free: B (newest) is preempted with 2 tokens done.
    # it3: A emits its last token; B cannot come back yet (A frees at the end of it3).
    # it4: B recomputes 3 + 2 tokens (3 blocks) and emits token 3. it5: B's last token.
    pool = PagedAllocator(capacity=8, block_size=2)
    run = engine().run(requests((0.0, 3, 4), (0.0, 3, 4)), pool)
    r = run.requests
    assert r["first_token"].tolist() == [1.0, 1.0]  # B's first token was before preemption
    assert r["finish"].tolist() == [4.0, 6.0]
    assert r["preemptions"].tolist() == [0, 1]
    s = run.series
    assert s["preempted"].tolist() == [0, 0, 1, 0, 0, 0]
    assert s["held"].tolist() == [8, 8, 6, 0, 6, 0]
    assert s["stored"].tolist() == [6, 8, 5, 0, 5, 0]
    assert s["running"].tolist() == [2, 2, 1, 1, 1, 1]
    assert s["waiting"].tolist() == [0, 0, 1, 1, 0, 0]
    assert run.counts["preemptions"] == 1 and run.counts["output_tokens"] == 8
    assert (pool.held, pool.stored) == (0, 0)


def test_a_request_that_can_never_fit_is_rejected_with_a_reason():
    run = engine().run(requests((0.0, 5, 10), (1.0, 2, 2)), IdealAllocator(10))
    assert run.requests["state"].tolist() == [REJECTED, DONE]
    assert run.rejection_reasons == {0: "needs 14 slots; the pool holds 10"}
    too_long = engine(max_batched_tokens=4).run(requests((0.0, 5, 1)), IdealAllocator(10))
    assert "exceeds max_batched_tokens=4" in too_long.rejection_reasons[0]


def test_a_request_the_watermark_keeps_out_of_an_empty_pool_is_rejected():
    pool = PagedAllocator(capacity=8, block_size=2, watermark=0.5)  # new owners leave 2 blocks
    run = engine().run(requests((0.0, 5, 2), (0.0, 3, 1)), pool)
    assert run.requests["state"].tolist() == [REJECTED, DONE]
    assert "watermark" in run.rejection_reasons[0]


def test_max_num_seqs_limits_the_batch_and_admission_is_first_come_first_served():
    run = engine(max_num_seqs=1).run(requests((0.0, 2, 2), (0.0, 1, 1), (0.0, 1, 1)),
                                     IdealAllocator(100))
    # One at a time, in order: [0,2) the first, [2,3) the second, [3,4) the third.
    assert run.requests["finish"].tolist() == [2.0, 3.0, 4.0]
    assert run.series["running"].tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize(("policy", "slots"), [("oracle", 6), ("pow2", 8), ("max", 64)])
def test_monolithic_reserves_by_policy(policy, slots):
    assert reservation_slots(policy, 3, 4, 64) == slots
    pool = MonolithicAllocator(capacity=100)
    run = engine(reservation=policy).run(requests((0.0, 3, 4)), pool)
    # After the prefill: 3 tokens stored in an extent of `slots`; 3 of the rest will be used.
    assert run.series["held"][0] == slots
    assert run.series["reserved"][0] == 3
    assert run.counts["completed"] == 1


def test_reservation_max_rejects_everything_when_the_pool_is_smaller_than_a_sequence():
    run = engine(reservation="max").run(requests((0.0, 3, 4)), MonolithicAllocator(32))
    assert run.requests["state"].tolist() == [REJECTED]


class CheckedPool:
    """Wraps an allocator and checks, on every call, what the engine relies on."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.capacity = inner.capacity
        self.compression_ratio = inner.compression_ratio

    def grow(self, owner, n, reserve=0):
        before = self.inner.snapshot()
        ok = self.inner.grow(owner, n, reserve)
        if not ok:
            assert self.inner.snapshot() == before
        assert self.inner.held <= self.capacity
        return ok

    def release(self, owner):
        held = self.inner.held
        returned = self.inner.release(owner)
        assert self.inner.tokens_of(owner) == 0 and self.inner.headroom(owner) == 0
        assert self.inner.held == held - returned
        return returned

    def __getattr__(self, name):
        return getattr(self.inner, name)


POOLS = {
    "ideal": lambda cap, bs: IdealAllocator(cap),
    "monolithic": lambda cap, bs: MonolithicAllocator(cap),
    "paged": lambda cap, bs: PagedAllocator(cap, bs),
    "paged_watermark": lambda cap, bs: PagedAllocator(cap, bs, watermark=0.3),
    "paged_compressed": lambda cap, bs: PagedCompressedAllocator(cap, bs, 0.25, 0.6),
}


@settings(max_examples=120, deadline=None)
@given(
    rows=st.lists(st.tuples(st.floats(0, 20), st.integers(1, 12), st.integers(1, 12)),
                  min_size=1, max_size=14),
    name=st.sampled_from(sorted(POOLS)),
    capacity=st.integers(8, 60),
    block_size=st.sampled_from([1, 2, 4]),
    reservation=st.sampled_from(["oracle", "pow2", "max"]),
    max_num_seqs=st.integers(1, 6),
)
def test_serving_properties(rows, name, capacity, block_size, reservation, max_num_seqs):
    rows = sorted(rows)
    trace = requests(*rows)
    pool = CheckedPool(POOLS[name](capacity, block_size))
    run = engine(reservation=reservation, max_num_seqs=max_num_seqs).run(trace, pool)
    state = run.requests["state"]
    # Every request completes or is rejected, exactly once.
    assert set(state.tolist()) <= {DONE, REJECTED}
    assert run.counts["completed"] == int((state == DONE).sum())
    assert run.counts["rejected"] == int((state == REJECTED).sum()) == len(run.rejection_reasons)
    # Output tokens produced equal the output lengths of the completed requests.
    assert run.counts["output_tokens"] == int(trace.output[state == DONE].sum())
    # Held memory never exceeds capacity; everything is released at the end.
    assert (run.series["held"] <= pool.capacity).all()
    assert (pool.inner.held, pool.inner.stored) == (0, 0)
    done = state == DONE
    r = run.requests
    assert (r["first_token"][done] > r["arrival"][done]).all()
    assert (r["finish"][done] >= r["first_token"][done]).all()
    # With one second an iteration, a request takes at least one iteration per output token.
    assert (r["finish"][done] - r["arrival"][done] >= trace.output[done] - 1).all()
    if name != "paged_compressed":
        assert (run.series["stored"] <= run.series["held"]).all()


def test_the_whole_trace_is_simulated_for_every_model():
    from kvsim.workloads.trace_file import TraceWorkload

    trace = TraceWorkload(first_n=300, max_model_len=4096).generate()
    cost = CostModel(ModelSpec("Llama-2-13B", 13e9, 40, 40, 128), HardwareSpec(
        "A100-80GB", 80 * 2 ** 30, 2.039e12, 312e12))
    for name, make in POOLS.items():
        run = ServingEngine(cost).run(trace, make(20_000, 16))
        assert run.counts["completed"] + run.counts["rejected"] == 300
        assert math.isclose(run.series["time"][-1], np.nanmax(run.requests["finish"]),
                            abs_tol=1e-6)  # the series keeps microseconds
