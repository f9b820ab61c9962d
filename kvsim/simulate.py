"""Running a configuration: the Python API behind ``kvsim``, for scripts and notebooks.

>>> import kvsim
>>> result = kvsim.simulate("allocator=paged", "workload=long", capacity=2048)  # doctest: +SKIP
>>> result.summary[["allocator", "utilization", "allocation_success_rate"]]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kvsim.allocators import make_allocator
from kvsim.config import RunSpec, compose, spec_from_config
from kvsim.metrics import series_frame_columns, summarize, summarize_serving
from kvsim.results import save_tables
from kvsim.workloads.requests import RequestTrace
from kvsim.workloads.synthetic import EventTrace


@dataclass
class Simulation:
    """The outcome of one run: a summary row per memory model and the per-step series.

    ``summary`` has the run's parameters, every metric of :func:`kvsim.metrics.summarize`
    and ``wall_seconds`` (the only column that is not reproducible). ``series`` is long
    form: one row per (allocator, recorded step).
    """

    spec: RunSpec
    summary: pd.DataFrame
    series: pd.DataFrame

    def save(self, directory: str | Path) -> list[Path]:
        """Write summary.csv, summary.parquet and series.parquet into ``directory``."""
        return save_tables(Path(directory), self.summary, self.series)


@dataclass
class ModelRun:
    """One model's run as plain data: its summary metrics and its per-step columns."""

    summary: dict[str, object]
    series: dict[str, np.ndarray]
    seconds: float


def run_model(spec: RunSpec, name: str, trace: EventTrace | RequestTrace) -> ModelRun:
    """Run the model ``name`` on ``trace``; no pandas, so a sweep cell stays cheap."""
    allocator = make_allocator(name, spec.pool)
    result = spec.engine().run(trace, allocator)
    series = series_frame_columns(result.series, result.capacity, result.compression_ratio)
    if spec.kind == "serving":
        summary = summarize_serving(series, result.capacity, result.counts, result.requests)
    else:
        summary = summarize(series, result.capacity, result.counts)
    series["capacity"] = np.full(len(series["step"]), result.capacity, dtype=np.int64)
    return ModelRun(summary, series, result.seconds)


def run(spec: RunSpec) -> Simulation:
    """Generate the spec's workload once and run every chosen model on it."""
    trace = spec.workload.generate()
    parameters = spec.parameters()
    rows, frames = [], []
    for name in spec.allocators:
        result = run_model(spec, name, trace)
        rows.append({"allocator": name, **parameters, **result.summary,
                     "wall_seconds": result.seconds})
        frame = pd.DataFrame(result.series)
        frame.insert(0, "allocator", name)
        frames.append(frame)
    summary = pd.DataFrame(rows)
    summary["capacity"] = summary["capacity"].astype("int64")
    series = pd.concat(frames, ignore_index=True)
    series["allocator"] = series["allocator"].astype("category")
    return Simulation(spec, summary, series)


def simulate(*overrides: str, **params: object) -> Simulation:
    """Run one configuration, composed exactly as ``kvsim`` composes it.

    ``overrides`` use the command line's syntax (``"workload=long"``, ``"allocator=paged"``);
    keyword arguments set top-level keys (``capacity=8192``). Raises ConfigError for an
    invalid value, before any work.
    """
    extra = [f"{key}={_override_value(value)}" for key, value in params.items()]
    return run(spec_from_config(compose([*overrides, *extra])))


def _override_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def run_grid(*overrides: str, directory: str | Path | None = None,
             n_jobs: int | None = None, force: bool = False):
    """Run a grid in Hydra's sweep syntax, as ``kvsim -m`` does, and return its outcome
    (``.results`` is the results table; ``.directory`` holds the files).

    >>> outcome = kvsim.run_grid("allocator=paged,paged_compressed", "seed=range(3)",
    ...                          directory="outputs/sweeps/mine")  # doctest: +SKIP
    """
    from kvsim.grid import expand
    from kvsim.sweep import run_sweep

    grid = expand(list(overrides) + ([f"hydra.sweep.dir={directory}"] if directory else []))
    return run_sweep(grid, n_jobs=n_jobs, force=force, progress=False)
