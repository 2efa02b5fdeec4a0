"""Which process of a cluster may write files."""

import json
import os


def task_from_tf_config(environ=None):
    """Returns `(task_type, task_id, cluster_dict)` from TF_CONFIG, or `(None, None, {})`."""
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG")
    if not raw:
        return None, None, {}
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {raw[:200]!r}") from e
    task = cfg.get("task") or {}
    return task.get("type"), task.get("index"), cfg.get("cluster") or {}


def is_chief(strategy=None):
    """True on the process that owns side effects (checkpoints, samples, exports).

    That is the `chief` task when the cluster has one, else `worker` 0, else (single
    process) always.
    """
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is not None and getattr(resolver, "task_type", None):
        task_type, task_id = resolver.task_type, resolver.task_id
        cluster = resolver.cluster_spec().as_dict()
    else:
        task_type, task_id, cluster = task_from_tf_config()
    if not task_type:
        return True
    if task_type == "chief":
        return True
    if task_type == "worker":
        return "chief" not in cluster and int(task_id or 0) == 0
    return False
