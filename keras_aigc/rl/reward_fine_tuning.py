"""`RewardFineTuning`: REINFORCE toward a reward, held near a frozen reference by KL."""

import keras
import numpy as np
import tensorflow as tf

from keras_aigc.distribute import global_mean, replica_info
from keras_aigc.distribute.keras_fixes import MultiWorkerFitMixin
from keras_aigc.models.one_optimizer_compile import OneOptimizerCompile

BASELINES = ("moving_average", "batch_mean")


def _new_seed():
    return int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))


def replica_uniform(seed, counter, local_batch, shape):
    """Uniform `[0, 1)` noise for this replica's slice of one global draw keyed on
    `(seed, counter)`: the global batch is the same whatever the number of replicas."""
    rid, n = replica_info()
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(counter, tf.int64)])
    u = tf.random.stateless_uniform(tf.concat([[local_batch * n], shape], 0), seed=key)
    start = tf.cast(rid, tf.int32) * local_batch
    return u[start:start + local_batch]


def _cross_replica_sum(x):
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


@keras.saving.register_keras_serializable(package="keras_aigc")
class RewardFineTuning(OneOptimizerCompile, MultiWorkerFitMixin, keras.Model):
    """Fine-tunes a generative model with an exact likelihood toward a reward.

    The RLHF recipe at small scale: each step samples a batch from the current policy
    (the wrapped model), scores it with `reward_fn`, computes the exact per-sample
    log-probabilities under the policy and under a frozen copy of the model as it was
    when wrapped, and ascends

        J = E_p[ r(x) - kl_weight * (log p(x) - log p_ref(x)) ]

    with the score-function (REINFORCE) estimator
    `mean_i (s_i - b_i) * grad log p(x_i)`, `s_i = r_i - kl_weight * (log p - log p_ref)`.
    The baseline `b_i` is a moving average of past batches' mean `s`
    (`"moving_average"`) or the mean of the *other* samples of the global batch
    (`"batch_mean"`, leave-one-out): both keep the estimator unbiased. The optimum is
    `p* ∝ p_ref exp(r / kl_weight)`, whose KL to the reference is at most
    `(max r - min r) / kl_weight` nats.

    Train it with `fit` on a dataset of batches of conditioning labels (conditional
    models) or of anything with a batch dimension (its values are ignored); see
    `dataset()`. The batch size is the number of samples per step. Noise is drawn from
    a stateless generator keyed on `(seed, step)` and sliced per replica, so a step under
    `MirroredStrategy` equals the same step on one device, and a run resumed by
    `BackupAndRestore` continues the same noise stream. Trackers: `reward` (mean),
    `kl` (nats per image, the sample estimate of KL(p || p_ref)), `entropy` (nats per
    image, `-E log p`) and `objective` (mean `s`).

    Args:
        model: the policy: a model with an exact likelihood, e.g. `PixelCNN`. It is
            trained in place.
        reward_fn: callable `images (B, H, W, C) in the model's value range -> (B,)`. A
            reward from `keras_aigc.rl.get(...)`, a Keras model, or a numpy function
            (called through `tf.numpy_function`).
        kl_weight: float. Weight of the KL to the reference (>= 0). Defaults to `0.1`.
        baseline: str. `"moving_average"` or `"batch_mean"`. Defaults to
            `"moving_average"`.
        baseline_decay: float. Decay of the moving-average baseline. Defaults to `0.9`.
        seed: int. Seed of the sampling noise; drawn at random when `None`.

    Example:

    ```python
    import keras_aigc as ka
    tuner = ka.rl.RewardFineTuning(pixelcnn, ka.rl.get("mean_intensity"), kl_weight=0.5)
    tuner.compile()
    tuner.fit(tuner.dataset(batch_size=64), epochs=1, steps_per_epoch=100)
    ```

    Reference:
        Williams, Simple statistical gradient-following algorithms for connectionist
        reinforcement learning, 1992. Ziegler et al., Fine-Tuning Language Models from
        Human Preferences, 2019.
    """

    def __init__(self, model, reward_fn, kl_weight=0.1, baseline="moving_average",
                 baseline_decay=0.9, seed=None, **kwargs):
        super().__init__(**kwargs)
        from keras_aigc.models.base import GenerativeModel

        if not (isinstance(model, GenerativeModel) and model.exact_likelihood):
            raise ValueError(f"RewardFineTuning needs a model with an exact likelihood "
                             f"and a noise-driven sampler (e.g. PixelCNN); got "
                             f"{type(model).__name__}.")
        if not callable(reward_fn):
            raise ValueError(f"reward_fn must be callable, got {type(reward_fn).__name__}.")
        if not float(kl_weight) >= 0:
            raise ValueError(f"kl_weight must be >= 0, got kl_weight={kl_weight!r}.")
        if baseline not in BASELINES:
            raise ValueError(f"Unrecognized baseline={baseline!r}. Supported baselines are: "
                             f"{list(BASELINES)}.")
        if not 0.0 <= float(baseline_decay) < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}.")
        self.policy = model
        self.reference = type(model).from_config(model.get_config())
        self.reference.set_weights(model.get_weights())
        self.reference.trainable = False
        self.reward_fn = reward_fn
        self.kl_weight = float(kl_weight)
        self.baseline = baseline
        self.baseline_decay = float(baseline_decay)
        self.seed = _new_seed() if seed is None else int(seed)
        self.num_classes = model.num_classes
        self.image_shape = tuple(model.image_shape)
        self.baseline_value = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                              name="baseline_value",
                                              aggregation="only_first_replica")
        self.baseline_count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                              name="baseline_count",
                                              aggregation="only_first_replica")
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("reward", "kl", "entropy", "objective")}
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.policy(inputs, training=training)

    def dataset(self, batch_size, labels=None):
        """An endless `tf.data.Dataset` of `batch_size` label batches (conditional
        models: `labels` cycled, default all classes) or of zeros (unconditional)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if self.num_classes is None:
            if labels is not None:
                raise ValueError("The policy is unconditional: dataset() takes no labels.")
            values = np.zeros(batch_size, np.int32)
        else:
            if labels is not None and np.ndim(labels):
                labels = np.resize(np.asarray(labels), batch_size)  # cycled
            values = self.policy.normalize_labels(labels, batch_size)
        return tf.data.Dataset.from_tensors(values).repeat()

    # ------------------------------------------------------------------ compile
    # compile / get_compile_config / compile_from_config: OneOptimizerCompile.
    compile_objective = "the KL-regularised reward"
    default_learning_rate = 1e-4

    def optimizer_variables(self):
        return self.policy.trainable_variables

    # ----------------------------------------------------------------- training
    def score_images(self, images):
        """`reward_fn(images)` as float32 `(B,)` inside the graph."""
        if getattr(self.reward_fn, "tf_compatible", False) or isinstance(
                self.reward_fn, keras.layers.Layer):
            reward = self.reward_fn(images)
        else:
            reward = tf.numpy_function(
                lambda x: np.asarray(self.reward_fn(x), np.float32).reshape(-1), [images],
                tf.float32)
        return tf.reshape(tf.cast(reward, tf.float32), [-1])

    def _onehot(self, data):
        if self.num_classes is None:
            return None
        if isinstance(data, (tuple, list)):
            data = data[0]
        return self.policy.onehot(data)

    def _local_batch(self, data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        return tf.shape(data)[0]

    def policy_gradient(self, data, step):
        """One step's estimate: `(grads, stats)` for the policy's trainable variables."""
        onehot = self._onehot(data)
        batch = self._local_batch(data)
        noise = replica_uniform(self.seed, step, batch, self.image_shape)
        images, _ = self.policy.sample_from_noise_tensor(noise, onehot)
        images = tf.stop_gradient(images)
        reward = self.score_images(images)
        log_ref = tf.stop_gradient(self.reference.log_prob(images, onehot))
        variables = self.policy.trainable_variables
        with tf.GradientTape() as tape:
            log_p = self.policy.log_prob(images, onehot)
            kl = tf.stop_gradient(log_p) - log_ref
            score = reward - self.kl_weight * kl
            total = _cross_replica_sum(tf.reduce_sum(score))
            count = _cross_replica_sum(tf.cast(batch, tf.float32))
            if self.baseline == "batch_mean":
                # leave-one-out: b_i does not depend on x_i, so E[(s_i - b_i) grad] is exact
                base = (total - score) / tf.maximum(count - 1.0, 1.0)
            else:
                base = tf.where(self.baseline_count > 0, self.baseline_value, 0.0)
            advantage = tf.stop_gradient(score - base)
            loss = global_mean(-advantage * log_p)
            scaled = self.optimizer.scale_loss(loss) if self.optimizer is not None else loss
        grads = tape.gradient(scaled, variables)
        stats = {"reward": reward, "kl": kl, "entropy": -tf.stop_gradient(log_p),
                 "objective": score, "batch_mean_score": total / count}
        return grads, stats

    def train_step(self, data):
        step = tf.cast(self.optimizer.iterations, tf.int64)
        grads, stats = self.policy_gradient(data, step)
        self.optimizer.apply_gradients(zip(grads, self.policy.trainable_variables,
                                           strict=True))
        if self.baseline == "moving_average":
            mean = stats["batch_mean_score"]
            d = self.baseline_decay
            self.baseline_value.assign(tf.where(self.baseline_count > 0,
                                                d * self.baseline_value + (1 - d) * mean, mean))
            self.baseline_count.assign_add(1.0)
        for name, tracker in self.trackers.items():
            tracker.update_state(stats[name])
        return self.step_logs({m.name: m.result() for m in self.metrics})

    def get_config(self):
        config = super().get_config()
        config.update({"model": keras.layers.serialize(self.policy),
                       "kl_weight": self.kl_weight, "baseline": self.baseline,
                       "baseline_decay": self.baseline_decay, "seed": self.seed})
        return config

    @classmethod
    def from_config(cls, config, reward_fn=None):
        config = dict(config)
        if reward_fn is None:
            raise ValueError("RewardFineTuning.from_config needs reward_fn=: rewards are "
                             "code, not configuration.")
        config["model"] = keras.layers.deserialize(config["model"])
        return cls(reward_fn=reward_fn, **config)
