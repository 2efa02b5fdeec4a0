import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aigc as ka
from tests.harness import assert_replicas_agree

ALL_2X2 = np.array(list(itertools.product([0.0, 1.0], repeat=4)), np.float32).reshape(16, 2, 2, 1)


def policy(seed=0):
    keras.utils.set_random_seed(seed)
    return ka.models.PixelCNN((2, 2, 1), filters=4, num_layers=2, first_kernel_size=3)


def exact(tuner):
    """Exact (KL(p || p_ref), E_p reward, E_ref reward) by enumerating the 16 images."""
    log_p = tuner.policy.log_likelihood(ALL_2X2)
    log_q = tuner.reference.log_likelihood(ALL_2X2)
    reward = np.asarray(tuner.score_images(tf.constant(ALL_2X2)))
    p, q = np.exp(log_p), np.exp(log_q)
    return float(np.sum(p * (log_p - log_q))), float(p @ reward), float(q @ reward)


def tune(kl_weight, steps=40, lr=0.05, baseline="moving_average"):
    tuner = ka.rl.RewardFineTuning(policy(), ka.rl.get("mean_intensity"), kl_weight=kl_weight,
                                   baseline=baseline, seed=3)
    tuner.compile(keras.optimizers.Adam(lr))
    hist = tuner.fit(tuner.dataset(64), epochs=1, steps_per_epoch=steps, verbose=0).history
    return tuner, hist


@pytest.mark.slow
@pytest.mark.parametrize("baseline", ["moving_average", "batch_mean"])
def test_toy_reward_rises_and_kl_stays_below_its_bound(baseline):
    kl_weight = 0.5
    tuner, hist = tune(kl_weight, baseline=baseline)
    assert set(hist) == {"reward", "kl", "entropy", "objective"}
    kl, reward_after, reward_before = exact(tuner)
    assert reward_after > reward_before + 0.05
    # the optimum p_ref * exp(r / kl_weight) has KL <= (max r - min r) / kl_weight
    assert 0.0 < kl <= 1.0 / kl_weight


@pytest.mark.slow
def test_huge_kl_weight_keeps_the_policy_in_place():
    small, _ = tune(0.05, steps=30)
    huge, _ = tune(1e4, steps=30)
    kl_small, _, _ = exact(small)
    kl_huge, _, _ = exact(huge)
    # Adam takes steps of about the learning rate whatever the gradient's scale, so the
    # policy still jitters around the reference; the KL term pulls it straight back.
    assert kl_huge < 1e-2
    assert kl_small > 20 * kl_huge


@pytest.mark.parametrize("baseline", ["batch_mean", "moving_average"])
def test_gradient_estimator_is_unbiased_on_an_enumerable_case(baseline):
    kl_weight = 0.7
    reward_table = np.random.default_rng(0).random(16).astype(np.float32)
    codes = tf.constant([8.0, 4.0, 2.0, 1.0])

    def reward_fn(images):
        code = tf.cast(tf.reduce_sum(tf.reshape(images, [-1, 4]) * codes, -1), tf.int32)
        return tf.gather(reward_table, code)

    reward_fn.tf_compatible = True
    base = policy(1)
    tuner = ka.rl.RewardFineTuning(base, reward_fn, kl_weight=kl_weight, baseline=baseline,
                                   seed=5)
    tuner.compile(keras.optimizers.SGD(0.0))
    # move the policy away from the reference so the KL term is active
    for v in base.trainable_variables:
        v.assign(v + tf.random.stateless_normal(v.shape, seed=[7, len(v.name)]) * 0.3)
    if baseline == "moving_average":
        tuner.baseline_value.assign(0.4)
        tuner.baseline_count.assign(1.0)
    variables = base.trainable_variables
    x, r = tf.constant(ALL_2X2), tf.constant(reward_table)
    log_q = tuner.reference.log_prob(x)
    with tf.GradientTape() as tape:
        log_p = base.log_prob(x)
        objective = tf.reduce_sum(tf.exp(log_p) * (r - kl_weight * (log_p - log_q)))
    exact_grads = tape.gradient(objective, variables)

    estimate = tf.function(lambda data, step: tuner.policy_gradient(data, step)[0])
    batch, rounds = 4096, 6
    sums = [tf.zeros_like(v) for v in variables]
    for k in range(rounds):
        grads = estimate(tf.zeros(batch, tf.int32), tf.constant(k, tf.int64))
        sums = [s + g for s, g in zip(sums, grads)]
    # the step minimises -J, so the estimate of grad J is minus the loss gradient
    est = np.concatenate([-(s / rounds).numpy().ravel() for s in sums])
    ref = np.concatenate([g.numpy().ravel() for g in exact_grads])
    rel = np.linalg.norm(est - ref) / np.linalg.norm(ref)
    cosine = est @ ref / (np.linalg.norm(est) * np.linalg.norm(ref))
    assert rel < 0.15 and cosine > 0.98, (rel, cosine)


def test_two_replicas_equal_one_for_a_fine_tuning_step():
    def make():
        keras.utils.set_random_seed(0)
        model = ka.models.PixelCNN((3, 3, 1), filters=4, num_layers=2, first_kernel_size=3)
        return ka.rl.RewardFineTuning(model, ka.rl.get("mean_intensity"), kl_weight=0.2,
                                      seed=11)

    ds = tf.data.Dataset.from_tensors(np.zeros(8, np.int32)).repeat()
    assert_replicas_agree(make, ds, steps=2, atol=1e-5)


def test_conditional_policy_and_numpy_reward():
    model = ka.models.PixelCNN((2, 2, 1), filters=4, num_layers=1, first_kernel_size=3,
                               num_classes=3)
    seen = []

    def numpy_reward(images):
        seen.append(images.shape)
        return images.reshape(len(images), -1).mean(1)

    tuner = ka.rl.RewardFineTuning(model, numpy_reward, kl_weight=0.1, seed=1)
    tuner.compile()
    hist = tuner.fit(tuner.dataset(6, labels=[2]), epochs=1, steps_per_epoch=2, verbose=0)
    assert seen and seen[0] == (6, 2, 2, 1)
    assert np.isfinite(hist.history["reward"][-1])


def test_backup_and_restore_resumes_the_same_run(tmp_path):
    def make():
        tuner = ka.rl.RewardFineTuning(policy(), ka.rl.get("mean_intensity"), kl_weight=0.2,
                                       seed=2)
        tuner.compile(keras.optimizers.Adam(0.05))
        return tuner

    straight = make()
    straight.fit(straight.dataset(16), epochs=3, steps_per_epoch=2, verbose=0)

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    first = make()
    with pytest.raises(RuntimeError, match="interrupted"):
        first.fit(first.dataset(16), epochs=3, steps_per_epoch=2, verbose=0,
                  callbacks=[backup, Stop()])
    resumed = make()
    resumed.fit(resumed.dataset(16), epochs=3, steps_per_epoch=2, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-6)


def test_reward_registry():
    assert {"mean_intensity", "classifier_prob"} <= set(ka.rl.REWARDS)
    r = ka.rl.get("mean_intensity", target=0.0)
    np.testing.assert_allclose(r(tf.constant(ALL_2X2[[0, 15]])).numpy(), [1.0, 0.0])

    @ka.rl.register_reward("test_constant_reward")
    def constant(value=1.0):
        return ka.rl.rewards.TensorReward(lambda x: tf.fill(tf.shape(x)[:1], value), "c")

    assert ka.rl.get("test_constant_reward", value=2.0)(tf.zeros((3, 2, 2, 1))).numpy().tolist() \
        == [2.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="already registered"):
        ka.rl.register_reward("mean_intensity")(constant)
    with pytest.raises(ValueError, match="Unrecognized reward='nope'"):
        ka.rl.get("nope")
    with pytest.raises(ValueError, match="Bad arguments for reward 'mean_intensity'"):
        ka.rl.get("mean_intensity", colour=1)


def test_classifier_prob_reward(tmp_path):
    from keras_aigc.metrics.features.domain_classifier import DomainClassifier

    clf = DomainClassifier((2, 2, 1), num_classes=3, filters=(2,), feature_dim=4)
    clf(tf.zeros((1, 2, 2, 1)))
    reward = ka.rl.get("classifier_prob", target=1, classifier=clf)
    x = tf.constant(ALL_2X2)
    lo, hi = clf.value_range
    expected = tf.nn.softmax(clf(x * (hi - lo) + lo))[:, 1]
    np.testing.assert_allclose(reward(x).numpy(), expected.numpy(), rtol=1e-6)
    path = str(tmp_path / "clf.keras")
    clf.save(path)
    np.testing.assert_allclose(ka.rl.get("classifier_prob", target=1, classifier=path)(x),
                               expected.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"target must be a class in \[0, 3\)"):
        ka.rl.get("classifier_prob", target=3, classifier=clf)
    with pytest.raises(ValueError, match="does not exist"):
        ka.rl.get("classifier_prob", target=0, classifier=str(tmp_path / "missing.keras"))


def test_bad_arguments_are_named():
    model = policy()
    reward = ka.rl.get("mean_intensity")
    with pytest.raises(ValueError, match="baseline='median'"):
        ka.rl.RewardFineTuning(model, reward, baseline="median")
    with pytest.raises(ValueError, match="kl_weight must be >= 0"):
        ka.rl.RewardFineTuning(model, reward, kl_weight=-1)
    with pytest.raises(ValueError, match="reward_fn must be callable"):
        ka.rl.RewardFineTuning(model, 3)
    with pytest.raises(ValueError, match="exact likelihood"):
        ka.rl.RewardFineTuning(keras.Sequential([keras.layers.Dense(1)]), reward)
    with pytest.raises(ValueError, match="unconditional: dataset"):
        ka.rl.RewardFineTuning(model, reward).dataset(4, labels=[1])
