"""``kvsim`` end to end, as a user runs it: a real process in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kvsim.allocators import REGISTRY


def kvsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("kvsim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "kvsim.cli"]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_kvsim_writes_every_output_of_the_default_comparison(tmp_path):
    out = tmp_path / "run"
    done = kvsim("workload.steps=1500", f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("summary.csv", "summary.parquet", "series.parquet",
                 "figures/memory_over_time.png", "figures/fragmentation_over_time.png",
                 "figures/request_sizes_over_time.png"):
        assert (out / name).stat().st_size > 0, name
    summary = pd.read_csv(out / "summary.csv")
    assert summary["allocator"].tolist() == list(REGISTRY)
    assert len(pd.read_parquet(out / "series.parquet")) == 1500 * len(REGISTRY)
    for name in REGISTRY:
        assert name in done.stdout  # the console summary


def test_kvsim_runs_a_single_model_and_workload(tmp_path):
    out = tmp_path / "run"
    done = kvsim("allocator=paged", "workload=long", "workload.steps=500", "figure_format=svg",
                 f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = pd.read_parquet(out / "summary.parquet")
    assert summary["allocator"].tolist() == ["paged"]
    assert summary["size_class"].tolist() == ["long"]
    assert (out / "figures" / "memory_over_time.svg").exists()


@pytest.mark.parametrize(("override", "key"), [
    ("compression_ratio=1.5", "compression_ratio"),
    ("compresion_ratio=0.3", "compresion_ratio"),
    ("allocator=buddy", "allocator"),
    ("capacity=4", "capacity"),
])
def test_a_bad_config_fails_in_one_line_with_no_output(tmp_path, override, key):
    done = kvsim(override, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kvsim: error: {key}=")
    assert list(tmp_path.iterdir()) == []  # no outputs/ directory, nothing at all


def test_kvsim_serves_a_replayed_trace(tmp_path):
    out = tmp_path / "run"
    done = kvsim("workload=trace", "workload.first_n=300", "allocator=paged,monolithic",
                 f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode != 0  # a list is not a group option: one allocator per run
    done = kvsim("workload=trace", "workload.first_n=300", f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert summary["allocator"].tolist() == list(REGISTRY)
    assert (summary["completed"] + summary["rejected"] == 300).all()
    assert summary["ttft_p50"].notna().all() and "TTFT p50" in done.stdout
    assert (out / "figures" / "batch_over_time.png").stat().st_size > 0


def test_a_malformed_trace_fails_in_one_line_naming_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival,prompt,output\n0,5,3\n1,5,0\n")
    done = kvsim("workload=trace", f"workload.path={bad}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"kvsim: error: {bad}:3: column 'output': "
                                   "'0' is not a length >= 1")
    assert not (tmp_path / "outputs").exists()


def test_help_and_config_printing_go_to_hydra_even_with_multirun(tmp_path):
    for args in (["--help"], ["-m", "--help"], ["--cfg", "job", "workload=serving"]):
        done = kvsim(*args, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
        assert "allocator" in done.stdout
    assert list(tmp_path.iterdir()) == []
