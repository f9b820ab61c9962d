"""Writing results to disk: every file appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"
SERIES_PARQUET = "series.parquet"


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A reader never sees a half-written file, and a crash leaves the old file (or none).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_tables(directory: Path, summary: pd.DataFrame, series: pd.DataFrame) -> list[Path]:
    """Write the summary (CSV and parquet) and the per-step series (parquet)."""
    directory = Path(directory)
    return [
        write_atomic(directory / SUMMARY_CSV, lambda p: summary.to_csv(p, index=False)),
        write_atomic(directory / SUMMARY_PARQUET, lambda p: summary.to_parquet(p, index=False)),
        write_atomic(directory / SERIES_PARQUET, lambda p: series.to_parquet(p, index=False)),
    ]


def load_tables(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read back what :func:`save_tables` wrote: (summary, series)."""
    directory = Path(directory)
    return (pd.read_parquet(directory / SUMMARY_PARQUET),
            pd.read_parquet(directory / SERIES_PARQUET))
