import pytest
from hydra import compose, initialize_config_module

from kvsim.allocators import REGISTRY
from kvsim.config import compose as kvsim_compose
from kvsim.config import group_options, spec_from_config
from kvsim.errors import ConfigError


def test_the_default_config_composes_to_every_model_on_mixed_sizes():
    with initialize_config_module("kvsim.conf", version_base="1.3"):
        cfg = compose("config")
    spec = spec_from_config(cfg)
    assert spec.allocators == tuple(REGISTRY)
    assert spec.workload.sizes == (1, 32) and spec.workload.steps == 10_000
    assert spec.pool.capacity == 4096 and spec.pool.block_size == 16


@pytest.mark.parametrize("option", group_options("workload"))
def test_every_workload_option_composes(option):
    spec = spec_from_config(kvsim_compose([f"workload={option}"]))
    assert spec.kind == ("synthetic" if option in ("short", "long", "mixed", "synthetic")
                         else "serving")
    assert len(spec.workload.generate()) > 0


@pytest.mark.parametrize("group", ["model", "hardware"])
def test_every_model_and_hardware_preset_composes(group):
    for option in group_options(group):
        overrides = ["workload=serving", f"{group}={option}"]
        if option == "llama2_70b":
            overrides.append("serving.num_gpus=4")
        spec = spec_from_config(kvsim_compose(overrides))
        assert spec.pool.capacity > 0


@pytest.mark.parametrize("option", group_options("allocator"))
def test_every_allocator_option_composes(option):
    spec = spec_from_config(kvsim_compose([f"allocator={option}"]))
    assert spec.allocators == (tuple(REGISTRY) if option == "all" else (option,))


def test_every_registered_model_has_a_config_file():
    assert set(REGISTRY) <= set(group_options("allocator"))


@pytest.mark.parametrize(("override", "key", "allowed"), [
    ("compression_ratio=0", "compression_ratio", "(0, 1)"),
    ("compression_ratio=1.0", "compression_ratio", "(0, 1)"),
    ("pressure_threshold=0", "pressure_threshold", "(0, 1]"),
    ("pressure_threshold=1.2", "pressure_threshold", "(0, 1]"),
    ("block_size=0", "block_size", ">= 1"),
    ("capacity=-5", "capacity", ">= 1"),
    ("capacity=8", "capacity", "at least one block"),
    ("workload.lifetime_range=[50,5]", "workload.lifetime_range", "low <= high"),
    ("allocator=buddy", "allocator", "paged_compressed"),
    ("workload=poisson", "workload", "mixed"),
    ("compresion_ratio=0.3", "compresion_ratio", "did you mean compression_ratio"),
    ("workload.stepz=10", "workload.stepz", "did you mean workload.steps"),
    ("capacity=lots", "capacity", "an integer"),
    ("placement=worst_fit", "placement", "first_fit, best_fit"),
    ("figure_format=gif", "figure_format", "png, pdf, svg"),
    ("record_every=0", "record_every", ">= 1"),
])
def test_a_bad_value_names_the_key_the_value_and_what_is_allowed(override, key, allowed):
    with pytest.raises(ConfigError) as info:
        spec_from_config(kvsim_compose([override]))
    error = info.value
    assert error.key == key
    assert allowed in error.allowed
    assert "\n" not in str(error)
    assert str(error).startswith(f"{key}=")
