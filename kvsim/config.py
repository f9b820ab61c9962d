"""From a Hydra config to the plain typed objects a run is made of.

The config tree (``conf/``) mirrors the code: a group per swappable part (``allocator``,
``workload``) and the pool's parameters at the top, so that a sweep reads
``kvsim -m compression_ratio=0.25,0.5 workload=short,long``. Two layers of checks run
before any work: the structured schemas below (types and known keys, enforced by
OmegaConf) and :func:`spec_from_config` (ranges and choices, each failure a one-line
:class:`~kvsim.errors.ConfigError` naming the key, the value and what is allowed).
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from kvsim.allocators import REGISTRY, PoolParams, make_allocator
from kvsim.engines.event import EventEngine
from kvsim.errors import ConfigError, check_int
from kvsim.workloads.synthetic import SyntheticWorkload

CONFIG_MODULE = "kvsim.conf"
FIGURE_FORMATS = ("png", "pdf", "svg")


@dataclass
class SyntheticWorkloadSchema:
    kind: str = "synthetic"
    steps: int = 10_000
    size_class: str = "mixed"
    size_range: Optional[List[int]] = None
    free_probability: float = 1.0
    lifetime_range: Optional[List[int]] = None
    target_load: float = 0.85
    allocs_per_step: int = 1


@dataclass
class SweepSchema:
    n_jobs: int = -1  # joblib workers; -1: every core
    backend: str = "loky"  # loky | dask
    scheduler: Optional[str] = None  # dask: a distributed scheduler address; null: a local cluster
    force: bool = False  # recompute cells that already have a result
    report: bool = True  # draw the sweep report at the end
    report_metrics: List[str] = field(
        default_factory=lambda: ["allocation_success_rate", "utilization", "compressed_token_fraction"])
    figure_format: str = "png"


@dataclass
class KvsimSchema:
    allocators: List[str] = field(default_factory=lambda: ["all"])
    workload: Any = MISSING
    seed: int = 0
    capacity: int = 4096
    block_size: int = 16
    compression_ratio: float = 0.5
    pressure_threshold: float = 0.8
    placement: str = "first_fit"
    watermark: float = 0.0
    record_every: int = 1
    figures: bool = True
    figure_format: str = "png"
    sweep: SweepSchema = field(default_factory=SweepSchema)


def register_schemas() -> None:
    """Make the schemas known to Hydra (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="kvsim_schema", node=KvsimSchema)
    store.store(name="synthetic_workload_schema", node=SyntheticWorkloadSchema)


register_schemas()


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, validated: which models, their pool, the workload."""

    allocators: tuple[str, ...]
    pool: PoolParams
    workload: SyntheticWorkload
    record_every: int = 1
    figures: bool = True
    figure_format: str = "png"

    def engine(self) -> EventEngine:
        return EventEngine(self.record_every)

    def parameters(self) -> dict[str, object]:
        """The run's configuration as flat columns (for result tables)."""
        w = self.workload
        lo, hi = w.sizes
        life_lo, life_hi = w.lifetimes
        return {
            "workload": "synthetic",
            "size_class": w.size_class if w.size_range is None else "custom",
            "size_min": lo,
            "size_max": hi,
            "steps": w.steps,
            "free_probability": w.free_probability,
            "target_load": w.target_load if w.lifetime_range is None else None,
            "lifetime_min": life_lo,
            "lifetime_max": life_hi,
            "allocs_per_step": w.allocs_per_step,
            "seed": w.seed,
            "capacity": self.pool.capacity,
            "block_size": self.pool.block_size,
            "compression_ratio": self.pool.compression_ratio,
            "pressure_threshold": self.pool.pressure_threshold,
            "placement": self.pool.placement,
            "watermark": self.pool.watermark,
            "record_every": self.record_every,
        }


def spec_from_config(cfg: DictConfig | dict) -> RunSpec:
    """Validate a composed config and turn it into a :class:`RunSpec`.

    Raises :class:`ConfigError` for the first invalid value.
    """
    c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    c.pop("hydra", None)
    c.pop("sweep", None)
    allocators = _allocator_names(c.get("allocators", ["all"]))
    pool = PoolParams(
        capacity=c.get("capacity", 4096),
        block_size=c.get("block_size", 16),
        compression_ratio=c.get("compression_ratio", 0.5),
        pressure_threshold=c.get("pressure_threshold", 0.8),
        placement=c.get("placement", "first_fit"),
        watermark=c.get("watermark", 0.0),
    )
    check_pool(pool)
    workload = _workload(dict(c.get("workload") or {}), seed=c.get("seed", 0),
                         capacity=pool.capacity)
    record_every = check_int("record_every", c.get("record_every", 1), minimum=1)
    figure_format = c.get("figure_format", "png")
    if figure_format not in FIGURE_FORMATS:
        raise ConfigError("figure_format", figure_format, "one of " + ", ".join(FIGURE_FORMATS))
    return RunSpec(allocators, pool, workload, record_every, bool(c.get("figures", True)),
                   figure_format)


@functools.lru_cache(maxsize=4096)
def check_pool(pool: PoolParams) -> None:
    """Every model checks its own parameters when built; building each once checks them all
    (once per distinct pool: a sweep repeats the same few)."""
    for name in REGISTRY:
        make_allocator(name, pool)


def _allocator_names(names: object) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    allowed = "a list of: all, " + ", ".join(REGISTRY)
    if not isinstance(names, (list, tuple)) or not names:
        raise ConfigError("allocators", names, allowed)
    chosen: list[str] = []
    for name in names:
        if name == "all":
            chosen.extend(REGISTRY)
        elif name in REGISTRY:
            chosen.append(name)
        else:
            raise ConfigError("allocators", name, allowed)
    return tuple(dict.fromkeys(chosen))


def _workload(w: dict, *, seed: object, capacity: int) -> SyntheticWorkload:
    kind = w.pop("kind", "synthetic")
    if kind != "synthetic":
        raise ConfigError("workload.kind", kind, "synthetic")
    for key in ("size_range", "lifetime_range"):
        if w.get(key) is not None:
            w[key] = tuple(w[key])
    return SyntheticWorkload(**w, seed=seed, capacity=capacity)


# -- composing from overrides, with errors a user can read ----------------------------------


def group_options(group: str) -> list[str]:
    """The options of a config group, from the files in ``conf/<group>/``."""
    folder = resources.files(CONFIG_MODULE).joinpath(group)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


GROUPS = ("allocator", "workload", "experiment")


def compose(overrides: list[str] | tuple[str, ...] = (), *,
            return_hydra_config: bool = False) -> DictConfig:
    """Compose the config as ``kvsim`` would, raising ConfigError for a bad override.

    The overrides are checked one by one first, so that a misspelt key or an unknown
    option is reported as what it is, not as Hydra's several-line composition error.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    groups = []
    for o in parsed:
        key = o.key_or_group.lstrip("+")
        if key in GROUPS:
            value = o.value()
            options = group_options(key)
            if value not in options:
                raise ConfigError(key, value, "one of " + ", ".join(options))
            groups.append(o.input_line)

    hydra = GlobalHydra.instance()
    saved = hydra.hydra if hydra.is_initialized() else None
    hydra.clear()
    try:
        with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
            base = hydra_compose("config", overrides=groups)
            for o in parsed:
                key = o.key_or_group.lstrip("+")
                if key in GROUPS or key.startswith("hydra"):
                    continue
                if OmegaConf.select(base, key, default=_ABSENT) is _ABSENT:
                    raise ConfigError(key, o.value(), _known_keys_hint(base, key))
            try:
                return hydra_compose("config", overrides=list(overrides),
                                     return_hydra_config=return_hydra_config)
            except Exception as exc:  # a value of the wrong type
                raise _type_error(exc, parsed) from None
    finally:
        hydra.clear()
        if saved is not None:
            hydra.initialize(saved)


_ABSENT = object()


def _known_keys_hint(cfg: DictConfig, key: str) -> str:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    known = [k for k in node.keys()] if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(leaf, known, n=1)
    prefix = f"{parent}." if parent else ""
    hint = f"a known key (did you mean {prefix}{close[0]}?)" if close else "a known key"
    return hint + "; known keys here: " + ", ".join(f"{prefix}{k}" for k in known)


def _type_error(exc: Exception, parsed: list) -> ConfigError:
    """Turn OmegaConf's several-line type error into a ConfigError for the override."""
    cause = exc.__cause__ or exc
    key = getattr(cause, "full_key", None) or ""
    message = str(cause).splitlines()[0]
    values = {o.key_or_group: o.value() for o in parsed}
    expected = message
    for word, meaning in (("list", "a list [low, high]"), ("int", "an integer"),
                          ("float", "a number"), ("bool", "true or false")):
        if word in message.lower():
            expected = meaning
            break
    return ConfigError(key or "override", values.get(key, message), expected)
