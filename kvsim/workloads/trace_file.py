"""Replaying request traces from CSV or JSONL files.

A trace file has one request per row (CSV) or per line (JSONL) with an arrival time, a prompt
length and an output length. ``columns`` maps those three to the file's own names; the Azure
LLM inference trace format (``TIMESTAMP, ContextTokens, GeneratedTokens``, timestamps as
``YYYY-MM-DD HH:MM:SS.fffffff``) is recognised with no mapping. Arrival times are numbers in
``time_unit`` (s, ms, us) or date-times; they become seconds from the first request.

Any malformed row — a missing column, a value that is not a number, a length <= 0, a time
going backwards — raises :class:`TraceError` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import numpy as np

from kvsim.errors import ConfigError
from kvsim.workloads.requests import RequestTrace, clamp_lengths

AZURE_COLUMNS = {"arrival": "TIMESTAMP", "prompt": "ContextTokens", "output": "GeneratedTokens"}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "datetime": None, "auto": None}
#: Traces shipped with kvsim, by name (kvsim/data/, with their attribution).
BUNDLED = {"azure_conv": "azure_llm_inference_conv_2023.csv"}


class TraceError(ValueError):
    """A malformed trace file: names the file, the line and the column."""

    def __init__(self, path: Path | str, line: int, column: str, message: str) -> None:
        self.path, self.line, self.column = str(path), line, column
        super().__init__(f"{path}:{line}: column {column!r}: {message}")


def resolve_path(path: str) -> Path:
    """A bundled trace name (``azure_conv``) or a path to a file."""
    if path in BUNDLED:
        with resources.as_file(resources.files("kvsim.data") / BUNDLED[path]) as p:
            return Path(p)
    return Path(path).expanduser()


@dataclass(frozen=True)
class TraceWorkload:
    """Requests replayed from a file, optionally cut and sped up.

    ``first_n`` keeps the first N requests; ``window`` = [start, end] keeps the requests
    arriving in that span of seconds after the first one; ``rate_scale`` multiplies the
    arrival rate (times are divided by it). Lengths are clamped to ``max_model_len``.
    """

    path: str = "azure_conv"
    format: str = "auto"
    columns: dict | None = None
    time_unit: str = "auto"
    first_n: int | None = None
    window: tuple[float, float] | None = None
    rate_scale: float = 1.0
    max_model_len: int = 4096

    def __post_init__(self) -> None:
        if self.format not in ("auto", "csv", "jsonl"):
            raise ConfigError("workload.format", self.format, "one of auto, csv, jsonl")
        if self.time_unit not in TIME_UNITS:
            raise ConfigError("workload.time_unit", self.time_unit,
                              "one of " + ", ".join(TIME_UNITS))
        if not (isinstance(self.rate_scale, (int, float)) and self.rate_scale > 0):
            raise ConfigError("workload.rate_scale", self.rate_scale, "a number > 0")
        if self.first_n is not None and (not isinstance(self.first_n, int) or self.first_n < 1):
            raise ConfigError("workload.first_n", self.first_n, "null or an integer >= 1")
        if self.window is not None and not (len(self.window) == 2
                                            and 0 <= self.window[0] < self.window[1]):
            raise ConfigError("workload.window", list(self.window),
                              "null or [start, end] seconds with 0 <= start < end")
        path = resolve_path(self.path)
        if not path.is_file():
            raise ConfigError("workload.path", self.path,
                              "a readable CSV or JSONL file, or one of: " + ", ".join(BUNDLED))
        self._load(path)  # a malformed file is an error now, before any work

    def _load(self, path: Path) -> RequestTrace:
        columns = tuple(sorted(self.columns.items())) if self.columns else None
        return _load_cached(str(path), path.stat().st_mtime_ns, columns, self.time_unit,
                            self.format)

    def generate(self) -> RequestTrace:
        path = resolve_path(self.path)
        trace = self._load(path)
        arrival, prompt, output = trace.arrival, trace.prompt, trace.output
        if self.window is not None:
            keep = (arrival >= self.window[0]) & (arrival < self.window[1])
            arrival, prompt, output = arrival[keep] - self.window[0], prompt[keep], output[keep]
        if self.first_n is not None:
            arrival, prompt, output = (a[: self.first_n] for a in (arrival, prompt, output))
        prompt, output = clamp_lengths(prompt, output, self.max_model_len)
        return RequestTrace(arrival / self.rate_scale, prompt, output, str(path.name))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, columns: tuple | None, time_unit: str,
                 fmt: str) -> RequestTrace:
    """One parse per file version: checking a sweep's cells does not reread the trace."""
    return load_trace(Path(path), dict(columns) if columns else None, time_unit, fmt)


def load_trace(path: Path, columns: dict | None = None, time_unit: str = "auto",
               fmt: str = "auto") -> RequestTrace:
    """Read a trace file; raise TraceError on the first malformed value."""
    path = Path(path)
    fmt = fmt if fmt != "auto" else ("jsonl" if path.suffix in (".jsonl", ".json") else "csv")
    rows = _jsonl_rows(path) if fmt == "jsonl" else _csv_rows(path)
    mapping = None
    arrivals, prompts, outputs = [], [], []
    unit = None
    previous = None
    for line, record in rows:
        if mapping is None:
            mapping = _mapping(path, line, record, columns)
            unit = _unit(time_unit, str(record.get(mapping["arrival"], "")))
        values = []
        for role in ("arrival", "prompt", "output"):
            name = mapping[role]
            if name not in record or record[name] in (None, ""):
                raise TraceError(path, line, name, "missing value")
            values.append(record[name])
        raw_time, raw_prompt, raw_output = values
        t = _time(path, line, mapping["arrival"], raw_time, unit)
        if previous is not None and t < previous:
            raise TraceError(path, line, mapping["arrival"],
                             f"time goes backwards ({raw_time} is before the previous request)")
        previous = t
        arrivals.append(t)
        prompts.append(_length(path, line, mapping["prompt"], raw_prompt))
        outputs.append(_length(path, line, mapping["output"], raw_output))
    if not arrivals:
        raise TraceError(path, 1, "-", "no requests in the file")
    arrival = np.asarray(arrivals, dtype=np.float64)
    return RequestTrace(arrival - arrival[0], np.asarray(prompts, np.int64),
                        np.asarray(outputs, np.int64), path.name)


def _csv_rows(path: Path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise TraceError(path, 1, "-", "no header line")
        for record in reader:
            if None in record:  # more fields than the header names
                raise TraceError(path, reader.line_num, "-", "more values than header columns")
            yield reader.line_num, record


def _jsonl_rows(path: Path):
    with open(path) as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TraceError(path, line, "-", f"not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise TraceError(path, line, "-", "a line must be a JSON object")
            yield line, record


def _mapping(path: Path, line: int, record: dict, columns: dict | None) -> dict[str, str]:
    mapping = dict(columns) if columns else None
    if mapping is None:
        if any(name in record for name in AZURE_COLUMNS.values()):
            mapping = dict(AZURE_COLUMNS)
        else:
            mapping = {"arrival": "arrival", "prompt": "prompt", "output": "output"}
    for role in ("arrival", "prompt", "output"):
        if role not in mapping:
            raise ConfigError("workload.columns", columns, "a mapping with arrival, prompt, output")
        if mapping[role] not in record:
            header_line = 1 if line <= 2 else line
            raise TraceError(path, header_line, mapping[role],
                             f"missing column for the {role} (found: {', '.join(record)})")
    return mapping


def _unit(time_unit: str, sample: str) -> float | None:
    if time_unit != "auto":
        return TIME_UNITS[time_unit]
    try:
        float(sample)
        return 1.0
    except ValueError:
        return None  # date-times


def _time(path: Path, line: int, column: str, raw: object, unit: float | None) -> float:
    if unit is not None:
        try:
            return float(raw) * unit
        except (TypeError, ValueError):
            raise TraceError(path, line, column, f"{raw!r} is not a number") from None
    text = str(raw).strip()
    if "." in text:  # Python parses at most 6 fractional digits; the Azure trace has 7
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise TraceError(path, line, column, f"{raw!r} is not a number or a date-time") from None


def _length(path: Path, line: int, column: str, raw: object) -> int:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise TraceError(path, line, column, f"{raw!r} is not a number") from None
    if value != int(value) or value <= 0:
        raise TraceError(path, line, column, f"{raw!r} is not a length >= 1")
    return int(value)
