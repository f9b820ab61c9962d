"""Running a sweep: cells in parallel, results on disk as soon as they exist.

Cells are dealt to the workers in chunks (a few per worker, at most 64 cells), so that a
cell costs a few milliseconds beyond its own simulation. Layout of a sweep directory::

    cells/<chunk>.parquet   the per-step series of the chunk's cells (written first)
    cells/<chunk>.json      the chunk's result rows (written last: its presence means done)
    results.parquet         one row per cell: config columns, metrics, status, error, wall time
    results.csv             the same table
    series.parquet          every successful cell's series, long form, with a `cell` column
    sweep.yaml              the grid: swept keys and values, fixed overrides
    report/                 the figures (kvsim-report)

Every file is written atomically. Running the same sweep into the same directory again runs
only the cells without a successful result (``sweep.force=true`` or ``--force`` reruns
everything); a killed sweep loses at most the chunks in flight. A cell that raises is
recorded as failed, with its error, and the others go on. The numbers of a cell depend only
on its configuration, never on ``n_jobs``, the backend or the order cells finish in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from kvsim.config import spec_from_config
from kvsim.grid import Cell, Grid
from kvsim.results import write_atomic
from kvsim.simulate import run_model

log = logging.getLogger("kvsim.sweep")

RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
SERIES_PARQUET = "series.parquet"
BACKENDS = ("loky", "dask")
MAX_CHUNK = 64
_PRIVATE = ("_chunk", "_offset", "_rows")  # where a cell's series is; not result columns


def run_cell(cell: Cell) -> tuple[dict, dict[str, np.ndarray] | None]:
    """Run one cell: its result row and its series columns (None if it failed). Never raises."""
    started = time.perf_counter()
    row = {"cell": cell.id, **cell.columns}
    series = None
    try:
        spec = spec_from_config(cell.config)
        result = run_model(spec, spec.allocators[0], spec.workload.generate())
        row.update({k: v for k, v in result.summary.items() if k not in cell.columns})
        row.update(status="ok", error="")
        series = result.series
    except Exception as exc:  # recorded, and the sweep goes on
        row.update(status="failed",
                   error=traceback.format_exception_only(type(exc), exc)[-1].strip())
    row["wall_seconds"] = time.perf_counter() - started
    return row, series


def run_chunk(cells: list[Cell], directory: str,
              cell_runner: Callable[[Cell], tuple] = run_cell) -> list[dict]:
    """Run cells, write the chunk's series and rows, and return the rows."""
    chunk = hashlib.sha1("".join(c.id for c in cells).encode()).hexdigest()[:16]
    folder = Path(directory) / "cells"
    rows, tables, offset = [], [], 0
    for cell in cells:
        row, series = cell_runner(cell)
        if series is not None:
            n = len(series["step"])
            ids = pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([cell.id]))
            tables.append(pa.table({"cell": ids, **series}))
            row.update(_chunk=chunk, _offset=offset, _rows=n)
            offset += n
        rows.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    if tables:
        table = pa.concat_tables(tables)
        write_atomic(folder / f"{chunk}.parquet", lambda p: pq.write_table(table, p))
    text = json.dumps(rows)
    write_atomic(folder / f"{chunk}.json", lambda p: p.write_text(text))
    return rows


def finished_rows(directory: Path) -> dict[str, dict]:
    """The saved rows of every cell that finished successfully, by cell id."""
    done: dict[str, dict] = {}
    for path in sorted((directory / "cells").glob("*.json")):
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError:  # pragma: no cover - files are written atomically
            continue
        for row in rows:
            if row.get("status") == "ok":
                done[row["cell"]] = row
    return done


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
              cell_runner: Callable[[Cell], tuple] = run_cell) -> SweepOutcome:
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

    if force and (directory / "cells").exists():
        shutil.rmtree(directory / "cells")
    (directory / "cells").mkdir(parents=True, exist_ok=True)
    description = {"axes": grid.axes, "fixed": list(grid.fixed), "cells": len(grid.cells)}
    write_atomic(directory / "sweep.yaml",
                 lambda p: p.write_text(yaml.safe_dump(description, sort_keys=False)))

    done = finished_rows(directory)
    rows = {c.id: done[c.id] for c in grid.cells if c.id in done}
    todo = [c for c in grid.cells if c.id not in rows]
    reused = len(rows)
    log.info("sweep of %d cells in %s: %d to run, %d already done", len(grid.cells),
             directory, len(todo), reused)

    with _Progress(len(todo), progress) as tick:
        for chunk_rows in _execute(todo, str(directory), n_jobs, backend, scheduler,
                                   cell_runner):
            for row in chunk_rows:
                rows[row["cell"]] = row
                tick(row)

    ordered = [rows[c.id] for c in grid.cells]
    write_series(directory, ordered)
    results = pd.DataFrame([{k: v for k, v in r.items() if k not in _PRIVATE} for r in ordered])
    write_results(directory, results)
    return SweepOutcome(directory, results, len(todo), reused)


def _execute(cells: list[Cell], directory: str, n_jobs: int, backend: str,
             scheduler: str | None, cell_runner) -> Iterable[list[dict]]:
    """The rows of each chunk of cells as it finishes, in any order."""
    if not cells:
        return
    from joblib import Parallel, delayed, parallel_config

    workers = (os.cpu_count() or 1) if n_jobs in (-1, None) else max(1, n_jobs)
    size = max(1, min(MAX_CHUNK, math.ceil(len(cells) / (4 * workers))))
    chunks = [cells[i:i + size] for i in range(0, len(cells), size)]
    jobs = (delayed(run_chunk)(chunk, directory, cell_runner) for chunk in chunks)
    if backend == "dask":
        from dask.distributed import Client, LocalCluster

        if scheduler:
            client = Client(scheduler)
            cluster = None
        else:
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
                            batch_size=1)(jobs)


class _Progress:
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


def write_results(directory: Path, results: pd.DataFrame) -> None:
    """Write results.parquet and results.csv."""
    results = results.copy()
    for column in results.columns:  # parameters a model ignores are None: make them NaN
        if results[column].dtype == object and column not in ("status", "error", "cell"):
            converted = pd.to_numeric(results[column], errors="coerce")
            if converted.notna().sum() == results[column].notna().sum():
                results[column] = converted
    write_atomic(directory / RESULTS_PARQUET, lambda p: results.to_parquet(p, index=False))
    write_atomic(directory / RESULTS_CSV, lambda p: results.to_csv(p, index=False))


def write_series(directory: Path, rows: list[dict]) -> None:
    """Gather the successful cells' series into series.parquet, in grid order, one chunk
    file in memory at a time."""
    ok = [r for r in rows if r.get("status") == "ok"]
    # Runs of consecutive cells that live in the same chunk file: one read, one write each.
    runs: list[tuple[str, list[dict]]] = []
    for row in ok:
        if runs and runs[-1][0] == row["_chunk"]:
            runs[-1][1].append(row)
        else:
            runs.append((row["_chunk"], [row]))

    def gather(path: Path) -> None:
        writer = None
        try:
            for chunk, members in runs:
                table = pq.read_table(directory / "cells" / f"{chunk}.parquet")
                take = np.concatenate([np.arange(r["_offset"], r["_offset"] + r["_rows"])
                                       for r in members])
                part = table.take(pa.array(take))
                part = part.set_column(0, "cell", part.column("cell").cast(pa.string()))
                if writer is None:
                    writer = pq.ParquetWriter(path, part.schema)
                writer.write_table(part.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            pq.write_table(pa.table({"cell": pa.array([], pa.string())}), path)

    write_atomic(directory / SERIES_PARQUET, gather)
