"""`mixed_precision: auto`: the hardware detection, with injected CPU flags and GPUs."""

import pytest

from keras_aigc.utils import mixed_precision as mp

# Real flag lines (abridged to the relevant features).
SAPPHIRE_RAPIDS = {"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile",
                   "amx_int8"}
COOPER_LAKE = {"avx2", "avx512f", "avx512_bf16"}
ZEN3_EPYC = {"avx2", "fma", "f16c", "vaes"}  # this project's CI-class machine
SKYLAKE = {"avx2", "avx512f", "avx512bw", "avx512vl"}


@pytest.mark.parametrize("flags, policy, why", [
    (SAPPHIRE_RAPIDS, "mixed_bfloat16", "amx_bf16, avx512_bf16"),
    (COOPER_LAKE, "mixed_bfloat16", "avx512_bf16"),
    ({"amx_bf16"}, "mixed_bfloat16", "amx_bf16"),
    (ZEN3_EPYC, "float32", "none of amx_bf16, avx512_bf16"),
    (SKYLAKE, "float32", "none of"),
    (set(), "float32", "none of"),
])
def test_cpu_flags_decide_without_gpu_or_tpu(flags, policy, why):
    got, reason = mp.auto_policy(flags=flags, gpu_capabilities=[], tpu=False)
    assert got == policy
    assert why in reason


@pytest.mark.parametrize("caps, policy, why", [
    ([(8, 0)], "mixed_bfloat16", "8.0 has bf16"),
    ([(9, 0), (8, 6)], "mixed_bfloat16", "8.6"),
    ([(7, 5)], "float32", "7.5 < 8.0"),
    ([(8, 0), (7, 0)], "float32", "7.0 < 8.0"),  # the oldest GPU decides
])
def test_gpu_compute_capability_decides_over_the_cpu(caps, policy, why):
    # A CPU with AMX does not matter when a GPU does the work.
    got, reason = mp.auto_policy(flags=SAPPHIRE_RAPIDS, gpu_capabilities=caps, tpu=False)
    assert got == policy and why in reason


def test_tpu_is_always_bfloat16():
    assert mp.auto_policy(flags=set(), gpu_capabilities=[], tpu=True)[0] == "mixed_bfloat16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                    "flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n\nprocessor\t: 1\n")
    assert mp.cpu_flags(str(info)) == {"fpu", "sse2", "avx2", "amx_bf16", "amx_tile"}
    assert mp.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_this_machine(capsys):
    """Detection on the real machine agrees with its /proc/cpuinfo (no GPU or TPU here)."""
    policy, reason = mp.resolve_policy("auto")
    has_bf16 = bool(set(mp.BF16_CPU_FLAGS) & mp.cpu_flags())
    assert policy == ("mixed_bfloat16" if has_bf16 else "float32"), reason
    assert mp.resolve_policy("mixed_float16") == ("mixed_float16", None)
    assert mp.resolve_policy(None) == (None, None)


def test_cli_auto_sets_the_detected_policy(tmp_path, capsys):
    import keras

    from keras_aigc.cli import config as config_lib
    from keras_aigc.cli import train
    from tests.cli.test_train_strategy import _with

    cfg = _with(strategy="default", mixed_precision="auto", backup_freq=None)
    config_lib.validate(cfg)
    expected, _ = mp.auto_policy()
    try:
        model, _ = train.run(cfg, str(tmp_path / "run"))
        assert model.generator.layers[1].compute_dtype == (
            "bfloat16" if expected == "mixed_bfloat16" else "float32")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert f"mixed_precision auto: {expected} (" in capsys.readouterr().out
