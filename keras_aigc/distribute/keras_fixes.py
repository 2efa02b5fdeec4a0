"""Workarounds that make Keras 3 `fit` run under MultiWorkerMirroredStrategy.

All of them live here, each tied to the upstream issue it works around, and each is
pinned by `tests/distribute/test_keras_fixes.py`, which runs a real two-process cluster
with a plain `keras.Model` and fails when a Keras upgrade changes the broken behaviour
(then the workaround can go).

keras-team/keras#20585 ("fit fails under MultiWorkerMirroredStrategy"), as measured on
Keras 3.15 / TF 2.21 with two processes on 127.0.0.1:

1. `TensorFlowTrainer._maybe_symbolic_build` takes the first distributed batch and calls
   `strategy.reduce("MEAN", batch, axis=None)` eagerly, which fails under a multi-worker
   strategy ("Attempt to convert a value (PerReplica...)"). It runs on every `fit`, even
   when the model and optimizers are already built, because the reduce comes before the
   "is anything unbuilt?" check. Fix: build from this worker's first local replica batch
   (`strategy.experimental_local_results`), which has the per-replica shape and needs no
   cross-worker communication. When the model is already built (keras_aigc models build
   at construction) no batch is drawn at all, under any strategy: drawing one spends a
   reshuffle of the dataset, so the first epoch's order would depend on the strategy.
2. `reduce_per_replica` reduces the step logs with `strategy.reduce("MEAN", v, axis=0)`
   in multi-worker mode, which fails on scalar logs ("Invalid reduction dimension 0 for
   input with 0 dimensions"). Fix: the step returns rank-1 logs of shape `[1]`, so the
   axis-0 mean is the mean over replicas, and `train_function` / `test_function` squeeze
   them back to scalars so callbacks and `History` see plain numbers.
"""

import tensorflow as tf

from keras_aigc.distribute.strategy import is_multi_worker


def _first_local(value, strategy):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def _squeeze_logs(fn):
    def wrapped(*args, **kwargs):
        logs = fn(*args, **kwargs)
        if isinstance(logs, dict):
            return {k: (tf.reshape(v, []) if isinstance(v, tf.Tensor) and v.shape.rank == 1
                        and v.shape[0] == 1 else v) for k, v in logs.items()}
        return logs

    wrapped._keras_aigc_squeezed = True
    wrapped.__wrapped__ = fn
    return wrapped


class MultiWorkerFitMixin:
    """Mixed into keras_aigc models (before `keras.Model`) to apply the fixes above.

    A model's `train_step` / `test_step` returns `self.step_logs(logs)`; everything else
    is automatic. On any strategy other than a multi-worker one, nothing changes.
    """

    def _in_multi_worker_mode(self):
        strategy = getattr(self, "_distribute_strategy", None) or tf.distribute.get_strategy()
        return is_multi_worker(strategy)

    def _needs_data_to_build(self):
        """Keras' own test in `Trainer._symbolic_build` for needing a data batch."""
        compile_metrics = getattr(self, "_compile_metrics", None)
        compile_loss = getattr(self, "_compile_loss", None)
        return (not all(layer.built for layer in self._flatten_layers())
                or (compile_metrics is not None and not compile_metrics.built)
                or (compile_loss is not None and not compile_loss.built))

    # keras-team/keras#20585, part 1: no eager cross-worker reduce of a PerReplica batch.
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        if not self._needs_data_to_build():
            # Keras draws a batch here under any strategy, even for a built model. With a
            # `shuffle(reshuffle_each_iteration=True)` dataset that spends one shuffle
            # iteration, so epoch 1 would see the 2nd permutation under a strategy and
            # the 1st without one (and after a restart). A built model needs no batch.
            with strategy.scope():
                self._symbolic_build(iterator=None, data_batch=None)
            return None
        if not is_multi_worker(strategy):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tf.nest.map_structure(lambda v: _first_local(v, strategy), batch)
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    # keras-team/keras#20585, part 2: rank-1 logs so that reduce(..., axis=0) has an axis.
    def step_logs(self, logs):
        """Returns the step's logs in the form Keras can reduce across workers."""
        if not self._in_multi_worker_mode():
            return logs
        return {k: tf.reshape(tf.cast(v, tf.float32), [1]) for k, v in logs.items()}

    def make_train_function(self, force=False):
        # Keras returns None when it creates the function, so read the attribute.
        super().make_train_function(force=force)
        fn = self.train_function
        if self._in_multi_worker_mode() and not getattr(fn, "_keras_aigc_squeezed", False):
            self.train_function = fn = _squeeze_logs(fn)
        return fn

    def make_test_function(self, force=False):
        # Keras returns None when it creates the function, so read the attribute.
        super().make_test_function(force=force)
        fn = self.test_function
        if self._in_multi_worker_mode() and not getattr(fn, "_keras_aigc_squeezed", False):
            self.test_function = fn = _squeeze_logs(fn)
        return fn
