"""How long a serving iteration takes: the model, the hardware and the cost model."""

from __future__ import annotations

from dataclasses import dataclass

from kvsim.errors import ConfigError

COST_MODELS = ("roofline", "unit")


@dataclass(frozen=True)
class ModelSpec:
    """A transformer's size as the KV cache and the cost model see it (conf/model/)."""

    name: str
    parameters: float
    num_layers: int
    num_kv_heads: int
    head_dim: int
    dtype_bytes: int = 2
    max_model_len: int = 4096

    @property
    def bytes_per_slot(self) -> int:
        """K and V of one token in every layer: 2 x layers x kv_heads x head_dim x dtype."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.dtype_bytes

    @property
    def weight_bytes(self) -> float:
        return self.parameters * self.dtype_bytes


@dataclass(frozen=True)
class HardwareSpec:
    """An accelerator (conf/hardware/); ``num_gpus`` of them with tensor parallelism act as
    one device with that many times the memory, bandwidth and compute."""

    name: str
    memory_bytes: float
    bandwidth_bytes_per_s: float
    peak_flops: float
    num_gpus: int = 1


def kv_capacity_slots(model: ModelSpec, hardware: HardwareSpec,
                      gpu_memory_utilization: float) -> int:
    """KV-cache capacity in slots: ``(memory x utilization - weights) // bytes_per_slot``,
    with memory and weights over all GPUs (activations are not modelled)."""
    kv_bytes = (hardware.memory_bytes * hardware.num_gpus * gpu_memory_utilization
                - model.weight_bytes)
    slots = int(kv_bytes // model.bytes_per_slot)
    if slots < 1:
        raise ConfigError(
            "model", model.name,
            f"a model whose weights ({model.weight_bytes / 1e9:.1f} GB) leave room for a KV "
            f"cache on {hardware.num_gpus} x {hardware.name} at gpu_memory_utilization="
            f"{gpu_memory_utilization} (raise serving.num_gpus)")
    return slots


@dataclass(frozen=True)
class CostModel:
    """Seconds per iteration.

    ``roofline`` (default): an iteration processes ``tokens`` tokens (the prompts it prefills
    plus one per decoding request) and reads the weights and the KV of every request in the
    batch (``kv_slots``), so it takes the longer of its compute time and its memory time:

        compute = 2 x parameters x tokens / peak_flops
        memory  = (weight_bytes + kv_slots x bytes_per_slot) / bandwidth
        time    = max(compute, memory)

    A pure decode iteration is memory bound (the weights dominate at small batches); a large
    prefill is compute bound. ``unit``: every iteration takes one second, so times count
    iterations.

    >>> m = ModelSpec("m", parameters=1e9, num_layers=1, num_kv_heads=1, head_dim=1)
    >>> hw = HardwareSpec("hw", memory_bytes=1e12, bandwidth_bytes_per_s=1e12, peak_flops=1e15)
    >>> cost = CostModel(m, hw)
    >>> cost.iteration_seconds(tokens=1, kv_slots=0)      # (2e9 bytes of weights) / 1e12
    0.002
    >>> cost.iteration_seconds(tokens=4000, kv_slots=0)   # 2 x 1e9 x 4000 / 1e15
    0.008
    """

    model: ModelSpec
    hardware: HardwareSpec
    kind: str = "roofline"

    def __post_init__(self) -> None:
        if self.kind not in COST_MODELS:
            raise ConfigError("serving.cost_model", self.kind, "one of " + ", ".join(COST_MODELS))

    def iteration_seconds(self, tokens: int, kv_slots: float) -> float:
        if self.kind == "unit":
            return 1.0
        hw = self.hardware
        compute = 2.0 * self.model.parameters * tokens / (hw.peak_flops * hw.num_gpus)
        memory = (self.model.weight_bytes + kv_slots * self.model.bytes_per_slot) / (
            hw.bandwidth_bytes_per_s * hw.num_gpus)
        return compute if compute > memory else memory
