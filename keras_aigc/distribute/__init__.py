"""Distribution: strategy selection, replica-aware helpers, chief detection, Keras fixes."""

from keras_aigc.distribute.cluster import is_chief, task_from_tf_config
from keras_aigc.distribute.keras_fixes import MultiWorkerFitMixin
from keras_aigc.distribute.replica import global_mean, replica_info, replica_normal
from keras_aigc.distribute.strategy import (
    STRATEGIES,
    describe,
    get_strategy,
    is_multi_worker,
    parse_spec,
    parse_tf_config,
    resolve_auto,
)
from keras_aigc.distribute.worker_dirs import chief_or_temp_dir, cleanup_temp_dir

__all__ = ["STRATEGIES", "MultiWorkerFitMixin", "chief_or_temp_dir", "cleanup_temp_dir",
           "describe", "get_strategy", "global_mean", "is_chief", "is_multi_worker",
           "parse_spec", "parse_tf_config", "replica_info", "replica_normal", "resolve_auto",
           "task_from_tf_config"]
