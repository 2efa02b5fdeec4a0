"""`get_strategy(spec)`: one string picks a `tf.distribute` strategy.

Specs:

- `"default"`: TensorFlow's default (no-op) strategy.
- `"one_device[:DEVICE]"`: `OneDeviceStrategy`; first GPU, else `/cpu:0`.
- `"mirrored[:DEV1,DEV2,...]"`: `MirroredStrategy`; all GPUs, else all logical CPUs.
- `"multi_worker"`: `MultiWorkerMirroredStrategy` from `TF_CONFIG` (or `cluster_resolver=`),
  with a bounded wait for the peers.
- `"tpu[:ADDRESS]"`: `TPUStrategy` through a `TPUClusterResolver`.
- `"auto"`: TPU when one is visible, multi_worker when TF_CONFIG lists more than one task,
  mirrored when there is more than one GPU, default otherwise.
"""

import contextlib
import json
import os

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
TASK_TYPES = ("chief", "worker", "ps", "evaluator")

# Seconds a multi-worker process waits for all its peers at start-up before failing.
DEFAULT_CLUSTER_TIMEOUT = 120.0


def parse_spec(spec):
    """Splits `"name[:argument]"`; returns `(name, argument or None)`.

    Raises:
        ValueError: for a non-string spec or an unknown name.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"Unrecognized strategy={spec!r}. Supported strategies are: {list(STRATEGIES)} "
            "(with an optional ':ARG' for one_device, mirrored and tpu)."
        )
    name, sep, arg = spec.strip().partition(":")
    name = name.strip().lower().replace("-", "_")
    if name not in STRATEGIES:
        raise ValueError(
            f"Unrecognized strategy={spec!r}. Supported strategies are: {list(STRATEGIES)} "
            "(with an optional ':ARG' for one_device, mirrored and tpu)."
        )
    arg = arg.strip() if sep else None
    if sep and not arg:
        raise ValueError(f"strategy={spec!r} has an empty argument after ':'.")
    if arg is not None and name in ("auto", "default", "multi_worker"):
        raise ValueError(
            f"strategy={spec!r}: {name!r} takes no argument; only one_device, mirrored and "
            "tpu accept ':ARG'."
        )
    return name, arg


def _json_object(raw):
    """TF_CONFIG's text as a dict, or a ValueError quoting it."""
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {raw[:200]!r}") from e
    if isinstance(cfg, dict):
        return cfg
    raise ValueError(f"TF_CONFIG must be a JSON object, got {type(cfg).__name__}: {raw[:200]!r}")


def parse_tf_config(environ=None):
    """Reads and checks TF_CONFIG. Returns the dict, or `None` when unset.

    Raises:
        ValueError: naming what is wrong (bad JSON, no cluster, a task not in the cluster,
            a malformed address).
    """
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG")
    if raw is None or not raw.strip():
        return None
    cfg = _json_object(raw)
    cluster = cfg.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError(
            "TF_CONFIG['cluster'] must be a non-empty object such as "
            '{"worker": ["host:port", ...]}, got ' f"{cluster!r}."
        )
    for job, addresses in cluster.items():
        if job not in TASK_TYPES:
            raise ValueError(f"TF_CONFIG['cluster'] has unknown job {job!r}; allowed jobs "
                             f"are {list(TASK_TYPES)}.")
        if not isinstance(addresses, list) or not addresses:
            raise ValueError(f"TF_CONFIG['cluster'][{job!r}] must be a non-empty list of "
                             f"'host:port' strings, got {addresses!r}.")
        for a in addresses:
            host, _, port = str(a).rpartition(":")
            if not isinstance(a, str) or not host or not port.isdigit():
                raise ValueError(f"TF_CONFIG['cluster'][{job!r}] holds {a!r}, which is not "
                                 "a 'host:port' address.")
    task = cfg.get("task")
    if not isinstance(task, dict):
        raise ValueError('TF_CONFIG[\'task\'] must be an object such as {"type": "worker", '
                         f'"index": 0}}, got {task!r}.')
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        raise ValueError(f"TF_CONFIG['task']['type']={task_type!r} is not a job of the "
                         f"cluster {sorted(cluster)}.")
    if isinstance(index, bool) or not isinstance(index, int) or not (
            0 <= index < len(cluster[task_type])):
        raise ValueError(f"TF_CONFIG['task']['index']={index!r} is out of range for job "
                         f"{task_type!r} with {len(cluster[task_type])} task(s).")
    return cfg


def num_tasks(tf_config):
    """Number of chief and worker tasks in a parsed TF_CONFIG (0 when `None`)."""
    if not tf_config:
        return 0
    cluster = tf_config["cluster"]
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def _tpu_visible():
    import tensorflow as tf

    # No network probe (the GCE metadata server is unreachable off Cloud): a local TPU VM
    # shows TPU devices, a remote Cloud TPU is named by TPU_NAME / COLAB_TPU_ADDR.
    return bool(tf.config.list_physical_devices("TPU") or os.environ.get("TPU_NAME")
                or os.environ.get("COLAB_TPU_ADDR"))


def resolve_auto(environ=None):
    """The concrete spec that `"auto"` picks on this machine."""
    if _tpu_visible():
        return "tpu"
    if num_tasks(parse_tf_config(environ)) > 1:
        return "multi_worker"
    import tensorflow as tf

    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


_MIRRORED = {}


def _canonical(device):
    """`/cpu:0`, `CPU:0` and `/job:localhost/replica:0/task:0/device:CPU:0` alike."""
    return device.split("device:")[-1].strip("/").upper()


def _normalize_device(device):
    device = device.strip()
    if not device.startswith("/"):
        device = "/" + device
    return device


def _check_devices(devices, spec):
    import tensorflow as tf

    names = [d.name for d in tf.config.list_logical_devices()]
    known = {_canonical(n) for n in names}
    missing = [d for d in devices if _canonical(d) not in known]
    if missing:
        raise ValueError(
            f"strategy={spec!r}: unknown device(s) {missing}. Devices on this machine: "
            f"{sorted(names)}."
        )


@contextlib.contextmanager
def _cluster_wait(cluster_resolver, timeout):
    """Bounds MultiWorkerMirroredStrategy's wait for its peers to `timeout` seconds.

    On TF 2.21 the strategy starts TF's coordination service, whose registration waits
    for every task with no bound it exposes; it only configures the service when none is
    configured yet, so we configure it first, as it would, plus
    `cluster_register_timeout_in_ms`. The older Python health-check barrier
    (`_check_health_initial_timeout`, used when there is no coordination service) gets
    the same bound.
    """
    from tensorflow.python.distribute import collective_all_reduce_strategy as cars
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.distribute.collective_all_reduce_strategy import (
        coordination_config_pb2,
    )
    from tensorflow.python.eager import context

    spec = cluster_resolver.cluster_spec()
    ctx = context.context()
    if ctx.coordination_service is None and cluster_resolver.task_type in ("chief",
                                                                            "worker"):
        jobs = [coordination_config_pb2.CoordinatedJob(name=j, num_tasks=spec.num_tasks(j))
                for j in ("chief", "worker") if j in spec.jobs]
        ctx.configure_coordination_service(
            service_type="standalone",
            service_leader=multi_worker_util.coordination_leader(spec),
            coordinated_jobs=jobs,
            cluster_register_timeout_in_ms=int(timeout * 1000),
        )
        # Without the barrier, registration returns at once and the later wait for all
        # tasks ignores the timeout.
        ctx.coordination_service.cluster_register_with_barrier = True
    ext = cars.CollectiveAllReduceExtended
    saved = ext._check_health_initial_timeout
    ext._check_health_initial_timeout = max(1, int(round(timeout)))
    try:
        yield
    finally:
        ext._check_health_initial_timeout = saved


def _multi_worker(cluster_resolver, timeout, collective_timeout, implementation):
    import tensorflow as tf

    if cluster_resolver is None:
        cfg = parse_tf_config()
        if cfg is None:
            raise ValueError(
                "strategy='multi_worker' needs TF_CONFIG (a JSON cluster spec with this "
                "process's task) or a cluster_resolver=; TF_CONFIG is not set."
            )
        cluster_resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    impls = {
        "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
        "ring": tf.distribute.experimental.CommunicationImplementation.RING,
        "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
    }
    if implementation not in impls:
        raise ValueError(f"Unrecognized implementation={implementation!r}. Supported: "
                         f"{list(impls)}.")
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=collective_timeout, implementation=impls[implementation])
    with _cluster_wait(cluster_resolver, timeout):
        try:
            return tf.distribute.MultiWorkerMirroredStrategy(
                cluster_resolver=cluster_resolver, communication_options=options)
        except (RuntimeError, tf.errors.DeadlineExceededError,
                tf.errors.UnavailableError) as e:
            text = str(e)
            if ("Timeout waiting for the cluster" in text or "DEADLINE_EXCEEDED" in text
                    or isinstance(e, (tf.errors.DeadlineExceededError,
                                      tf.errors.UnavailableError))
                    or "timed out" in text.lower() or "Deadline" in text):
                spec = cluster_resolver.cluster_spec().as_dict()
                raise TimeoutError(
                    f"strategy='multi_worker': not all peers of the cluster {spec} came up "
                    f"within timeout={timeout} s. Start every task of TF_CONFIG, check the "
                    f"addresses and ports, or raise the timeout. ({type(e).__name__}: "
                    f"{text.splitlines()[0][:300] if text else ''})"
                ) from e
            raise


def _tpu(address):
    import tensorflow as tf

    if address is None and not _tpu_visible():
        raise ValueError(
            "strategy='tpu': no TPU on this machine (no TPU devices, TPU_NAME and "
            "COLAB_TPU_ADDR unset). Give the TPU name or address as 'tpu:NAME' or "
            "'tpu:grpc://HOST:PORT', or run on a TPU VM.")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=address if address is not None else "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, OSError, tf.errors.OpError) as e:
        raise ValueError(
            f"strategy='tpu{':' + address if address else ''}': no TPU could be reached "
            f"({type(e).__name__}: {e}). Give the TPU name or grpc:// address, or run on a "
            "TPU VM."
        ) from e
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(spec="auto", *, cluster_resolver=None, timeout=DEFAULT_CLUSTER_TIMEOUT,
                 collective_timeout=None, implementation="auto"):
    """Returns the `tf.distribute.Strategy` named by `spec`.

    Create it first thing in the program (before other TensorFlow ops), then build the
    model and its optimizers inside `strategy.scope()`.

    Args:
        spec: str. `"auto"`, `"default"`, `"one_device[:DEVICE]"`,
            `"mirrored[:DEV1,DEV2]"`, `"multi_worker"` or `"tpu[:ADDRESS]"`.
            Defaults to `"auto"`.
        cluster_resolver: `tf.distribute.cluster_resolver.ClusterResolver`. For
            `multi_worker` instead of TF_CONFIG.
        timeout: float. Seconds a multi-worker task waits for all its peers at start-up
            before raising `TimeoutError`. Defaults to `120`.
        collective_timeout: float or None. Per-collective timeout in seconds for
            multi-worker all-reduces (None: wait; the cluster health check still aborts
            collectives when a peer dies). Defaults to `None`.
        implementation: str. Multi-worker collectives: `"auto"`, `"ring"` or `"nccl"`.

    Example:

    ```python
    strategy = keras_aigc.distribute.get_strategy("mirrored")
    with strategy.scope():
        gan = keras_aigc.models.DCGAN()
        gan.compile()
    ```

    Raises:
        ValueError: unknown spec, unknown device, malformed TF_CONFIG, unreachable TPU.
        TimeoutError: a multi-worker peer did not come up within `timeout`.
    """
    name, arg = parse_spec(spec)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    if name == "auto":
        if cluster_resolver is not None:
            name = "multi_worker"
        else:
            name = resolve_auto()

    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        if arg is None:
            arg = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        device = _normalize_device(arg)
        _check_devices([device], spec)
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        if arg is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        else:
            devices = [_normalize_device(d) for d in arg.split(",") if d.strip()]
            _check_devices(devices, spec)
        # One MirroredStrategy per device set and process: two of them running
        # collectives in one process reuse collective instance keys and abort each
        # other ("Shape mismatch in the collective instance ..."), measured on TF 2.21.
        key = tuple(sorted(_canonical(d) for d in devices))
        if key not in _MIRRORED:
            _MIRRORED[key] = tf.distribute.MirroredStrategy(devices)
        return _MIRRORED[key]
    if name == "multi_worker":
        return _multi_worker(cluster_resolver, timeout, collective_timeout, implementation)
    return _tpu(arg)


def describe(strategy):
    """A one-line description: class, replicas, and task for multi-worker strategies."""
    text = f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)"
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and getattr(resolver, "task_type", None):
        text += f", task {resolver.task_type}:{resolver.task_id}"
    return text


def is_multi_worker(strategy):
    """True for a MultiWorkerMirroredStrategy that spans more than one process."""
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())
