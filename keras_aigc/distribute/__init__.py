"""Distribution helpers: replica-aware sampling and averaging, chief detection."""

from keras_aigc.distribute.cluster import is_chief, task_from_tf_config
from keras_aigc.distribute.replica import global_mean, replica_info, replica_normal

__all__ = ["is_chief", "task_from_tf_config", "global_mean", "replica_info", "replica_normal"]
