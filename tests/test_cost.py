import pytest

from kvsim.engines.cost import CostModel, HardwareSpec, ModelSpec, kv_capacity_slots
from kvsim.errors import ConfigError

LLAMA13 = ModelSpec("Llama-2-13B", 13.0e9, 40, 40, 128, 2, 4096)
A100 = HardwareSpec("A100-80GB", 80 * 2 ** 30, 2.039e12, 312e12)


def test_bytes_per_slot_of_llama2_13b_in_fp16():
    assert LLAMA13.bytes_per_slot == 2 * 40 * 40 * 128 * 2 == 819_200


def test_kv_capacity_is_what_the_weights_leave():
    # 0.9 x 80 GiB = 77,309,411,328 bytes; minus 26e9 of weights = 51,309,411,328;
    # // 819,200 = 62,633 slots.
    assert kv_capacity_slots(LLAMA13, A100, 0.9) == 62_633


def test_a_decode_iteration_is_memory_bound():
    cost = CostModel(LLAMA13, A100)
    # 32 requests of 1,000 tokens: read 26e9 bytes of weights + 32,000 x 819,200 of KV.
    expected = (26e9 + 32_000 * 819_200) / 2.039e12
    assert cost.iteration_seconds(tokens=32, kv_slots=32_000) == pytest.approx(expected)
    assert expected > 2 * 13e9 * 32 / 312e12  # compute would be far shorter


def test_a_long_prefill_is_compute_bound():
    cost = CostModel(LLAMA13, A100)
    expected = 2 * 13e9 * 4_000 / 312e12  # 0.333 s > (26e9 + 4,000 x 819,200) / 2.039e12
    assert cost.iteration_seconds(tokens=4_000, kv_slots=4_000) == pytest.approx(expected)


def test_tensor_parallel_gpus_add_up():
    four = HardwareSpec("A100-80GB", 80 * 2 ** 30, 2.039e12, 312e12, num_gpus=4)
    seventy = ModelSpec("Llama-2-70B", 68.98e9, 80, 8, 128)
    # 4 x 80 GiB x 0.9 - 137.96e9 bytes of weights, / (2 x 80 x 8 x 128 x 2 = 327,680)
    assert kv_capacity_slots(seventy, four, 0.9) == int((4 * 80 * 2 ** 30 * 0.9 - 137.96e9)
                                                        // 327_680)
    with pytest.raises(ConfigError, match="raise serving.num_gpus"):
        kv_capacity_slots(seventy, A100, 0.9)


def test_unit_cost_counts_iterations():
    assert CostModel(LLAMA13, A100, "unit").iteration_seconds(10_000, 10 ** 6) == 1.0
