"""LLM request workloads: each request has an arrival time, a prompt and an output length."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kvsim.errors import ConfigError, check_int

#: Mean prompt / output lengths (tokens) of public datasets, as used by the vLLM paper
#: (Kwon et al., SOSP 2023, sec. 6.1): ShareGPT 161 / 338, Alpaca 19 / 58.
PRESETS: dict[str, tuple[float, float]] = {"sharegpt": (161.0, 338.0), "alpaca": (19.0, 58.0)}
DISTRIBUTIONS = ("fixed", "uniform", "lognormal")
ARRIVALS = ("poisson", "all_at_once")


@dataclass(frozen=True)
class RequestTrace:
    """Requests as parallel arrays, sorted by arrival time (seconds from the start)."""

    arrival: np.ndarray  # float64 seconds
    prompt: np.ndarray  # int64 tokens
    output: np.ndarray  # int64 tokens
    source: str = ""

    def __len__(self) -> int:
        return len(self.arrival)

    def head(self, n: int) -> "RequestTrace":
        return RequestTrace(self.arrival[:n], self.prompt[:n], self.output[:n], self.source)


@dataclass(frozen=True)
class LengthDistribution:
    """Token lengths: ``fixed`` (always ``mean``), ``uniform`` on [low, high], or
    ``lognormal`` with the given ``mean`` and shape ``sigma`` (mu = ln(mean) - sigma^2 / 2).
    Draws are rounded and at least 1."""

    dist: str = "lognormal"
    mean: float = 161.0
    sigma: float = 1.0
    low: int = 1
    high: int = 1024
    key: str = "workload.prompt"

    def __post_init__(self) -> None:
        if self.dist not in DISTRIBUTIONS:
            raise ConfigError(f"{self.key}.dist", self.dist, "one of " + ", ".join(DISTRIBUTIONS))
        if not self.mean >= 1:
            raise ConfigError(f"{self.key}.mean", self.mean, "a number >= 1")
        if not self.sigma > 0:
            raise ConfigError(f"{self.key}.sigma", self.sigma, "a number > 0")
        if self.dist == "uniform" and not 1 <= self.low <= self.high:
            raise ConfigError(f"{self.key}.low", [self.low, self.high], "1 <= low <= high")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.dist == "fixed":
            values = np.full(n, round(self.mean), dtype=np.int64)
        elif self.dist == "uniform":
            values = rng.integers(self.low, self.high + 1, size=n, dtype=np.int64)
        else:
            mu = math.log(self.mean) - self.sigma ** 2 / 2
            values = np.rint(rng.lognormal(mu, self.sigma, size=n)).astype(np.int64)
        return np.maximum(values, 1)


@dataclass(frozen=True)
class RequestWorkload:
    """Generated requests: Poisson arrivals at ``rate`` requests/s (or all at time 0), with
    prompt and output lengths from their distributions (``lengths`` = ``sharegpt`` or
    ``alpaca`` sets both to lognormal with the dataset's published means), clamped so that
    prompt + output fits the model's ``max_model_len``. Seeded.

    >>> w = RequestWorkload(num_requests=3, arrival="all_at_once", lengths="custom",
    ...                     prompt=LengthDistribution("fixed", 10),
    ...                     output=LengthDistribution("fixed", 5))
    >>> t = w.generate(); t.arrival.tolist(), t.prompt.tolist(), t.output.tolist()
    ([0.0, 0.0, 0.0], [10, 10, 10], [5, 5, 5])
    """

    num_requests: int = 1000
    arrival: str = "poisson"
    rate: float = 2.0
    lengths: str = "sharegpt"
    prompt: LengthDistribution = field(default_factory=LengthDistribution)
    output: LengthDistribution = field(
        default_factory=lambda: LengthDistribution(mean=338.0, key="workload.output"))
    max_model_len: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("workload.num_requests", self.num_requests, minimum=1)
        check_int("seed", self.seed, minimum=0)
        if self.arrival not in ARRIVALS:
            raise ConfigError("workload.arrival", self.arrival, "one of " + ", ".join(ARRIVALS))
        if self.arrival == "poisson" and not (isinstance(self.rate, (int, float))
                                              and self.rate > 0):
            raise ConfigError("workload.rate", self.rate, "a number of requests/s > 0")
        if self.lengths not in (*PRESETS, "custom"):
            raise ConfigError("workload.lengths", self.lengths,
                              "one of " + ", ".join([*PRESETS, "custom"]))
        if self.max_model_len < 2:
            raise ConfigError("model.max_model_len", self.max_model_len, "an integer >= 2")

    def distributions(self) -> tuple[LengthDistribution, LengthDistribution]:
        if self.lengths == "custom":
            return self.prompt, self.output
        p, o = PRESETS[self.lengths]
        return (LengthDistribution("lognormal", p, self.prompt.sigma, key="workload.prompt"),
                LengthDistribution("lognormal", o, self.output.sigma, key="workload.output"))

    def generate(self) -> RequestTrace:
        rng = np.random.default_rng(self.seed)
        n = self.num_requests
        if self.arrival == "poisson":
            arrival = np.cumsum(rng.exponential(1.0 / self.rate, size=n))
        else:
            arrival = np.zeros(n)
        prompt_dist, output_dist = self.distributions()
        prompt = prompt_dist.sample(rng, n)
        output = output_dist.sample(rng, n)
        prompt, output = clamp_lengths(prompt, output, self.max_model_len)
        return RequestTrace(arrival.astype(np.float64), prompt, output,
                            f"{self.arrival} {self.lengths}")


def clamp_lengths(prompt: np.ndarray, output: np.ndarray,
                  max_model_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Clamp so that prompt + output <= max_model_len: the prompt keeps at most
    max_model_len - 1 tokens, and the output what is left."""
    prompt = np.minimum(prompt, max_model_len - 1)
    output = np.minimum(output, max_model_len - prompt)
    return prompt, output
