"""From Hydra sweep overrides to the cells of a sweep, without Hydra's per-job launcher.

``kvsim -m compression_ratio=0.25,0.5 workload=short,long seed=range(5)`` is expanded here,
in the application: overrides are parsed with Hydra's own parser (choice lists, ``range``,
``choice``, ``glob`` for groups), the config is composed once per combination of *group*
choices, and the swept values are set on plain dicts. A grid may also come from the config
(``hydra.sweeper.params``, e.g. in an experiment file); the command line wins for a key in
both.

A cell is one memory model on one fully specified configuration. A parameter that a model
does not use (``USES`` in the allocator registry) does not multiply its cells: ``paged`` in a
sweep over ``compression_ratio`` runs once per other combination, and its row leaves the
unused parameters empty.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from fnmatch import fnmatch

from omegaconf import DictConfig, OmegaConf

from kvsim.allocators import USES, PoolParams
from kvsim.config import GROUPS, compose, group_options, spec_from_config
from kvsim.errors import ConfigError

POOL_KEYS = tuple(PoolParams.__dataclass_fields__)
#: Config nodes only serving runs read.
SERVING_ONLY = ("model", "hardware", "serving")
#: Engine settings that only the models naming them in USES depend on: (config node, key).
ENGINE_KEYS = (("serving", "reservation"),)


@dataclass(frozen=True)
class Cell:
    """One model on one configuration: the unit of work of a sweep."""

    id: str  # a digest of ``config``: stable across runs, so a sweep can resume
    config: dict  # the plain config (one allocator) that spec_from_config accepts
    columns: dict  # config values as result-table columns; unused ones are None


@dataclass(frozen=True)
class Grid:
    """The cells of a sweep, in grid order, and what the grid was made of."""

    cells: tuple[Cell, ...]
    axes: dict[str, list[str]]  # swept key -> its values, as given
    fixed: tuple[str, ...]  # the overrides that apply to every cell
    sweep_dir: str
    options: dict  # the `sweep` node of the config: n_jobs, backend, ...


def expand(overrides: list[str]) -> Grid:
    """Expand command-line overrides (with sweeps) into cells; ConfigError if any is bad."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = parser.parse_overrides(list(overrides))
    hydra_overrides = [o.input_line for o in parsed if o.is_hydra_override()]
    fixed = [o.input_line for o in parsed
             if not o.is_sweep_override() and not o.is_hydra_override()]
    probe = compose(fixed + hydra_overrides, return_hydra_config=True)

    axes: dict[str, list[tuple[str, object]]] = {}
    config_params = OmegaConf.select(probe, "hydra.sweeper.params") or {}
    on_command_line = {o.key_or_group for o in parsed}
    for key, value in config_params.items():
        for o in parser.parse_overrides([f"{key}={value}"]):
            if o.key_or_group not in on_command_line:  # the command line wins, as in Hydra
                axes[o.key_or_group] = _values(o)
    for o in parsed:
        if o.is_sweep_override():
            axes[o.key_or_group] = _values(o)
    for key in list(axes):
        if not axes[key]:
            raise ConfigError(key, "", "at least one value to sweep over")

    sweep_dir = str(OmegaConf.select(probe, "hydra.sweep.dir"))
    options = OmegaConf.to_container(probe.sweep, resolve=True)
    group_keys = [k for k in axes if k.lstrip("+") in GROUPS]
    value_keys = [k for k in axes if k not in group_keys]

    bases: dict[tuple, DictConfig] = {}
    plain: dict[tuple, dict] = {}  # the same, as plain dicts: copying those is cheap
    typed: dict[tuple, object] = {}
    cells: dict[str, Cell] = {}
    for combo in itertools.product(*(axes[k] for k in group_keys + value_keys)):
        chosen = dict(zip(group_keys + value_keys, combo))
        group_choice = tuple(f"{k}={chosen[k][0]}" for k in group_keys)
        base = bases.get(group_choice)
        if base is None:
            base = bases[group_choice] = compose(fixed + list(group_choice))
            plain[group_choice] = OmegaConf.to_container(base, resolve=True)
        config = _copy(plain[group_choice])
        for key in value_keys:
            text, value = chosen[key]
            cache_key = (group_choice, key, text)
            if cache_key not in typed:
                typed[cache_key] = _typed(base, key, text, value)
            _set(config, key, _copy(typed[cache_key]))
        for cell in _cells_of(config):
            cells.setdefault(cell.id, cell)
    return Grid(tuple(cells.values()), {k: [t for t, _ in v] for k, v in axes.items()},
                tuple(fixed), sweep_dir, options)


def _values(o) -> list[tuple[str, object]]:
    """(text, typed value) for each value of a (possibly sweep) override."""
    key = o.key_or_group
    if not o.is_sweep_override():
        return [(o.get_value_element_as_str(), o.value())]
    if o.value_type.name == "GLOB_CHOICE_SWEEP":
        glob = o.value()
        names = [n for n in group_options(key.lstrip("+"))
                 if any(fnmatch(n, p) for p in glob.include)
                 and not any(fnmatch(n, p) for p in glob.exclude)]
        return [(n, n) for n in names]
    return list(zip(o.sweep_string_iterator(), o.sweep_iterator()))


def _typed(base: DictConfig, key: str, text: str, value: object) -> object:
    """The value as the schema types it (``"1"`` for a float key is 1.0), or ConfigError."""
    if OmegaConf.select(base, key, default=_ABSENT) is _ABSENT:
        raise ConfigError(key, text, "a known key")
    trial = copy.deepcopy(base)
    try:
        OmegaConf.update(trial, key, value, merge=False)
    except Exception as exc:
        message = str(exc).splitlines()[0].lower()
        expected = next((m for w, m in (("list", "a list"), ("int", "an integer"),
                                        ("float", "a number"), ("bool", "true or false"))
                         if w in message), message)
        raise ConfigError(key, text, expected) from None
    node = OmegaConf.select(trial, key)
    return OmegaConf.to_container(node) if isinstance(node, DictConfig) or OmegaConf.is_list(
        node) else node


_ABSENT = object()


def _copy(value: object) -> object:
    """A copy of a plain config (dicts, lists, scalars) — much cheaper than deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _set(config: dict, key: str, value: object) -> None:
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
        node = node[p]
    node[leaf] = value


def _cells_of(config: dict) -> list[Cell]:
    """One cell per allocator of a full config; parameters a model ignores are blanked."""
    config.pop("hydra", None)
    config.pop("sweep", None)  # how a sweep runs is not part of a cell: n_jobs may change
    spec = spec_from_config(config)  # validates everything before any work
    if spec.kind == "synthetic":  # no model, GPU or batching: sweeping them changes nothing
        for node in SERVING_ONLY:
            config.pop(node, None)
    cells = []
    for name in spec.allocators:
        one = _copy(config)
        one["allocators"] = [name]
        one["figures"] = False
        columns = {"allocator": name, **spec.parameters()}
        for key in POOL_KEYS:
            if key not in USES[name]:
                one[key] = PoolParams.__dataclass_fields__[key].default
                columns[key] = None
        for node, key in ENGINE_KEYS:
            if key not in columns:  # a setting this kind of run does not have
                continue
            if key not in USES[name] and isinstance(one.get(node), dict) and key in one[node]:
                one[node][key] = None
                columns[key] = None
        digest = hashlib.sha1(json.dumps(one, sort_keys=True).encode()).hexdigest()[:16]
        cells.append(Cell(digest, one, columns))
    return cells
