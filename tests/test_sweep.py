"""Sweeps: grid expansion, parallel runs, resume, failures, backends, the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import kvsim
import kvsim.sweep as sweep_module
from kvsim.config import group_options
from kvsim.grid import expand
from kvsim.report import build_report
from kvsim.sweep import run_sweep

SMALL = ["allocator=paged,paged_compressed", "workload=short,long",
         "compression_ratio=0.25,0.5", "pressure_threshold=0.6,0.9", "seed=range(2)",
         "workload.steps=600", "record_every=5"]


def numbers(results: pd.DataFrame) -> pd.DataFrame:
    return results.drop(columns=["wall_seconds"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sweep")
    grid = expand(SMALL)
    return grid, run_sweep(grid, directory, n_jobs=1, progress=False)


def test_a_parameter_a_model_ignores_does_not_multiply_its_cells():
    grid = expand(SMALL)
    by_model = pd.Series([c.columns["allocator"] for c in grid.cells]).value_counts()
    assert by_model["paged"] == 2 * 2  # workloads x seeds
    assert by_model["paged_compressed"] == 2 * 2 * 2 * 2
    paged = [c for c in grid.cells if c.columns["allocator"] == "paged"]
    assert all(c.columns["compression_ratio"] is None for c in paged)


def test_serving_settings_do_not_multiply_synthetic_cells():
    grid = expand(["allocator=paged", "hardware=a100_40gb,h100_80gb", "serving.max_num_seqs=8,16"])
    assert len(grid.cells) == 1


def test_every_cell_equals_the_single_run_of_its_configuration(small_sweep):
    _, outcome = small_sweep
    results = outcome.results
    assert (results["status"] == "ok").all() and len(results) == 20
    for row in results.sample(6, random_state=0).itertuples():
        overrides = [f"allocator={row.allocator}", f"workload={row.size_class}",
                     f"seed={row.seed}", "workload.steps=600", "record_every=5"]
        if row.allocator == "paged_compressed":
            overrides += [f"compression_ratio={row.compression_ratio}",
                          f"pressure_threshold={row.pressure_threshold}"]
        single = kvsim.simulate(*overrides).summary.iloc[0]
        for metric in ("allocation_success_rate", "mean_held", "utilization",
                       "waste_internal_fragmentation", "compressions"):
            assert getattr(row, metric) == single[metric], metric


def test_results_are_the_same_whatever_n_jobs(small_sweep, tmp_path):
    grid, outcome = small_sweep
    parallel = run_sweep(grid, tmp_path, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(numbers(parallel.results), numbers(outcome.results))
    one = pd.read_parquet(outcome.directory / "series.parquet")
    two = pd.read_parquet(tmp_path / "series.parquet")
    pd.testing.assert_frame_equal(one, two)


def test_the_dask_backend_gives_the_same_results(small_sweep, tmp_path):
    pytest.importorskip("distributed")
    grid, outcome = small_sweep
    dask = run_sweep(grid, tmp_path, n_jobs=2, backend="dask", progress=False)
    pd.testing.assert_frame_equal(numbers(dask.results), numbers(outcome.results))


def test_resume_runs_only_the_cells_without_a_result(small_sweep, tmp_path):
    grid, outcome = small_sweep
    first = run_sweep(grid, tmp_path, n_jobs=1, progress=False)
    chunk = sorted((tmp_path / "cells").glob("*.json"))[1]
    removed = [row["cell"] for row in json.loads(chunk.read_text())]
    chunk.unlink()  # as if the sweep had been killed while these cells were in flight
    ran = []

    def counting(cell):
        ran.append(cell.id)
        return sweep_module.run_cell(cell)

    again = run_sweep(grid, tmp_path, n_jobs=1, progress=False, cell_runner=counting)
    assert 0 < len(removed) < len(grid.cells)
    assert sorted(ran) == sorted(removed)
    assert (again.ran, again.reused) == (len(removed), len(grid.cells) - len(removed))
    pd.testing.assert_frame_equal(numbers(again.results), numbers(first.results))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "series.parquet"),
                                  pd.read_parquet(outcome.directory / "series.parquet"))
    forced = run_sweep(grid, tmp_path, n_jobs=1, progress=False, force=True)
    assert forced.ran == len(grid.cells)


def test_a_failing_cell_is_recorded_and_the_others_are_kept(small_sweep, tmp_path, monkeypatch):
    grid, outcome = small_sweep
    victim = grid.cells[4]
    real_run_model = sweep_module.run_model

    def run_or_fail(spec, name, trace):
        if spec.workload.seed == victim.config["seed"] and name == victim.config["allocators"][0] \
                and spec.workload.size_class == victim.config["workload"]["size_class"] \
                and spec.pool.compression_ratio == victim.config["compression_ratio"] \
                and spec.pool.pressure_threshold == victim.config["pressure_threshold"]:
            raise RuntimeError("deliberate failure")
        return real_run_model(spec, name, trace)

    monkeypatch.setattr(sweep_module, "run_model", run_or_fail)
    failed = run_sweep(grid, tmp_path, n_jobs=1, progress=False)  # n_jobs=1: in this process
    assert failed.failed == 1
    row = failed.results.set_index("cell").loc[victim.id]
    assert row["status"] == "failed" and row["error"] == "RuntimeError: deliberate failure"
    ok = failed.results[failed.results["status"] == "ok"]
    expected = outcome.results[outcome.results["cell"] != victim.id]
    pd.testing.assert_frame_equal(numbers(ok), numbers(expected), check_dtype=False)
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert len(on_disk) == len(grid.cells)
    assert victim.id not in set(pd.read_parquet(tmp_path / "series.parquet")["cell"])
    monkeypatch.setattr(sweep_module, "run_model", real_run_model)
    retried = run_sweep(grid, tmp_path, n_jobs=1, progress=False)
    assert retried.ran == 1 and retried.failed == 0  # a failed cell has no result: it reruns


def test_a_bad_value_in_a_sweep_stops_before_any_work(tmp_path):
    with pytest.raises(kvsim.ConfigError) as info:
        expand(["compression_ratio=0.5,1.5", f"hydra.sweep.dir={tmp_path / 'never'}"])
    assert info.value.key == "compression_ratio"
    assert not (tmp_path / "never").exists()


def test_the_report_is_built_from_disk_alone(small_sweep, tmp_path):
    _, outcome = small_sweep
    for name in ("results.parquet", "series.parquet"):  # no cells/, nothing to rerun from
        (tmp_path / name).write_bytes((outcome.directory / name).read_bytes())
    index = build_report(tmp_path, metrics=["allocation_success_rate"], fmt="svg")
    text = index.read_text()
    for stem in ("heatmap_allocation_success_rate", "vs_compression_ratio_allocation_success_rate",
                 "memory_over_time", "fragmentation_over_time", "waste_breakdown"):
        assert (tmp_path / "report" / f"{stem}.svg").stat().st_size > 0
        assert f"{stem}.svg" in text


def test_the_report_of_a_single_run_says_what_it_cannot_draw(tmp_path):
    kvsim.simulate("workload.steps=300").save(tmp_path)
    text = build_report(tmp_path).read_text()
    assert "not drawn" in text and "waste_breakdown.png" in text


def test_the_command_line_overrides_an_experiments_grid_key_by_key():
    grid = expand(["experiment=compression_study", "compression_ratio=0.25", "seed=0",
                   "workload=short,long"])
    compressed = [c for c in grid.cells if c.columns["allocator"] == "paged_compressed"]
    assert {c.columns["compression_ratio"] for c in compressed} == {0.25}
    assert {c.columns["seed"] for c in grid.cells} == {0}
    assert {c.columns["size_class"] for c in grid.cells} == {"short", "long"}
    assert len(compressed) == 2 * 5  # workloads x the experiment's five thresholds


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes_into_a_grid(experiment):
    grid = expand([f"experiment={experiment}"])
    assert len(grid.cells) > 1
    assert len({c.id for c in grid.cells}) == len(grid.cells)


def test_kvsim_multirun_in_a_subprocess(tmp_path):
    script = Path(sys.executable).with_name("kvsim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "kvsim.cli"]
    out = tmp_path / "sweep"
    done = subprocess.run(
        [*command, "-m", "allocator=ideal,paged_compressed", "compression_ratio=0.25,0.5",
         "seed=range(2)", "workload.steps=400", "sweep.n_jobs=2", f"hydra.sweep.dir={out}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 + 4  # ideal ignores the ratio: 2 seeds; compressed: 2 x 2
    assert (results["status"] == "ok").all()
    assert (out / "report" / "index.md").exists()
    assert len(pd.read_parquet(out / "series.parquet")) == 6 * 400


def test_the_slurm_launcher_config_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from kvsim.config import compose

    cfg = compose(["hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.timeout_min == 60


def test_hydras_submitit_launcher_runs_jobs_that_the_report_gathers(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    script = Path(sys.executable).with_name("kvsim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "kvsim.cli"]
    out = tmp_path / "jobs"
    done = subprocess.run(
        [*command, "-m", "hydra/launcher=submitit_local", "allocator=ideal,paged",
         "workload.steps=200", "figures=false", f"hydra.sweep.dir={out}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    assert (out / "0" / "summary.parquet").exists() and (out / "1" / "summary.parquet").exists()
    text = build_report(out).read_text()
    assert "2 successful cells; models: ideal, paged." in text


def test_kvsim_report_command(small_sweep, capsys, tmp_path):
    from kvsim.report import main

    main([str(small_sweep[1].directory), "--metric", "utilization"])
    assert capsys.readouterr().out.strip().endswith("index.md")
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path)])
    assert info.value.code == 2


def test_kvsim_exits_non_zero_and_says_how_many_cells_failed(tmp_path, monkeypatch, capsys):
    from kvsim import cli

    def always_fail(spec, name, trace):
        if name == "paged":
            raise MemoryError("no memory for this cell")
        return real(spec, name, trace)

    real = sweep_module.run_model
    monkeypatch.setattr(sweep_module, "run_model", always_fail)
    code = cli._sweep(["-m", "allocator=ideal,paged", "seed=range(2)", "workload.steps=100",
                       "sweep.n_jobs=1", "sweep.report=false", f"hydra.sweep.dir={tmp_path}"])
    assert code == 1
    err = capsys.readouterr().err
    assert "2 of 4 cells failed" in err and "results.csv" in err
    results = pd.read_csv(tmp_path / "results.csv")
    assert results.groupby("allocator")["status"].agg(set).to_dict() == {
        "ideal": {"ok"}, "paged": {"failed"}}


def test_a_serving_sweep_over_rates_and_reservation_policies(tmp_path):
    grid = expand(["allocator=paged,monolithic", "workload=serving", "workload.rate=2,50",
                   "serving.reservation=max,oracle", "workload.num_requests=40",
                   "model=opt_13b", "hardware=a100_40gb"])
    by_model = pd.Series([c.columns["allocator"] for c in grid.cells]).value_counts()
    assert (by_model["paged"], by_model["monolithic"]) == (2, 4)  # the policy is monolithic's
    outcome = run_sweep(grid, tmp_path, n_jobs=2, progress=False)
    assert outcome.failed == 0
    r = outcome.results
    fast = r[r["rate"] == 50]
    fast = fast.set_index(fast["allocator"] + fast["reservation"].fillna(""))
    assert fast.loc["paged", "mean_batch_size"] > fast.loc["monolithicoracle", "mean_batch_size"] \
        > fast.loc["monolithicmax", "mean_batch_size"]
    text = build_report(tmp_path).read_text()
    assert "vs_rate.png" in text and (tmp_path / "report" / "vs_rate.png").exists()
