"""``kvsim``: the command line, a Hydra application.

``kvsim`` alone runs every memory model on the default workload and writes, under Hydra's
output directory (``outputs/<date>/<time>/``): summary.csv and summary.parquet (one row per
model), series.parquet (the per-step state, long form), figures/ and a summary on the
console. ``kvsim allocator=paged workload=long capacity=8192`` picks pieces.

``kvsim -m key=a,b other=range(3)`` runs a sweep: the grid is expanded here, not by Hydra's
launcher (which composes every job's config serially, about 75 ms a job), and its cells run
in parallel with joblib into one results directory (see kvsim.sweep). ``--force`` reruns
cells that already have a result.

Before Hydra runs (and so before it creates any output directory), the overrides are
composed and validated; a bad value stops the command with one line naming the key, the
value and what is allowed, and exit status 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from kvsim.config import compose, spec_from_config
from kvsim.errors import ConfigError
from kvsim.workloads.trace_file import TraceError

#: What stops a command before any work, reported in one line.
INPUT_ERRORS = (ConfigError, TraceError)

log = logging.getLogger("kvsim")

#: Summary columns shown on the console, with their headings.
CONSOLE_COLUMNS = {
    "allocator": "allocator",
    "allocation_success_rate": "success",
    "utilization": "utilization",
    "mean_held": "mean held",
    "peak_held": "peak held",
    "mean_external_fragmentation": "ext. frag",
    "mean_internal_fragmentation": "int. frag (slots)",
    "waste_token_states": "token share",
    "compressed_token_fraction": "compressed",
}


#: The same for serving runs.
SERVING_CONSOLE_COLUMNS = {
    "allocator": "allocator",
    "completed": "done",
    "rejected": "rejected",
    "preemptions": "preempted",
    "throughput_tokens_per_s": "tokens/s",
    "mean_batch_size": "batch",
    "ttft_p50": "TTFT p50 (s)",
    "latency_p50": "latency p50 (s)",
    "latency_p99": "p99 (s)",
    "utilization": "utilization",
    "waste_token_states": "token share",
}


def format_summary(summary) -> str:
    """The summary table as readable console text."""
    columns = SERVING_CONSOLE_COLUMNS if "ttft_p50" in summary else CONSOLE_COLUMNS
    table = summary[list(columns)].rename(columns=columns)
    return table.to_string(index=False, float_format=lambda v: f"{v:,.3f}")


@hydra.main(config_path="pkg://kvsim.conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    from kvsim.figures import draw_run_figures
    from kvsim.simulate import run

    spec = spec_from_config(cfg)
    out = Path(HydraConfig.get().runtime.output_dir)
    log.info("running %s on %s workload, capacity %d slots", ", ".join(spec.allocators),
             spec.parameters()["size_class"], spec.pool.capacity)
    result = run(spec)
    written = result.save(out)
    if spec.figures:
        written += draw_run_figures(result.series, out / "figures", spec.figure_format)
    print(format_summary(result.summary))
    print(f"\nresults in {out}: " + ", ".join(str(p.relative_to(out)) for p in written))


#: Hydra flags that ask for information rather than a run: Hydra answers them itself.
INFORMATION_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--cfg", "-c", "--info",
                     "-i", "--shell-completion", "-sc", "--resolve", "--package", "-p"}


def _asks_for_information(args: list[str]) -> bool:
    return any(arg.split("=")[0] in INFORMATION_FLAGS for arg in args)


def _overrides(args: list[str]) -> list[str] | None:
    """The config overrides among ``args``, or None when Hydra should see them unchecked
    (help, config printing, multirun)."""
    takes_value = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                   "--experimental-rerun"}
    if _asks_for_information(args):
        return None
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--multirun", "-m"):
            return None
        if arg in takes_value:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        if not arg.lstrip("+~").startswith("hydra"):
            out.append(arg)
    return out


def _sweep(args: list[str]) -> int:
    """``kvsim -m ...``: expand the grid in the application and run it with joblib."""
    from kvsim.grid import expand
    from kvsim.sweep import run_sweep

    force = "--force" in args
    overrides = [a for a in args if a not in ("-m", "--multirun", "--force")]
    try:
        grid = expand(overrides)
    except INPUT_ERRORS as error:
        print(f"kvsim: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    outcome = run_sweep(grid, force=True if force else None)
    print(f"{len(grid.cells)} cells ({outcome.ran} run, {outcome.reused} kept from an earlier "
          f"run) in {outcome.directory}: results.parquet, results.csv, series.parquet")
    if grid.options.get("report", True):
        from kvsim.report import build_report

        index = build_report(outcome.directory, metrics=grid.options.get("report_metrics"),
                             fmt=grid.options.get("figure_format", "png"))
        print(f"report: {index}")
    if outcome.failed:
        print(f"kvsim: {outcome.failed} of {len(grid.cells)} cells failed; their errors are in "
              f"the 'error' column of {outcome.directory / 'results.csv'}", file=sys.stderr)
        return 1
    return 0


def _uses_hydra_launcher(args: list[str]) -> bool:
    """A sweep sent to one of Hydra's launchers (submitit for SLURM) is Hydra's to run."""
    return any(a.lstrip("+").startswith("hydra/launcher=") for a in args)


def main() -> None:
    """Entry point of the ``kvsim`` console script."""
    args = sys.argv[1:]
    if ("-m" in args or "--multirun" in args) and not _uses_hydra_launcher(args) \
            and not _asks_for_information(args):
        sys.exit(_sweep(args))
    overrides = _overrides(args)
    if overrides is not None:
        try:
            spec_from_config(compose(overrides))
        except INPUT_ERRORS as error:
            print(f"kvsim: error: {error}", file=sys.stderr)
            sys.exit(2)
    _app()


if __name__ == "__main__":
    main()
