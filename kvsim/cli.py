"""``kvsim``: the command line, a Hydra application.

``kvsim`` alone runs every memory model on the default workload and writes, under Hydra's
output directory (``outputs/<date>/<time>/``): summary.csv and summary.parquet (one row per
model), series.parquet (the per-step state, long form), figures/ and a summary on the
console. ``kvsim allocator=paged workload=long capacity=8192`` picks pieces.

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


def format_summary(summary) -> str:
    """The summary table as readable console text."""
    table = summary[list(CONSOLE_COLUMNS)].rename(columns=CONSOLE_COLUMNS)
    return table.to_string(index=False, float_format=lambda v: f"{v:,.3f}")


@hydra.main(config_path="pkg://kvsim.conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    from kvsim.figures import draw_run_figures
    from kvsim.simulate import run

    spec = spec_from_config(cfg)
    out = Path(HydraConfig.get().runtime.output_dir)
    log.info("running %s on %s (%d steps, capacity %d slots)", ", ".join(spec.allocators),
             spec.workload.size_class, spec.workload.steps, spec.pool.capacity)
    result = run(spec)
    written = result.save(out)
    if spec.figures:
        written += draw_run_figures(result.series, out / "figures", spec.figure_format)
    print(format_summary(result.summary))
    print(f"\nresults in {out}: " + ", ".join(str(p.relative_to(out)) for p in written))


def _overrides(args: list[str]) -> list[str] | None:
    """The config overrides among ``args``, or None when Hydra should see them unchecked
    (help, config printing, multirun)."""
    takes_value = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                   "--cfg", "-c", "--package", "-p", "--info", "-i", "--experimental-rerun"}
    passthrough = {"--help", "-h", "--hydra-help", "--version", "--multirun", "-m",
                   "--shell-completion", "-sc", "--resolve"}
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in passthrough or arg.split("=")[0] in passthrough:
            return None
        if arg in takes_value:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        if not arg.lstrip("+~").startswith("hydra"):
            out.append(arg)
    return out


def main() -> None:
    """Entry point of the ``kvsim`` console script."""
    overrides = _overrides(sys.argv[1:])
    if overrides is not None:
        try:
            spec_from_config(compose(overrides))
        except ConfigError as error:
            print(f"kvsim: error: {error}", file=sys.stderr)
            sys.exit(2)
    _app()


if __name__ == "__main__":
    main()
