"""kvsim: a KV-cache memory simulator for LLM serving.

Compare memory designs — one contiguous reservation per sequence (``monolithic``),
fixed-size pages (``paged``), pages whose cold blocks are compressed under pressure
(``paged_compressed``) and the ``ideal`` bound — on the same workloads.

>>> import kvsim
>>> result = kvsim.simulate("workload=short", capacity=1024)  # doctest: +SKIP
>>> result.summary, result.series  # pandas DataFrames  # doctest: +SKIP
"""

from kvsim.allocators import REGISTRY, PoolParams, make_allocator
from kvsim.config import RunSpec, compose, spec_from_config
from kvsim.errors import ConfigError
from kvsim.results import load_tables
from kvsim.simulate import Simulation, run, run_grid, simulate


def load_results(directory):
    """(results, series) DataFrames of a sweep (or a run) directory, as the report reads them."""
    from kvsim.report import load_results as load

    return load(directory)

__all__ = [
    "REGISTRY",
    "ConfigError",
    "PoolParams",
    "RunSpec",
    "Simulation",
    "compose",
    "load_results",
    "load_tables",
    "make_allocator",
    "run",
    "simulate",
    "spec_from_config",
    "run_grid",
]
