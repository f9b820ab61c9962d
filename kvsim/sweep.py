"""Running a sweep: cells in parallel, each result on disk as soon as it exists.

Layout of a sweep directory::

    cells/<id>.parquet   the cell's per-step series (written first)
    cells/<id>.json      the cell's result row (written last: its presence means "done")
    results.parquet      one row per cell: config columns, metrics, status, error, wall time
    results.csv          the same table
    series.parquet       every successful cell's series, long form, with a `cell` column
    sweep.yaml           the grid: swept keys and values, fixed overrides
    report/              the figures (kvsim-report)

Every file is written atomically. Running the same sweep into the same directory again runs
only the cells without a successful result (``sweep.force=true`` reruns everything); a killed
sweep loses at most the cells in flight. A cell that raises is recorded as failed, with its
error, and the others go on. The numbers of a cell depend only on its configuration, never on
``n_jobs``, the backend or the order cells finish in.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from kvsim.config import spec_from_config
from kvsim.grid import Cell, Grid
from kvsim.results import write_atomic
from kvsim.simulate import run

log = logging.getLogger("kvsim.sweep")

RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
SERIES_PARQUET = "series.parquet"
BACKENDS = ("loky", "dask")


def run_cell(cell: Cell, directory: str) -> dict:
    """Run one cell, write its series and result row, and return the row. Never raises."""
    started = time.perf_counter()
    cells = Path(directory) / "cells"
    row = {"cell": cell.id, **cell.columns}
    try:
        result = run(spec_from_config(cell.config))
        metrics = result.summary.iloc[0].to_dict()
        for key in cell.columns:  # the cell's own view of its parameters wins
            metrics.pop(key, None)
        metrics.pop("wall_seconds", None)
        series = result.series.drop(columns=["allocator"])
        series.insert(0, "cell", cell.id)
        write_atomic(cells / f"{cell.id}.parquet", lambda p: series.to_parquet(p, index=False))
        row.update(metrics, status="ok", error="")
    except Exception as exc:  # recorded, and the sweep goes on
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        row.update(status="failed", error=last)
    row["wall_seconds"] = time.perf_counter() - started
    text = json.dumps(row, default=_json_default)
    write_atomic(cells / f"{cell.id}.json", lambda p: p.write_text(text))
    return row


def _json_default(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not serialisable: {value!r}")


def finished_row(directory: Path, cell: Cell) -> dict | None:
    """The saved row of a cell that finished successfully, or None."""
    path = directory / "cells" / f"{cell.id}.json"
    try:
        row = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return row if row.get("status") == "ok" else None


@dataclass
class SweepOutcome:
    directory: Path
    results: pd.DataFrame
    ran: int  # cells run by this invocation
    reused: int  # cells whose earlier result was kept

    @property
    def failed(self) -> int:
        return int((self.results["status"] != "ok").sum())


def run_sweep(grid: Grid, directory: str | Path | None = None, *, n_jobs: int | None = None,
              backend: str | None = None, scheduler: str | None = None,
              force: bool | None = None, progress: bool | None = None,
              cell_runner: Callable[[Cell, str], dict] = run_cell) -> SweepOutcome:
    """Run every cell of ``grid`` that has no result yet and write the sweep's tables."""
    options = grid.options
    directory = Path(directory or grid.sweep_dir)
    n_jobs = options.get("n_jobs", -1) if n_jobs is None else n_jobs
    backend = options.get("backend", "loky") if backend is None else backend
    scheduler = options.get("scheduler") if scheduler is None else scheduler
    force = bool(options.get("force", False)) if force is None else force
    if backend not in BACKENDS:
        from kvsim.errors import ConfigError

        raise ConfigError("sweep.backend", backend, "one of " + ", ".join(BACKENDS))

    (directory / "cells").mkdir(parents=True, exist_ok=True)
    description = {"axes": grid.axes, "fixed": list(grid.fixed), "cells": len(grid.cells)}
    write_atomic(directory / "sweep.yaml",
                 lambda p: p.write_text(yaml.safe_dump(description, sort_keys=False)))

    rows: dict[str, dict] = {}
    todo: list[Cell] = []
    for cell in grid.cells:
        row = None if force else finished_row(directory, cell)
        if row is None:
            todo.append(cell)
        else:
            rows[cell.id] = row
    reused = len(rows)
    log.info("sweep of %d cells in %s: %d to run, %d already done", len(grid.cells),
             directory, len(todo), reused)

    with _progress(len(todo), progress) as tick:
        for row in _execute(todo, str(directory), n_jobs, backend, scheduler, cell_runner):
            rows[row["cell"]] = row
            tick(row)

    results = pd.DataFrame([rows[c.id] for c in grid.cells])
    write_results(directory, results, grid)
    return SweepOutcome(directory, results, len(todo), reused)


def _execute(cells: list[Cell], directory: str, n_jobs: int, backend: str,
             scheduler: str | None, cell_runner) -> Iterable[dict]:
    """Rows of the cells as they finish, in any order."""
    if not cells:
        return
    from joblib import Parallel, delayed, parallel_config

    jobs = (delayed(cell_runner)(cell, directory) for cell in cells)
    if backend == "dask":
        from dask.distributed import Client, LocalCluster

        if scheduler:
            client = Client(scheduler)
            cluster = None
        else:
            workers = os.cpu_count() if n_jobs in (-1, None) else max(1, n_jobs)
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            with parallel_config(backend="dask"):
                yield from Parallel(n_jobs=-1, return_as="generator_unordered")(jobs)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        yield from Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered",
                            batch_size="auto")(jobs)


class _progress:
    """A progress bar with done / total and an ETA on a terminal; log lines otherwise."""

    def __init__(self, total: int, interactive: bool | None) -> None:
        self.total = total
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.done = self.failed = 0
        self.started = time.monotonic()
        self.last_log = self.started
        self.bar = None

    def __enter__(self):
        if self.interactive and self.total:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="cell", dynamic_ncols=True)
        return self.tick

    def tick(self, row: dict) -> None:
        self.done += 1
        self.failed += row.get("status") != "ok"
        if self.bar is not None:
            self.bar.update(1)
            if self.failed:
                self.bar.set_postfix(failed=self.failed)
            return
        now = time.monotonic()
        if now - self.last_log >= 10 or self.done == self.total:
            self.last_log = now
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate else float("inf")
            log.info("%d/%d cells done (%d failed), %.1f cells/s, ETA %.0f s", self.done,
                     self.total, self.failed, rate, eta)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def write_results(directory: Path, results: pd.DataFrame, grid: Grid) -> None:
    """Write results.parquet / results.csv and gather the cells' series into one file."""
    results = results.copy()
    for column in results.columns:  # keep parquet happy with mixed None / number columns
        if results[column].dtype == object and column not in ("status", "error", "cell"):
            converted = pd.to_numeric(results[column], errors="coerce")
            if converted.notna().sum() == results[column].notna().sum():
                results[column] = converted
    write_atomic(directory / RESULTS_PARQUET, lambda p: results.to_parquet(p, index=False))
    write_atomic(directory / RESULTS_CSV, lambda p: results.to_csv(p, index=False))

    ok = [c.id for c, status in zip(grid.cells, results["status"]) if status == "ok"]

    def gather(path: Path) -> None:
        writer = None
        try:
            for cell_id in ok:  # one cell at a time: memory stays bounded
                table = pq.read_table(directory / "cells" / f"{cell_id}.parquet")
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            pq.write_table(pa.table({"cell": pa.array([], pa.string())}), path)

    write_atomic(directory / SERIES_PARQUET, gather)
