import numpy as np

from kvsim.allocators import IdealAllocator, PagedAllocator
from kvsim.engines import EventEngine
from kvsim.metrics import series_frame_columns
from kvsim.workloads import ALLOC, FREE, EventTrace


def trace(events, steps):
    step, kind, owner, size = (np.array(x, dtype=np.int64) for x in zip(*events))
    return EventTrace(steps, step, kind.astype(np.int8), owner, size)


EVENTS = [  # step, kind, owner, size
    (0, ALLOC, 0, 5),
    (0, ALLOC, 1, 3),
    (2, FREE, 0, 0),
    (2, ALLOC, 2, 10),  # 3 + 10 > 12: rejected
    (3, FREE, 2, 0),  # the free of a rejected allocation releases nothing
]


def test_engine_applies_events_and_records_every_step():
    run = EventEngine().run(trace(EVENTS, steps=5), IdealAllocator(12))
    s = run.series
    assert s["step"].tolist() == [0, 1, 2, 3, 4]
    assert s["requested"].tolist() == [8, 0, 10, 0, 0]
    assert s["rejected"].tolist() == [0, 0, 10, 0, 0]
    assert s["stored"].tolist() == [8, 8, 3, 3, 3]
    assert s["largest_free"].tolist() == [4, 4, 9, 9, 9]
    assert run.counts == {"events": 5, "allocations": 3, "rejections": 1}


def test_record_every_keeps_every_kth_step():
    run = EventEngine(record_every=2).run(trace(EVENTS, steps=5), PagedAllocator(16, 4))
    s = run.series
    assert s["step"].tolist() == [0, 2, 4]
    # Step 0: 5 tokens -> 2 blocks, 3 -> 1 block. Step 2: owner 0 leaves, and 10 tokens
    # take the 3 free blocks (where ideal memory of 12 slots refused them).
    # Step 4: only owner 1's block is left.
    assert s["held"].tolist() == [12, 16, 4]
    assert s["stored"].tolist() == [8, 13, 3]
    assert s["rejected"].tolist() == [0, 0, 0]


def test_footprint_counts_compressed_tokens_at_the_ratio():
    from kvsim.allocators import PagedCompressedAllocator

    events = [(0, ALLOC, 0, 16), (0, ALLOC, 1, 16), (1, ALLOC, 2, 16)]
    pool = PagedCompressedAllocator(64, 16, compression_ratio=0.25, pressure_threshold=0.5)
    run = EventEngine().run(trace(events, steps=2), pool)
    s = series_frame_columns(run.series, run.capacity, run.compression_ratio)
    # Step 1: 3 blocks > 2 -> blocks 0 and 1 compressed into one page.
    assert s["compressed_tokens"].tolist() == [0, 32]
    assert s["footprint"].tolist() == [32.0, 16.0 + 32 * 0.25]
    assert s["held"].tolist() == [32, 32]
