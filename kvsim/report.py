"""``kvsim-report RESULTS_DIR``: figures across a sweep, from what is on disk only.

Reads ``results.parquet`` and ``series.parquet`` (a sweep), or ``summary.parquet`` and
``series.parquet`` (a single run), and never reruns anything. Writes ``report/`` with:

- ``heatmap_<metric>``: a metric of the compressing model (``paged_compressed``) over
  compression ratio x pressure threshold (mean over seeds), one panel per workload;
- ``vs_compression_ratio_<metric>``: the metric against the compression ratio, one line per
  threshold with a 95% confidence band over seeds; the models that do not compress drawn
  as reference lines (their mean over seeds);
- ``memory_over_time`` and ``fragmentation_over_time``: per model and workload, the mean over
  the model's cells at each step;
- ``waste_breakdown``: the vLLM-paper-style stacked shares per model and workload;
- ``index.md``: every figure with a caption saying what it shows, and why any was skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from kvsim.allocators import USES  # noqa: E402
from kvsim.figures import PALETTE  # noqa: E402
from kvsim.results import write_atomic  # noqa: E402

WASTE = {
    "waste_token_states": "token states",
    "waste_reserved": "reserved",
    "waste_internal_fragmentation": "internal fragmentation",
    "waste_external_fragmentation": "external fragmentation",
}

def _uses(results: pd.DataFrame, parameter: str) -> pd.Series:
    """Which rows are of a model that depends on ``parameter`` (the registry's USES)."""
    return results["allocator"].map(lambda name: parameter in USES.get(name, ()))


def _compressing(results: pd.DataFrame) -> pd.DataFrame:
    return results[_uses(results, "compression_ratio")]
DEFAULT_METRICS = ("allocation_success_rate", "utilization", "compressed_token_fraction")


def load_results(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, series) of a sweep or a single run; the series gets the cell's columns."""
    directory = Path(directory)
    if (directory / "results.parquet").exists():
        results = pd.read_parquet(directory / "results.parquet")
        series = pd.read_parquet(directory / "series.parquet")
        if "cell" in series and len(series):
            keys = ["cell", "allocator", "size_class", "seed"]
            series = series.merge(results[keys], on="cell", how="left")
    elif (directory / "summary.parquet").exists():
        results = pd.read_parquet(directory / "summary.parquet").assign(status="ok")
        series = pd.read_parquet(directory / "series.parquet")
        series = series.assign(size_class=results["size_class"].iloc[0],
                               seed=results["seed"].iloc[0], cell=series["allocator"])
    elif jobs := sorted(directory.glob("*/summary.parquet")):
        # One directory per job, as Hydra's own launchers (submitit for SLURM) leave them.
        results = pd.concat([pd.read_parquet(p).assign(cell=p.parent.name) for p in jobs],
                            ignore_index=True).assign(status="ok")
        series = pd.concat([pd.read_parquet(p.parent / "series.parquet").assign(cell=p.parent.name)
                            for p in jobs], ignore_index=True).astype({"allocator": str})
        series = series.merge(results[["cell", "allocator", "size_class", "seed"]].astype(
            {"allocator": str}), on=["cell", "allocator"], how="left")
        results["cell"] = results["cell"] + "/" + results["allocator"].astype(str)
    else:
        raise FileNotFoundError(f"{directory}: no results.parquet, summary.parquet or "
                                "*/summary.parquet to report on")
    results = results[results["status"] == "ok"].copy()
    for frame in (results, series):
        if "allocator" in frame:
            frame["allocator"] = frame["allocator"].astype(str)
    # A memory design is a model and, for one that reserves ahead, its reservation policy
    # (the sweep leaves the policy empty for the models that do not use it).
    results["design"] = results["allocator"]
    if "reservation" in results:
        uses = results["reservation"].notna() & _uses(results, "reservation")
        if uses.any():
            policy = results.loc[uses, "reservation"].astype(str)
            results.loc[uses, "design"] = results.loc[uses, "allocator"] + " (" + policy + ")"
    return results, series


def _workloads(results: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(results["size_class"].astype(str)))


def heatmap(results: pd.DataFrame, metric: str) -> plt.Figure | None:
    data = _compressing(results)
    if data.empty or data["compression_ratio"].nunique() < 2 or \
            data["pressure_threshold"].nunique() < 2:
        return None
    workloads = _workloads(data)
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.6 * len(workloads), 4), squeeze=False)
    lo, hi = data[metric].min(), data[metric].max()
    for ax, workload in zip(axes[0], workloads):
        table = data[data["size_class"] == workload].pivot_table(
            index="pressure_threshold", columns="compression_ratio", values=metric, aggfunc="mean")
        sns.heatmap(table.sort_index(ascending=False), annot=True, fmt=".2f", vmin=lo, vmax=hi,
                    cmap="viridis", cbar=ax is axes[0][-1], ax=ax, annot_kws={"size": 8})
        ax.set_title(f"workload: {workload}")
        ax.set_xlabel("compression ratio")
        ax.set_ylabel("pressure threshold")
    fig.suptitle(f"{', '.join(sorted(data['allocator'].unique()))}: {metric} (mean over seeds)")
    fig.tight_layout()
    return fig


def against_compression_ratio(results: pd.DataFrame, metric: str) -> plt.Figure | None:
    data = _compressing(results)
    if data.empty or data["compression_ratio"].nunique() < 2:
        return None
    workloads = _workloads(results)
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.8 * len(workloads), 4),
                             squeeze=False, sharey=True)
    for ax, workload in zip(axes[0], workloads):
        mine = data[data["size_class"] == workload].copy()
        mine["threshold"] = mine["pressure_threshold"].map("{:g}".format)
        sns.lineplot(data=mine, x="compression_ratio", y=metric, hue="threshold",
                     errorbar=("ci", 95), marker="o", ax=ax, palette="crest")
        others = results[(results["size_class"] == workload) &
                         ~_uses(results, "compression_ratio")]
        for name, value in others.groupby("allocator")[metric].mean().items():
            ax.axhline(value, linestyle="--", linewidth=1, color=PALETTE.get(name, "0.4"),
                       label=name)
        ax.set_title(f"workload: {workload}")
        ax.set_xlabel("compression ratio")
        ax.legend(fontsize=7, title="threshold / baseline", title_fontsize=7)
    axes[0][0].set_ylabel(metric)
    fig.tight_layout()
    return fig


def over_time(series: pd.DataFrame, columns: dict[str, str], title: str) -> plt.Figure | None:
    if series.empty or "step" not in series:
        return None
    x = "time" if "time" in series else "step"
    workloads = list(dict.fromkeys(series["size_class"].astype(str)))
    fig, axes = plt.subplots(len(columns), len(workloads), squeeze=False, sharex=True,
                             figsize=(4.8 * len(workloads), 3.2 * len(columns)))
    palette = {n: PALETTE.get(n, "0.3") for n in series["allocator"].unique()}
    for j, workload in enumerate(workloads):
        mine = series[series["size_class"] == workload]
        for i, (column, label) in enumerate(columns.items()):
            ax = axes[i][j]
            sns.lineplot(data=mine, x=x, y=column, hue="allocator", palette=palette,
                         estimator="mean" if x == "step" else None, errorbar=None,
                         linewidth=0.9, ax=ax)
            ax.set_ylabel(label)
            ax.legend(fontsize=7)
            if i == 0:
                ax.set_title(f"workload: {workload}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


SERVING_METRICS = {
    "mean_batch_size": "mean batch size (requests)",
    "throughput_tokens_per_s": "throughput (output tokens/s)",
    "mean_normalized_latency": "normalized latency (s/token)",
    "latency_p90": "end-to-end latency p90 (s)",
}


def rate_axis(results: pd.DataFrame) -> str | None:
    """The swept load of a serving sweep: request rate, or a trace's rate scale."""
    for column in ("rate", "rate_scale"):
        if column in results and results[column].nunique() > 1:
            return column
    return None


def against_rate(results: pd.DataFrame) -> plt.Figure | None:
    """Batch size, throughput and latency against the request rate, one line per design
    (mean over seeds, 95% confidence band), one row of panels per workload: the vLLM
    paper's Figures 12 and 13."""
    x = rate_axis(results)
    if x is None:
        return None
    workloads = _workloads(results)
    fig, axes = plt.subplots(len(workloads), len(SERVING_METRICS), squeeze=False,
                             figsize=(4.2 * len(SERVING_METRICS), 3.4 * len(workloads)))
    palette = _design_palette(results)
    for i, workload in enumerate(workloads):
        mine = results[results["size_class"] == workload]
        for j, (metric, label) in enumerate(SERVING_METRICS.items()):
            ax = axes[i][j]
            sns.lineplot(data=mine, x=x, y=metric, hue="design", palette=palette,
                         errorbar=("ci", 95), marker="o", ax=ax)
            ax.set_ylabel(label)
            ax.set_xlabel("request rate (req/s)" if x == "rate" else "rate scale")
            ax.set_title(f"{workload}")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _design_palette(results: pd.DataFrame) -> dict[str, object]:
    designs = sorted(results["design"].unique())
    extra = iter(sns.color_palette("Oranges_r", 4))
    return {d: PALETTE.get(d) or next(extra) for d in designs}


def waste_breakdown(results: pd.DataFrame) -> plt.Figure | None:
    if results.empty or not set(WASTE) <= set(results.columns):
        return None
    workloads = _workloads(results)
    width = 1.5 + 0.9 * results["design"].nunique()
    fig, axes = plt.subplots(1, len(workloads), figsize=(width * len(workloads) + 1.5, 4.6),
                             squeeze=False, sharey=True)
    colours = sns.color_palette("Set2", len(WASTE))
    for ax, workload in zip(axes[0], workloads):
        shares = results[results["size_class"] == workload].groupby(
            "design", sort=False)[list(WASTE)].mean()
        bottom = pd.Series(0.0, index=shares.index)
        for (column, label), colour in zip(WASTE.items(), colours):
            ax.bar(shares.index, shares[column], bottom=bottom, label=label, color=colour)
            bottom += shares[column]
        ax.set_title(f"workload: {workload}")
        ax.set_ylim(0, 1)
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    axes[0][0].set_ylabel("share of KV memory in use")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("Waste breakdown (time average while there is work)")
    fig.tight_layout()
    return fig


def build_report(directory: str | Path, metrics: list[str] | tuple[str, ...] | None = None,
                 fmt: str = "png") -> Path:
    """Draw every figure into ``<directory>/report`` and write its index; return the index."""
    directory = Path(directory)
    results, series = load_results(directory)
    metrics = [m for m in (metrics or DEFAULT_METRICS) if m in results.columns]
    if "time" in series and "cell" in series and rate_axis(results) is not None:
        # Serving sweep: times do not line up across cells, so draw one cell per design,
        # at the highest load and the first seed.
        x = rate_axis(results)
        top = results[results[x] == results[x].max()]
        keep = top.sort_values("seed").groupby(["design", "size_class"]).head(1)["cell"]
        series = series[series["cell"].isin(set(keep))]
    out = directory / "report"
    entries: list[tuple[str, str | None]] = []  # (caption, file or None when skipped)

    def save(fig, stem: str, caption: str, why_not: str) -> None:
        if fig is None:
            entries.append((f"{caption} — not drawn: {why_not}", None))
            return
        name = f"{stem}.{fmt}"
        try:
            write_atomic(out / name, lambda p: fig.savefig(p, format=fmt, dpi=110))
        finally:
            plt.close(fig)
        entries.append((caption, name))

    with sns.axes_style("whitegrid"):
        for metric in metrics:
            save(heatmap(results, metric), f"heatmap_{metric}",
                 f"`{metric}` of paged_compressed over compression ratio × pressure threshold, "
                 "mean over seeds, one panel per workload.",
                 "needs paged_compressed cells with at least two ratios and two thresholds")
            save(against_compression_ratio(results, metric), f"vs_compression_ratio_{metric}",
                 f"`{metric}` against the compression ratio, one line per pressure threshold "
                 "with a 95% confidence band over seeds; dashed lines: the models that do not "
                 "compress (mean over seeds).",
                 "needs paged_compressed cells with at least two ratios")
        save(over_time(series, {"held": "memory held (slots)", "stored": "tokens stored (slots)"},
                       "Memory over time"), "memory_over_time",
             "Memory held and tokens stored against the step, per model and workload: the "
             "mean over the model's cells (seeds and, for paged_compressed, every setting).",
             "no per-step series")
        save(over_time(series, {"external_fragmentation": "external fragmentation",
                                "internal_fragmentation": "internal fragmentation (slots)"},
                       "Fragmentation over time"), "fragmentation_over_time",
             "External fragmentation (1 − largest free / free) and internal fragmentation "
             "(slots held but not holding tokens) against the step: mean over each model's cells.",
             "no per-step series")
        save(against_rate(results), "vs_rate",
             "Mean batch size, throughput, normalized latency and p90 latency against the "
             "request rate, per memory design (monolithic by reservation policy), with 95% "
             "confidence bands over seeds — the vLLM paper's Figures 12 and 13.",
             "needs serving cells at two or more request rates")
        save(waste_breakdown(results), "waste_breakdown",
             "Share of KV memory in use holding token states, reserved, lost to internal and to "
             "external fragmentation, per model and workload (mean over cells), as in Figure 2 "
             "of the vLLM paper.", "no waste columns in the results")

    lines = [f"# Report: {directory.name}", "",
             f"{len(results)} successful cells; models: "
             + ", ".join(sorted(results['allocator'].unique())) + ".", ""]
    for caption, name in entries:
        if name is None:
            lines += [f"- {caption}", ""]
        else:
            lines += [f"## {name}", "", caption, "", f"![{name}]({name})", ""]
    text = "\n".join(lines)
    return write_atomic(out / "index.md", lambda p: p.write_text(text))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="kvsim-report", description="Build the figures of a kvsim sweep (or run) from disk.")
    parser.add_argument("directory", type=Path, help="a sweep or run directory")
    parser.add_argument("--metric", action="append", dest="metrics",
                        help="a summary column for the heatmaps and line plots (repeatable)")
    parser.add_argument("--format", default="png", choices=("png", "pdf", "svg"))
    args = parser.parse_args(argv)
    try:
        index = build_report(args.directory, args.metrics, args.format)
    except FileNotFoundError as error:
        print(f"kvsim-report: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(index)


if __name__ == "__main__":
    main()
