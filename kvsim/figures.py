"""The comparison figures of a run, drawn with seaborn from the saved series.

Each figure function takes the long-form series table (one row per allocator and step, as
written to ``series.parquet``) and returns a matplotlib Figure; :func:`draw_run_figures`
saves them all. Nothing here recomputes a metric: the columns come from kvsim.metrics.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed, or wanted, on a server

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from kvsim.results import write_atomic  # noqa: E402

#: One colour per model, the same in every figure.
PALETTE = {"ideal": "#4d4d4d", "monolithic": "#d95f02", "paged": "#1b9e77",
           "paged_compressed": "#7570b3"}


def _palette(series: pd.DataFrame) -> dict[str, str]:
    names = list(dict.fromkeys(series["allocator"].astype(str)))
    extra = sns.color_palette("tab10", len(names))
    return {n: PALETTE.get(n, extra[i]) for i, n in enumerate(names)}


def _x(series: pd.DataFrame) -> tuple[str, str]:
    """Serving series run against time; synthetic ones against the step."""
    return ("time", "time (s)") if "time" in series else ("step", "step")


def _smoothing_window(series: pd.DataFrame) -> int:
    steps = series["step"].nunique()
    return max(1, steps // 200)


def _smoothed(series: pd.DataFrame, column: str, window: int) -> pd.Series:
    if window == 1:
        return series[column]
    return series.groupby("allocator", observed=True)[column].transform(
        lambda x: x.rolling(window, min_periods=1).mean())


def memory_over_time(series: pd.DataFrame) -> plt.Figure:
    """Memory held from the pool and tokens stored, per model, against the step."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    palette = _palette(series)
    capacity = series["capacity"].max()
    x, xlabel = _x(series)
    for ax, column, label in ((axes[0], "held", "memory held (slots)"),
                              (axes[1], "stored", "tokens stored (slots)")):
        sns.lineplot(data=series, x=x, y=column, hue="allocator", palette=palette,
                     estimator=None, linewidth=0.9, ax=ax)
        ax.axhline(capacity, color="black", linestyle="--", linewidth=0.8, label="capacity")
        ax.set_ylabel(label)
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_title("Memory over time")
    axes[1].set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def fragmentation_over_time(series: pd.DataFrame) -> plt.Figure:
    """External fragmentation (share of free memory unusable by one owner) and internal
    fragmentation (held slots holding no token), per model, against the step."""
    window = _smoothing_window(series)
    data = series.assign(
        external=_smoothed(series, "external_fragmentation", window),
        internal=_smoothed(series, "internal_fragmentation", window),
    )
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    palette = _palette(series)
    suffix = f" (mean of {window} steps)" if window > 1 else ""
    x, xlabel = _x(series)
    sns.lineplot(data=data, x=x, y="external", hue="allocator", palette=palette,
                 estimator=None, linewidth=0.9, ax=axes[0])
    axes[0].set_ylabel("external fragmentation\n1 - largest free / free" + suffix)
    axes[0].set_ylim(-0.02, 1.02)
    sns.lineplot(data=data, x=x, y="internal", hue="allocator", palette=palette,
                 estimator=None, linewidth=0.9, ax=axes[1])
    axes[1].set_ylabel("internal fragmentation\n(slots)" + suffix)
    axes[0].set_title("Fragmentation over time")
    axes[1].set_xlabel(xlabel)
    for ax in axes:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def request_sizes_over_time(series: pd.DataFrame) -> plt.Figure:
    """Slots requested per step by the workload (the same for every model) and slots
    each model refused."""
    window = _smoothing_window(series)
    data = series.assign(
        requested_smooth=_smoothed(series, "requested", window),
        rejected_smooth=_smoothed(series, "rejected", window),
    )
    first = data[data["allocator"] == data["allocator"].iloc[0]]
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    suffix = f" (mean of {window} steps)" if window > 1 else ""
    axes[0].plot(first["step"], first["requested"], color="0.8", linewidth=0.5,
                 label="per step")
    axes[0].plot(first["step"], first["requested_smooth"], color="black", linewidth=1.0,
                 label=f"mean of {window} steps")
    axes[0].set_ylabel("slots requested")
    axes[0].legend(loc="upper right", fontsize=8)
    sns.lineplot(data=data, x="step", y="rejected_smooth", hue="allocator",
                 palette=_palette(series), estimator=None, linewidth=0.9, ax=axes[1])
    axes[1].set_ylabel("slots rejected" + suffix)
    axes[1].legend(loc="upper right", fontsize=8)
    axes[0].set_title("Request sizes over time")
    axes[1].set_xlabel("step")
    fig.tight_layout()
    return fig


def batch_over_time(series: pd.DataFrame) -> plt.Figure:
    """Requests in each iteration's batch and requests waiting, per model, against time
    (serving runs)."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    palette = _palette(series)
    for ax, column, label in ((axes[0], "running", "requests in the batch"),
                              (axes[1], "waiting", "requests waiting")):
        sns.lineplot(data=series, x="time", y=column, hue="allocator", palette=palette,
                     estimator=None, linewidth=0.8, ax=ax)
        ax.set_ylabel(label)
        ax.legend(loc="upper right", fontsize=8)
    axes[0].set_title("Batch and queue over time")
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


#: file stem -> figure function; a new figure is one function and one entry here.
RUN_FIGURES = {
    "memory_over_time": memory_over_time,
    "fragmentation_over_time": fragmentation_over_time,
    "request_sizes_over_time": request_sizes_over_time,
}
#: The same for serving runs.
SERVING_FIGURES = {
    "memory_over_time": memory_over_time,
    "fragmentation_over_time": fragmentation_over_time,
    "batch_over_time": batch_over_time,
}


def draw_run_figures(series: pd.DataFrame, directory: str | Path,
                     fmt: str = "png") -> list[Path]:
    """Draw every figure of :data:`RUN_FIGURES` (:data:`SERVING_FIGURES` for a serving run)
    into ``directory`` as ``<name>.<fmt>``."""
    paths = []
    figures = SERVING_FIGURES if "time" in series else RUN_FIGURES
    with sns.axes_style("whitegrid"):
        for stem, draw in figures.items():
            fig = draw(series)
            try:
                paths.append(write_atomic(
                    Path(directory) / f"{stem}.{fmt}",
                    lambda p: fig.savefig(p, format=fmt, dpi=120)))
            finally:
                plt.close(fig)
    return paths
