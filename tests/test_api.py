import pandas as pd
import pytest

import kvsim
from kvsim.allocators import REGISTRY


@pytest.fixture(scope="module")
def small():
    return kvsim.simulate("workload=mixed", "workload.steps=800", capacity=1024)


def test_simulate_gives_a_summary_row_per_model_and_a_long_series(small):
    assert small.summary["allocator"].tolist() == list(REGISTRY)
    assert len(small.series) == 800 * len(REGISTRY)
    assert set(small.series["allocator"].astype(str)) == set(REGISTRY)
    assert (small.summary["capacity"] == 1024).all()


def test_the_same_config_and_seed_give_the_same_numbers(small):
    again = kvsim.simulate("workload=mixed", "workload.steps=800", capacity=1024)
    numbers = small.summary.drop(columns=["wall_seconds"])
    pd.testing.assert_frame_equal(numbers, again.summary.drop(columns=["wall_seconds"]))
    pd.testing.assert_frame_equal(small.series, again.series)


def test_ideal_is_a_bound_on_what_the_others_store(small):
    s = small.summary.set_index("allocator")
    assert s.loc["ideal", "allocation_success_rate"] >= s.loc["paged", "allocation_success_rate"]
    assert s.loc["ideal", "waste_token_states"] == 1.0


def test_saved_tables_read_back_unchanged(small, tmp_path):
    small.save(tmp_path)
    summary, series = kvsim.load_tables(tmp_path)
    pd.testing.assert_frame_equal(summary, small.summary)
    pd.testing.assert_frame_equal(series, small.series)
    assert (tmp_path / "summary.csv").read_text().startswith("allocator,")


def test_simulate_rejects_a_bad_value_before_running():
    with pytest.raises(kvsim.ConfigError, match="compression_ratio"):
        kvsim.simulate(compression_ratio=2)


def test_sweep_and_load_results_from_python(tmp_path):
    outcome = kvsim.run_grid("allocator=ideal,paged", "seed=range(2)", "workload.steps=200",
                          directory=tmp_path, n_jobs=1)
    assert len(outcome.results) == 4 and (outcome.results["status"] == "ok").all()
    results, series = kvsim.load_results(tmp_path)
    assert len(results) == 4 and len(series) == 4 * 200
