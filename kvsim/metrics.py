"""Every metric kvsim reports, each defined once, with its formula and unit.

Per-step quantities are computed from a run's recorded series (numpy arrays, one value per
recorded step); per-run figures reduce them. Tables and figures call these functions and
never re-derive a metric. Memory is in slots (one token's K and V for all layers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# -- per step ------------------------------------------------------------------------------


def footprint(stored: np.ndarray, compressed_tokens: np.ndarray,
              compression_ratio: float) -> np.ndarray:
    """Slots the live tokens themselves occupy: a compressed token takes
    ``compression_ratio`` of a slot, so ``stored - compressed_tokens * (1 - ratio)``. Slots."""
    return stored - compressed_tokens * (1.0 - compression_ratio)


def free_slots(capacity: int, held: np.ndarray) -> np.ndarray:
    """Free memory: ``capacity - held``. Slots."""
    return capacity - held


def internal_fragmentation(held: np.ndarray, footprint: np.ndarray,
                           reserved: np.ndarray) -> np.ndarray:
    """Memory held by owners that holds no token and is not reserved for one:
    ``held - footprint - reserved`` (the unused tail of a last block; the unused part of a
    sealed compressed block). Slots."""
    return held - footprint - reserved


def external_fragmentation(largest_free: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The share of free memory that no single owner can use:
    ``1 - largest_free / free``, and 0 when nothing is free. Fraction in [0, 1]."""
    free = np.asarray(free, dtype=float)
    out = np.zeros_like(free)
    np.divide(largest_free, free, out=out, where=free > 0)
    return np.where(free > 0, 1.0 - out, 0.0)


def stranded_slots(largest_free: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Free memory outside the largest usable extent: ``free - largest_free``. Slots."""
    return free - largest_free


# -- per run -------------------------------------------------------------------------------


def peak(x: np.ndarray) -> float:
    """The largest value over the recorded steps (0 for an empty series)."""
    return float(np.max(x)) if len(x) else 0.0


def mean(x: np.ndarray) -> float:
    """The mean over the recorded steps: a time average, each step weighing the same."""
    return float(np.mean(x)) if len(x) else 0.0


def utilization(stored: np.ndarray, capacity: int) -> float:
    """Time-averaged share of the pool holding live tokens: ``mean(stored) / capacity``.
    Fraction; may exceed 1 when compression packs more tokens than slots."""
    return mean(stored) / capacity


def allocation_success_rate(allocations: int, rejections: int) -> float:
    """Share of allocation attempts that succeeded: ``1 - rejections / allocations``
    (1 when nothing was asked). Fraction."""
    return 1.0 - rejections / allocations if allocations else 1.0


def compressed_token_fraction(compressed_tokens: np.ndarray, stored: np.ndarray) -> float:
    """Share of stored tokens held compressed, over the whole run:
    ``sum(compressed_tokens) / sum(stored)`` over the recorded steps — the price paid in
    fidelity. Fraction."""
    total = float(np.sum(stored))
    return float(np.sum(compressed_tokens)) / total if total else 0.0


@dataclass(frozen=True)
class WasteBreakdown:
    """Where the KV memory in use goes, as in Figure 2 of the vLLM paper (Kwon et al.,
    SOSP 2023): shares of token states, of slots reserved for future tokens, of internal
    and of external fragmentation. They sum to 1 (or are all 0 when there was no work)."""

    token_states: float
    reserved: float
    internal_fragmentation: float
    external_fragmentation: float


def waste_breakdown(footprint: np.ndarray, reserved: np.ndarray, internal: np.ndarray,
                    stranded: np.ndarray, stored: np.ndarray) -> WasteBreakdown:
    """Time-averaged while the system has work (steps with ``stored > 0``): each part's
    sum over those steps divided by the sum of all four, where the whole is
    ``footprint + reserved + internal + stranded`` (held memory plus the free memory
    stranded outside the largest usable extent)."""
    busy = np.asarray(stored) > 0
    parts = [float(np.sum(np.asarray(x, dtype=float)[busy]))
             for x in (footprint, reserved, internal, stranded)]
    total = sum(parts)
    if total <= 0:
        return WasteBreakdown(0.0, 0.0, 0.0, 0.0)
    return WasteBreakdown(*(p / total for p in parts))


def summarize(series: dict[str, np.ndarray], capacity: int,
              counts: dict[str, int]) -> dict[str, float]:
    """The per-run summary of one model's run: every column of the summary table.

    Peaks and means are over the recorded steps; with ``record_every = 1`` they are
    exact. Columns: ``peak_/mean_`` of stored, held and free (slots); ``utilization``;
    ``mean_external_fragmentation`` (fraction); ``mean_internal_fragmentation`` (slots);
    ``allocation_success_rate``; ``allocations``, ``rejections``; the waste breakdown
    (``waste_*`` shares); ``peak_/mean_compressed_blocks``, ``compressions`` (operations)
    and ``compressed_token_fraction``.
    """
    stored = series["stored"]
    held = series["held"]
    free = free_slots(capacity, held)
    internal = internal_fragmentation(held, series["footprint"], series["reserved"])
    waste = waste_breakdown(series["footprint"], series["reserved"], internal,
                            stranded_slots(series["largest_free"], free), stored)
    allocations = int(counts.get("allocations", 0))
    rejections = int(counts.get("rejections", 0))
    row = {
        "capacity": capacity,
        "events": int(counts.get("events", 0)),
        "allocations": allocations,
        "rejections": rejections,
        "allocation_success_rate": allocation_success_rate(allocations, rejections),
        "peak_stored": peak(stored),
        "mean_stored": mean(stored),
        "peak_held": peak(held),
        "mean_held": mean(held),
        "peak_free": peak(free),
        "mean_free": mean(free),
        "utilization": utilization(stored, capacity),
        "mean_external_fragmentation": mean(external_fragmentation(series["largest_free"], free)),
        "mean_internal_fragmentation": mean(internal),
    }
    row.update({f"waste_{k}": v for k, v in asdict(waste).items()})
    row.update({
        "peak_compressed_blocks": peak(series["compressed_blocks"]),
        "mean_compressed_blocks": mean(series["compressed_blocks"]),
        "compressions": int(counts.get("compressions", 0)),
        "compressed_token_fraction": compressed_token_fraction(series["compressed_tokens"], stored),
    })
    return row


def series_frame_columns(series: dict[str, np.ndarray], capacity: int,
                         compression_ratio: float = 1.0) -> dict[str, np.ndarray]:
    """The per-step columns written to disk: the recorded state plus the per-step
    metrics above (footprint, free, internal and external fragmentation)."""
    out = dict(series)
    out["footprint"] = footprint(series["stored"], series["compressed_tokens"],
                                 compression_ratio)
    free = free_slots(capacity, series["held"])
    out["free"] = free
    out["internal_fragmentation"] = internal_fragmentation(
        series["held"], out["footprint"], series["reserved"])
    out["external_fragmentation"] = external_fragmentation(series["largest_free"], free)
    return out


# -- serving -------------------------------------------------------------------------------


def time_weighted_mean(x: np.ndarray, dt: np.ndarray) -> float:
    """Mean of a per-iteration quantity weighted by each iteration's duration ``dt``."""
    total = float(np.sum(dt))
    return float(np.sum(np.asarray(x, dtype=float) * dt)) / total if total > 0 else mean(x)


def percentiles(x: np.ndarray, qs=(50, 90, 99)) -> dict[int, float]:
    """The q-th percentiles of x (NaN for an empty x)."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    return {q: float(np.percentile(x, q)) if len(x) else float("nan") for q in qs}


def request_latencies(requests: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per completed request, in seconds: ``ttft`` = first token - arrival; ``e2e`` =
    finish - arrival; ``tpot`` (time per output token after the first) =
    (finish - first token) / (output - 1), for outputs longer than one token;
    ``normalized`` = e2e / output (the vLLM paper's normalized latency, s/token)."""
    done = ~np.isnan(requests["finish"])
    arrival = requests["arrival"][done]
    first = requests["first_token"][done]
    finish = requests["finish"][done]
    output = requests["output"][done]
    multi = output > 1
    return {
        "ttft": first - arrival,
        "e2e": finish - arrival,
        "tpot": (finish[multi] - first[multi]) / (output[multi] - 1),
        "normalized": (finish - arrival) / output,
    }


def summarize_serving(series: dict[str, np.ndarray], capacity: int, counts: dict[str, int],
                      requests: dict[str, np.ndarray]) -> dict[str, float]:
    """The per-run summary of a serving run. Time averages weigh each iteration by its
    duration; the waste breakdown is over iterations with work. Columns: counts (requests,
    completed, rejected, preemptions, iterations, output_tokens); ``duration`` (s, first
    arrival to last completion); ``throughput_tokens_per_s`` and
    ``throughput_requests_per_s`` over that span; ``ttft_``, ``tpot_``, ``latency_``
    p50/p90/p99 (s); ``mean_normalized_latency`` (s/token); ``mean_batch_size`` (requests per
    iteration); peak/mean stored and held (slots); ``utilization``; ``mean_external_fragmentation``;
    the ``waste_*`` shares; compression figures."""
    dt = series["dt"]
    stored, held = series["stored"], series["held"]
    free = free_slots(capacity, held)
    internal = internal_fragmentation(held, series["footprint"], series["reserved"])
    waste = waste_breakdown(series["footprint"] * dt, series["reserved"] * dt, internal * dt,
                            stranded_slots(series["largest_free"], free) * dt, stored)
    lat = request_latencies(requests)
    finished = requests["finish"][~np.isnan(requests["finish"])]
    span = float(finished.max() - requests["arrival"].min()) if len(finished) else 0.0
    completed = int(counts.get("completed", 0))
    done = ~np.isnan(requests["finish"])
    out_tokens = int(requests["output"][done].sum())
    row: dict[str, float] = {
        "capacity": capacity,
        **{k: int(counts.get(k, 0)) for k in
           ("requests", "completed", "rejected", "preemptions", "iterations", "output_tokens")},
        "duration": span,
        "throughput_tokens_per_s": out_tokens / span if span else 0.0,
        "throughput_requests_per_s": completed / span if span else 0.0,
    }
    for name, key in (("ttft", "ttft"), ("tpot", "tpot"), ("latency", "e2e")):
        for q, v in percentiles(lat[key]).items():
            row[f"{name}_p{q}"] = v
    row["mean_normalized_latency"] = (float(np.mean(lat["normalized"])) if completed
                                      else float("nan"))
    row.update({
        "mean_batch_size": mean(series["running"]),
        "peak_stored": peak(stored),
        "mean_stored": time_weighted_mean(stored, dt),
        "peak_held": peak(held),
        "mean_held": time_weighted_mean(held, dt),
        "utilization": time_weighted_mean(stored, dt) / capacity,
        "mean_external_fragmentation": time_weighted_mean(
            external_fragmentation(series["largest_free"], free), dt),
        "mean_internal_fragmentation": time_weighted_mean(internal, dt),
    })
    row.update({f"waste_{k}": v for k, v in asdict(waste).items()})
    row.update({
        "peak_compressed_blocks": peak(series["compressed_blocks"]),
        "compressions": int(counts.get("compressions", 0)),
        "compressed_token_fraction": compressed_token_fraction(
            series["compressed_tokens"] * dt, stored * dt),
    })
    return row
