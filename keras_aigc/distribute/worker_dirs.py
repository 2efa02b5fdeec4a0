"""Where each task of a cluster writes: the chief to the real path, others to temp dirs.

Under a multi-worker strategy every task must run the same save ops (reading some
variables is a collective), but only the chief's files are kept. Other tasks write to a
per-task temporary directory next to the real one and remove it afterwards, as tf_keras'
`distributed_file_utils.write_dirpath` / `remove_temp_dirpath` do.
"""

import os
import shutil

from keras_aigc.distribute.cluster import is_chief


def _task_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and getattr(resolver, "task_type", None):
        return f"{resolver.task_type}_{resolver.task_id}"
    from keras_aigc.distribute.cluster import task_from_tf_config

    task_type, task_id, _ = task_from_tf_config()
    return f"{task_type}_{task_id}"


def chief_or_temp_dir(path, strategy=None):
    """`path` on the chief; `<parent>/.<name>.workertemp_<task>` on any other task."""
    if is_chief(strategy):
        return path
    path = os.path.normpath(path)
    parent, name = os.path.split(path)
    return os.path.join(parent, f".{name}.workertemp_{_task_id(strategy)}")


def cleanup_temp_dir(path, strategy=None):
    """Removes the directory `chief_or_temp_dir(path)` gave a non-chief task."""
    if is_chief(strategy):
        return
    shutil.rmtree(chief_or_temp_dir(path, strategy), ignore_errors=True)
