import numpy as np
import pytest

from kvsim import metrics


def test_external_fragmentation_is_the_unusable_share_of_free_memory():
    largest = np.array([4, 0, 8, 2])
    free = np.array([8, 0, 8, 10])
    assert metrics.external_fragmentation(largest, free).tolist() == [0.5, 0.0, 0.0, 0.8]


def test_internal_fragmentation_is_held_minus_footprint_minus_reserved():
    assert metrics.internal_fragmentation(np.array([32]), np.array([20.0]),
                                          np.array([4])).tolist() == [8.0]


def test_waste_breakdown_shares_are_time_averaged_while_there_is_work():
    footprint = np.array([0.0, 10, 30])
    reserved = np.array([0, 5, 5])
    internal = np.array([0.0, 5, 5])
    stranded = np.array([100, 0, 10])  # the idle first step is left out
    stored = np.array([0, 10, 30])
    w = metrics.waste_breakdown(footprint, reserved, internal, stranded, stored)
    assert (w.token_states, w.reserved, w.internal_fragmentation, w.external_fragmentation) == \
        pytest.approx((40 / 70, 10 / 70, 10 / 70, 10 / 70))


def test_waste_breakdown_of_an_idle_run_is_zero():
    z = np.zeros(3)
    assert metrics.waste_breakdown(z, z, z, z, z) == metrics.WasteBreakdown(0, 0, 0, 0)


def test_summary_of_a_hand_made_series():
    series = {
        "stored": np.array([10, 20]),
        "held": np.array([16, 32]),
        "reserved": np.array([0, 0]),
        "largest_free": np.array([48, 32]),
        "footprint": np.array([10.0, 20.0]),
        "compressed_blocks": np.array([0, 1]),
        "compressed_tokens": np.array([0, 5]),
    }
    row = metrics.summarize(series, capacity=64,
                            counts={"events": 4, "allocations": 4, "rejections": 1})
    assert row["allocation_success_rate"] == 0.75
    assert (row["peak_held"], row["mean_held"]) == (32, 24)
    assert (row["peak_free"], row["mean_free"]) == (48, 40)
    assert row["utilization"] == pytest.approx(15 / 64)
    assert row["mean_external_fragmentation"] == 0.0
    assert row["mean_internal_fragmentation"] == 9.0
    assert row["waste_internal_fragmentation"] == pytest.approx(18 / 48)
    assert row["compressed_token_fraction"] == pytest.approx(5 / 30)
    assert row["peak_compressed_blocks"] == 1
