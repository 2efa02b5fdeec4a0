"""`mixed_precision: auto`: bfloat16 where the hardware computes it natively, else float32."""

import os

# /proc/cpuinfo flags of x86 CPUs with native bf16 arithmetic that oneDNN uses for matmuls
# and convolutions: AMX tiles (Sapphire Rapids and later) and AVX-512 BF16 (Cooper Lake,
# Zen 4). Without them TensorFlow emulates bf16 and mixed_bfloat16 is slower than float32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# NVIDIA GPUs with bf16 tensor cores: Ampere (compute capability 8.0) and later.
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)
AUTO_POLICIES = ("mixed_bfloat16", "float32")


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU feature flags the kernel reports (an empty set where it reports none)."""
    if not os.path.exists(path):
        return frozenset()
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return frozenset(value.split())
    return frozenset()


def gpu_compute_capabilities():
    """`(major, minor)` of every visible GPU (TensorFlow's device details)."""
    import tensorflow as tf

    caps = []
    for gpu in tf.config.list_physical_devices("GPU"):
        cap = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if cap:
            caps.append(tuple(int(c) for c in cap))
    return caps


def has_tpu(strategy=None):
    import tensorflow as tf

    if strategy is not None and isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    return bool(tf.config.list_logical_devices("TPU"))


def auto_policy(flags=None, gpu_capabilities=None, tpu=None, strategy=None):
    """Picks the dtype policy for `mixed_precision: auto` and says why.

    `mixed_bfloat16` on a TPU, on GPUs that all have bf16 tensor cores (compute
    capability >= 8.0), or, with no GPU, on a CPU that reports AMX BF16 or AVX512_BF16;
    `float32` everywhere else.

    Args:
        flags: set of str or None. CPU flags; read from /proc/cpuinfo when None.
        gpu_capabilities: list of `(major, minor)` or None. Queried from TensorFlow when
            None.
        tpu: bool or None. Whether a TPU is in use; detected when None.
        strategy: the `tf.distribute` strategy in use (a TPUStrategy means TPU).

    Returns:
        `(policy, reason)`: the Keras dtype policy name and a sentence for the log.

    Example:

    ```python
    policy, why = auto_policy(flags={"avx2", "fma"}, gpu_capabilities=[], tpu=False)
    assert policy == "float32"
    ```
    """
    if tpu is None:
        tpu = has_tpu(strategy)
    if tpu:
        return "mixed_bfloat16", "TPU: bfloat16 is its native matmul type"
    if gpu_capabilities is None:
        gpu_capabilities = gpu_compute_capabilities()
    if gpu_capabilities:
        oldest = min(gpu_capabilities)
        if oldest >= BF16_MIN_COMPUTE_CAPABILITY:
            return "mixed_bfloat16", (f"GPU compute capability {oldest[0]}.{oldest[1]} has "
                                      "bf16 tensor cores")
        return "float32", (f"GPU compute capability {oldest[0]}.{oldest[1]} < 8.0 has no "
                           "bf16 tensor cores")
    flags = cpu_flags() if flags is None else frozenset(flags)
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    if found:
        return "mixed_bfloat16", f"CPU reports {', '.join(found)}"
    return "float32", f"CPU reports none of {', '.join(BF16_CPU_FLAGS)} (bf16 is emulated)"


def resolve_policy(value, strategy=None, **detect):
    """A config's `mixed_precision` value -> `(policy or None, reason or None)`.

    `"auto"` goes through `auto_policy`; a policy name or None passes through.
    """
    if value == "auto":
        return auto_policy(strategy=strategy, **detect)
    return value, None
