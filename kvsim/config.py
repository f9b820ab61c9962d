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
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from kvsim.allocators import REGISTRY, PoolParams, make_allocator
from kvsim.engines.cost import CostModel, HardwareSpec, ModelSpec, kv_capacity_slots
from kvsim.engines.event import EventEngine
from kvsim.engines.serving import ServingEngine
from kvsim.errors import ConfigError, check_fraction, check_int
from kvsim.workloads.requests import LengthDistribution, RequestWorkload
from kvsim.workloads.synthetic import SyntheticWorkload
from kvsim.workloads.trace_file import TraceWorkload

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
class LengthSchema:
    dist: str = "lognormal"  # fixed | uniform | lognormal
    mean: float = 161.0
    sigma: float = 1.0
    low: int = 1
    high: int = 1024


@dataclass
class ServingWorkloadSchema:
    kind: str = "serving"
    arrival: str = "poisson"  # poisson | all_at_once
    rate: float = 2.0  # requests per second
    num_requests: int = 1000
    lengths: str = "sharegpt"  # sharegpt | alpaca | custom
    prompt: LengthSchema = field(default_factory=LengthSchema)
    output: LengthSchema = field(default_factory=lambda: LengthSchema(mean=338.0))


@dataclass
class TraceWorkloadSchema:
    kind: str = "trace"
    path: str = "azure_conv"
    format: str = "auto"
    columns: Optional[Dict[str, str]] = None
    time_unit: str = "auto"
    first_n: Optional[int] = None
    window: Optional[List[float]] = None
    rate_scale: float = 1.0


@dataclass
class ModelSchema:
    name: str = MISSING
    parameters: float = MISSING
    num_layers: int = MISSING
    num_kv_heads: int = MISSING
    head_dim: int = MISSING
    dtype_bytes: int = 2
    max_model_len: int = 4096


@dataclass
class HardwareSchema:
    name: str = MISSING
    memory_bytes: float = MISSING
    bandwidth_bytes_per_s: float = MISSING
    peak_flops: float = MISSING


@dataclass
class ServingSchema:
    max_num_seqs: int = 256
    max_batched_tokens: Optional[int] = None  # null: max_model_len
    reservation: str = "oracle"  # monolithic: oracle | pow2 | max
    gpu_memory_utilization: float = 0.9
    num_gpus: int = 1
    cost_model: str = "roofline"  # roofline | unit


@dataclass
class SweepSchema:
    n_jobs: int = -1  # joblib workers; -1: every core
    backend: str = "loky"  # loky | dask
    scheduler: Optional[str] = None  # dask: a distributed scheduler address; null: a local cluster
    force: bool = False  # recompute cells that already have a result
    report: bool = True  # draw the sweep report at the end
    report_metrics: List[str] = field(
        default_factory=lambda: ["allocation_success_rate", "utilization",
                                 "compressed_token_fraction"])
    figure_format: str = "png"


@dataclass
class KvsimSchema:
    allocators: List[str] = field(default_factory=lambda: ["all"])
    workload: Any = MISSING
    model: ModelSchema = MISSING
    hardware: HardwareSchema = MISSING
    serving: ServingSchema = field(default_factory=ServingSchema)
    seed: int = 0
    capacity: Optional[int] = None
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
    store.store(name="serving_workload_schema", node=ServingWorkloadSchema)
    store.store(name="trace_workload_schema", node=TraceWorkloadSchema)


register_schemas()


@dataclass(frozen=True)
class ServingSetup:
    """The serving engine's side of a run: model, hardware, batching limits, cost model."""

    model: ModelSpec
    hardware: HardwareSpec
    max_num_seqs: int = 256
    max_batched_tokens: int | None = None
    reservation: str = "oracle"
    gpu_memory_utilization: float = 0.9
    cost_model: str = "roofline"


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, validated: which models, their pool, the workload."""

    allocators: tuple[str, ...]
    pool: PoolParams
    workload: SyntheticWorkload | RequestWorkload | TraceWorkload
    record_every: int = 1
    figures: bool = True
    figure_format: str = "png"
    serving: ServingSetup | None = None

    @property
    def kind(self) -> str:
        return "synthetic" if self.serving is None else "serving"

    def engine(self) -> EventEngine | ServingEngine:
        if self.serving is None:
            return EventEngine(self.record_every)
        s = self.serving
        return ServingEngine(CostModel(s.model, s.hardware, s.cost_model),
                             max_num_seqs=s.max_num_seqs,
                             max_batched_tokens=s.max_batched_tokens,
                             reservation=s.reservation, record_every=self.record_every)

    def parameters(self) -> dict[str, object]:
        """The run's configuration as flat columns (for result tables)."""
        pool = {
            "capacity": self.pool.capacity,
            "block_size": self.pool.block_size,
            "compression_ratio": self.pool.compression_ratio,
            "pressure_threshold": self.pool.pressure_threshold,
            "placement": self.pool.placement,
            "watermark": self.pool.watermark,
            "record_every": self.record_every,
        }
        w = self.workload
        if isinstance(w, SyntheticWorkload):
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
                **pool,
            }
        s = self.serving
        common = {
            "model": s.model.name,
            "hardware": s.hardware.name,
            "num_gpus": s.hardware.num_gpus,
            "gpu_memory_utilization": s.gpu_memory_utilization,
            "max_num_seqs": s.max_num_seqs,
            "max_batched_tokens": s.max_batched_tokens or s.model.max_model_len,
            "reservation": s.reservation,
            "cost_model": s.cost_model,
        }
        if isinstance(w, RequestWorkload):
            prompt, output = w.distributions()
            source = {"workload": "serving", "size_class": f"{w.lengths}",
                      "arrival": w.arrival, "rate": w.rate if w.arrival == "poisson" else None,
                      "num_requests": w.num_requests, "prompt_mean": prompt.mean,
                      "output_mean": output.mean, "seed": w.seed}
        else:
            source = {"workload": "trace", "size_class": Path(w.path).stem,
                      "trace": w.path, "first_n": w.first_n,
                      "window": None if w.window is None else f"{w.window[0]}-{w.window[1]}",
                      "rate_scale": w.rate_scale, "seed": 0}
        return {**source, **common, **pool}


def spec_from_config(cfg: DictConfig | dict) -> RunSpec:
    """Validate a composed config and turn it into a :class:`RunSpec`.

    Raises :class:`ConfigError` for the first invalid value.
    """
    c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    c.pop("hydra", None)
    c.pop("sweep", None)
    allocators = _allocator_names(c.get("allocators", ["all"]))
    w = dict(c.get("workload") or {})
    kind = w.pop("kind", "synthetic")
    if kind not in WORKLOAD_KINDS:
        raise ConfigError("workload.kind", kind, "one of " + ", ".join(WORKLOAD_KINDS))
    serving = None if kind == "synthetic" else _serving(c)
    capacity = c.get("capacity")
    if capacity is None:
        capacity = DEFAULT_CAPACITY if serving is None else kv_capacity_slots(
            serving.model, serving.hardware, serving.gpu_memory_utilization)
    pool = PoolParams(
        capacity=capacity,
        block_size=c.get("block_size", 16),
        compression_ratio=c.get("compression_ratio", 0.5),
        pressure_threshold=c.get("pressure_threshold", 0.8),
        placement=c.get("placement", "first_fit"),
        watermark=c.get("watermark", 0.0),
    )
    check_pool(pool)
    seed = c.get("seed", 0)
    if kind == "synthetic":
        workload = _synthetic(w, seed=seed, capacity=pool.capacity)
    elif kind == "serving":
        workload = _requests(w, seed=seed, max_model_len=serving.model.max_model_len)
    else:
        workload = _trace(w, max_model_len=serving.model.max_model_len)
    record_every = check_int("record_every", c.get("record_every", 1), minimum=1)
    figure_format = c.get("figure_format", "png")
    if figure_format not in FIGURE_FORMATS:
        raise ConfigError("figure_format", figure_format, "one of " + ", ".join(FIGURE_FORMATS))
    spec = RunSpec(allocators, pool, workload, record_every, bool(c.get("figures", True)),
                   figure_format, serving)
    if serving is not None:
        spec.engine()  # checks the batching limits and the cost model
    return spec


WORKLOAD_KINDS = ("synthetic", "serving", "trace")
DEFAULT_CAPACITY = 4096


def _serving(c: dict) -> ServingSetup:
    m = dict(c.get("model") or {})
    h = dict(c.get("hardware") or {})
    s = dict(c.get("serving") or {})
    model = ModelSpec(**m)
    for key in ("num_layers", "num_kv_heads", "head_dim", "dtype_bytes", "max_model_len"):
        check_int(f"model.{key}", getattr(model, key), minimum=1)
    if not model.parameters > 0:
        raise ConfigError("model.parameters", model.parameters, "a number > 0")
    num_gpus = check_int("serving.num_gpus", s.get("num_gpus", 1), minimum=1)
    hardware = HardwareSpec(**h, num_gpus=num_gpus)
    for key in ("memory_bytes", "bandwidth_bytes_per_s", "peak_flops"):
        if not getattr(hardware, key) > 0:
            raise ConfigError(f"hardware.{key}", getattr(hardware, key), "a number > 0")
    utilization = check_fraction("serving.gpu_memory_utilization",
                                 s.get("gpu_memory_utilization", 0.9), high_open=False)
    return ServingSetup(model, hardware, s.get("max_num_seqs", 256),
                        s.get("max_batched_tokens"), s.get("reservation") or "oracle",
                        utilization, s.get("cost_model", "roofline"))


def _requests(w: dict, *, seed: object, max_model_len: int) -> RequestWorkload:
    prompt = LengthDistribution(**w.pop("prompt", {}), key="workload.prompt")
    output = LengthDistribution(**w.pop("output", {"mean": 338.0}), key="workload.output")
    return RequestWorkload(**w, prompt=prompt, output=output, max_model_len=max_model_len,
                           seed=seed)


def _trace(w: dict, *, max_model_len: int) -> TraceWorkload:
    if w.get("window") is not None:
        w["window"] = tuple(w["window"])
    return TraceWorkload(**w, max_model_len=max_model_len)


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


def _synthetic(w: dict, *, seed: object, capacity: int) -> SyntheticWorkload:
    for key in ("size_range", "lifetime_range"):
        if w.get(key) is not None:
            w[key] = tuple(w[key])
    return SyntheticWorkload(**w, seed=seed, capacity=capacity)


# -- composing from overrides, with errors a user can read ----------------------------------


def group_options(group: str) -> list[str]:
    """The options of a config group, from the files in ``conf/<group>/``."""
    folder = resources.files(CONFIG_MODULE).joinpath(group)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


GROUPS = ("allocator", "workload", "experiment", "model", "hardware")


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
