import itertools

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

import keras_aigc as ka
from keras_aigc.models.autoregressive import pixel_distributions as pd
from tests.harness import (
    assert_config_round_trip,
    assert_keras_round_trip,
    assert_replicas_agree,
)

ALL_2X2 = np.array(list(itertools.product([0.0, 1.0], repeat=4)), np.float32).reshape(16, 2, 2, 1)


def tiny(shape=(2, 2, 1), distribution="bernoulli", **kwargs):
    kwargs.setdefault("filters", 6 if shape[-1] == 3 else 4)
    kwargs.setdefault("num_layers", 2)
    kwargs.setdefault("first_kernel_size", 3)
    return ka.models.PixelCNN(shape, distribution=distribution, **kwargs)


def abs_jacobian(model, shape, seeds=4, num_params=None):
    """|d params / d (network-space) input| summed over `seeds` random inputs,
    `(H, W, P, H, W, C)`: one backward pass over a batch with one row per output entry.
    Summing over inputs keeps a path a ReLU happens to switch off at one input."""
    h, w, _ = shape
    p = num_params or model.num_params
    num = h * w * p
    x = tf.repeat(tf.random.stateless_normal((seeds, 1, *shape), seed=[0, 1]), num, axis=1)
    x = tf.reshape(x, (seeds * num, *shape))
    select = tf.reshape(tf.eye(num), (num, h, w, p))
    select = tf.tile(tf.pad(select, [[0, 0]] * 3 + [[0, model.num_params - p]]), [seeds, 1, 1, 1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        params = model.horizontal(x, model.vertical(x, None))
        picked = tf.reduce_sum(params * select)
    grad = np.abs(tape.gradient(picked, x).numpy()).reshape(seeds, h, w, p, *shape)
    return grad.sum(0)


@pytest.mark.parametrize("distribution,shape", [
    ("bernoulli", (5, 4, 1)), ("categorical", (3, 4, 3)), ("logistic_mixture", (3, 4, 3)),
    ("bernoulli", (4, 3, 2))])
def test_masking_is_exact_and_has_no_blind_spot(distribution, shape):
    h, w, c = shape
    model = tiny(shape, distribution, filters=12, first_kernel_size=7, num_layers=2)
    # the first 2 values of each channel's categorical are enough to show the pattern
    jac = abs_jacobian(model, shape, num_params=min(model.num_params, 2 * c))
    groups = pd.channel_groups(distribution, c)
    num_params = jac.shape[2]
    for i, j in itertools.product(range(h), range(w)):
        for (a, b) in itertools.product(range(h), range(w)):
            dep = jac[i, j, :, a, b, :]  # (P, C)
            if (a, b) > (i, j):
                assert np.all(dep == 0.0), f"output ({i},{j}) sees later pixel ({a},{b})"
            elif (a, b) < (i, j):
                # no blind spot: every earlier pixel reaches every output
                assert np.all(dep.sum(axis=1) > 0), f"({i},{j}) blind to ({a},{b})"
            else:
                for p, ch in itertools.product(range(num_params), range(c)):
                    sees = dep[p, ch] != 0.0
                    if groups == 1:
                        assert not sees, "output sees its own pixel"
                    elif ch >= p % groups:
                        assert not sees, f"param {p} (channel {p % groups}) sees channel {ch}"
                    else:
                        assert sees, f"param {p} (channel {p % groups}) blind to channel {ch}"


def test_mixture_orders_channels_inside_a_pixel():
    """The mixture's channel c conditional does not move when later channels change."""
    model = tiny((2, 2, 3), "logistic_mixture", num_mixtures=3)
    params = tf.random.stateless_normal((4, model.num_params), seed=[3, 4])
    x = tf.constant(np.random.default_rng(0).integers(0, 256, (4, 3)) / 255.0, tf.float32)
    for c in range(3):
        ref = pd.channel_log_pmf("logistic_mixture", params, x, tf.constant(c), 3, 3)
        changed = tf.concat([x[:, :c], 1.0 - x[:, c:]], axis=1)
        got = pd.channel_log_pmf("logistic_mixture", params, changed, tf.constant(c), 3, 3)
        np.testing.assert_array_equal(got.numpy(), ref.numpy())
        if c:  # but it does depend on earlier ones (the coupling)
            earlier = tf.concat([1.0 - x[:, :c], x[:, c:]], axis=1)
            moved = pd.channel_log_pmf("logistic_mixture", params, earlier, tf.constant(c), 3, 3)
            assert not np.allclose(moved.numpy(), ref.numpy())
        np.testing.assert_allclose(np.exp(ref.numpy()).sum(-1), 1.0, atol=1e-5)


def fit_2x2(model, steps=30):
    rng = np.random.default_rng(0)
    # A skewed distribution: mostly the first image, some of a few others.
    idx = rng.choice(16, size=256, p=np.array([8, 1, 0, 0, 2, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 1])
                     / 16)
    x = ALL_2X2[idx]
    if model.num_classes:
        ds = tf.data.Dataset.from_tensor_slices((x, idx % model.num_classes))
    else:
        ds = tf.data.Dataset.from_tensor_slices(x)
    model.compile(optimizer=ka_adam())
    model.fit(ds.batch(64).repeat(), epochs=1, steps_per_epoch=steps, verbose=0)
    return model


def ka_adam():
    import keras

    return keras.optimizers.Adam(0.05)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_probabilities_of_all_2x2_images_sum_to_one(num_classes):
    model = tiny(num_classes=num_classes)
    labels_list = [None] if num_classes is None else list(range(num_classes))
    for trained in (False, True):
        if trained:
            fit_2x2(model)
        for label in labels_list:
            labels = None if label is None else np.full(16, label)
            total = np.exp(model.log_likelihood(ALL_2X2, labels=labels)).sum()
            assert abs(total - 1.0) < 1e-5, (trained, label, total)
    # training moved the model away from uniform
    assert np.exp(model.log_likelihood(ALL_2X2[:1], labels=labels_list[0] and [0]))[0] > 0.2


@pytest.mark.parametrize("distribution,shape", [
    ("bernoulli", (3, 3, 1)), ("categorical", (2, 3, 3)), ("logistic_mixture", (2, 3, 3))])
def test_log_likelihood_equals_sampler_conditionals(distribution, shape):
    model = tiny(shape, distribution, num_classes=2)
    x = model.generate(3, seed=1, labels=[0, 1, 1])
    if distribution != "bernoulli":  # also images the model did not sample
        x = np.concatenate([x, np.random.default_rng(2).integers(0, 256, (2, *shape)) / 255.0])
    labels = np.arange(len(x)) % 2
    ll = model.log_likelihood(x, labels=labels)
    np.testing.assert_allclose(model.sampler_log_prob(x, labels=labels), ll, rtol=1e-5,
                               atol=1e-4)
    # and the sampler's log p of its own draws is the likelihood of what it drew
    fn = model._function("sample_with_log_prob")
    noise = model.noise(4, seed=5)
    images, logp = fn(tf.constant(noise), tf.constant([0, 1, 0, 1], tf.int32))
    np.testing.assert_allclose(logp.numpy(), model.log_likelihood(images.numpy(),
                                                                  labels=[0, 1, 0, 1]),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_sampling_draws_from_the_model():
    model = fit_2x2(tiny(), steps=20)
    probs = np.exp(model.log_likelihood(ALL_2X2))
    n = 4000
    samples = model.generate(n, seed=0, batch_size=1000)
    codes = (samples.reshape(n, 4) * np.array([8, 4, 2, 1])).sum(1).astype(int)
    counts = np.bincount(codes, minlength=16)
    keep = probs * n >= 5  # chi-square needs expected counts >= 5; pool the rest
    observed = np.append(counts[keep], counts[~keep].sum())
    expected = np.append(probs[keep], probs[~keep].sum()) * n
    _, p_value = scipy.stats.chisquare(observed, expected * observed.sum() / expected.sum())
    assert p_value > 0.01, (counts, probs * n)


@pytest.mark.slow
@pytest.mark.parametrize("distribution,shape", [
    ("bernoulli", (4, 4, 1)), ("categorical", (3, 3, 2)), ("logistic_mixture", (3, 3, 3))])
def test_fast_sampler_equals_naive_and_noise_fixes_the_image(distribution, shape):
    model = tiny(shape, distribution)
    noise = model.noise(5, seed=3)
    fast = model.sample_from_noise(noise)
    np.testing.assert_array_equal(fast, model.sample_from_noise(noise, fast=False))
    np.testing.assert_array_equal(fast, model.sample_from_noise(noise, batch_size=2))
    np.testing.assert_array_equal(model.generate(5, seed=3), fast)
    assert fast.dtype == np.float32 and fast.min() >= 0.0 and fast.max() <= 1.0
    levels = 1.0 if distribution == "bernoulli" else 255.0
    np.testing.assert_allclose(fast * levels, np.round(fast * levels), atol=1e-4)


def test_sampling_is_one_graph_with_while_loops():
    model = tiny((3, 3, 1))
    fn = model._function("sample_fast")
    graph = fn.get_concrete_function().graph
    ops = {op.type for op in graph.get_operations()}
    assert "While" in ops or "StatelessWhile" in ops


@pytest.mark.slow
def test_fit_reports_nll_and_bits_per_dim():
    model = tiny((4, 4, 1))
    x = (np.random.default_rng(0).random((64, 4, 4, 1)) < 0.3).astype(np.float32)
    model.compile()
    hist = model.fit(x, batch_size=16, epochs=2, verbose=0).history
    assert set(hist) == {"nll", "bits_per_dim"}
    np.testing.assert_allclose(hist["bits_per_dim"][-1], hist["nll"][-1] / (16 * np.log(2)),
                               rtol=1e-5)
    assert hist["nll"][-1] < hist["nll"][0]
    ev = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    np.testing.assert_allclose(ev["nll"], -model.log_likelihood(x).mean(), rtol=1e-5)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_every_trainable_weight_gets_a_gradient(num_classes):
    """The NLL depends on every weight: none is created that training cannot move (the
    last block's vertical stack feeds nothing, so it has no class bias)."""
    model = tiny((3, 3, 1), num_classes=num_classes, num_layers=3)
    x = tf.constant((np.random.default_rng(0).random((8, 3, 3, 1)) < 0.4), tf.float32)
    onehot = None if num_classes is None else tf.one_hot(np.arange(8) % num_classes, num_classes)
    with tf.GradientTape() as tape:
        nll = -tf.reduce_mean(model.log_prob(x, onehot))
    grads = tape.gradient(nll, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads)
               if g is None or not np.any(np.asarray(g))]
    assert missing == []
    names = {v.path.split("/")[0] for v in model.trainable_variables}
    if num_classes is not None:
        assert {"cond_v0", "cond_v1", "cond_h2"} <= names and "cond_v2" not in names


@pytest.mark.slow
@pytest.mark.parametrize("num_classes", [None, 3])
def test_two_replicas_equal_one(num_classes):
    x = (np.random.default_rng(0).random((32, 4, 4, 1)) < 0.4).astype(np.float32)
    if num_classes:
        ds = tf.data.Dataset.from_tensor_slices((x, np.arange(32) % 3)).batch(8)
    else:
        ds = tf.data.Dataset.from_tensor_slices(x).batch(8)
    assert_replicas_agree(lambda: tiny((4, 4, 1), num_classes=num_classes), ds, steps=2)


@pytest.mark.parametrize("kwargs", [
    {"shape": (3, 3, 1)}, {"shape": (3, 3, 3), "distribution": "logistic_mixture"},
    {"shape": (3, 3, 1), "distribution": "categorical", "num_classes": 2}])
def test_config_and_keras_round_trip(kwargs, tmp_path):
    model = tiny(**kwargs)
    model.compile()
    clone = assert_config_round_trip(model)
    assert clone.distribution == model.distribution
    gen_kwargs = {"labels": [0, 1, 1]} if kwargs.get("num_classes") else None
    loaded = assert_keras_round_trip(model, tmp_path, gen_kwargs)
    x = model.generate(3, seed=0, **(gen_kwargs or {}))
    np.testing.assert_array_equal(loaded.log_likelihood(x, **(gen_kwargs or {})),
                                  model.log_likelihood(x, **(gen_kwargs or {})))


def test_contract_members():
    model = tiny(num_classes=4)
    assert model.latent_dim is None and model.num_classes == 4
    assert model.image_shape == (2, 2, 1) and model.value_range == (0.0, 1.0)
    np.testing.assert_array_equal(model.normalize_labels(None, 6), [0, 1, 2, 3, 0, 1])
    x, labels = model.unpack_batch((ALL_2X2, np.zeros(16)))
    assert labels is not None
    sigs = {s.name: s for s in model.export_signatures()}
    assert [i.role for i in sigs["generate"].inputs] == ["noise", "label"]
    assert [o.role for o in sigs["generate"].outputs] == ["image"]
    assert [i.role for i in sigs["log_prob"].inputs] == ["image", "label"]
    assert [o.role for o in sigs["log_prob"].outputs] == ["log_prob"]
    # The signature functions are the sampler and the exact likelihood.
    noise = model.noise(3, seed=2)
    labels = np.array([3, 0, 1], np.int32)
    images = np.asarray(sigs["generate"].fn(noise, labels)["image"])
    np.testing.assert_array_equal(images, model.sample_from_noise(noise, labels))
    np.testing.assert_allclose(np.asarray(sigs["log_prob"].fn(images, labels)["log_prob"]),
                               model.log_likelihood(images, labels), rtol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"distribution": "gaussian"}, "distribution='gaussian'"),
    ({"image_shape": (4, 4)}, "image_shape"),
    ({"image_shape": (4, 4, 3), "filters": 4}, "filters=4 must be a multiple"),
    ({"kernel_size": 4}, "kernel_size must be odd"),
    ({"num_layers": 0}, "num_layers"),
    ({"num_classes": -1}, "num_classes"),
])
def test_bad_arguments_are_named(kwargs, match):
    kwargs.setdefault("image_shape", (4, 4, 1))
    with pytest.raises(ValueError, match=match):
        ka.models.PixelCNN(**kwargs)


def test_bad_inputs_are_named():
    model = tiny()
    with pytest.raises(ValueError, match="binary pixels"):
        model.log_likelihood(np.full((1, 2, 2, 1), 0.5, np.float32))
    with pytest.raises(ValueError, match="expected"):
        model.log_likelihood(np.zeros((1, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="unconditional"):
        model.generate(2, labels=[0, 1])
    with pytest.raises(ValueError, match=r"noise must be uniform in \[0, 1\)"):
        model.sample_from_noise(np.full((1, 2, 2, 1), 1.0, np.float32))
    cat = tiny(distribution="categorical")
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
        cat.log_likelihood(np.full((1, 2, 2, 1), 3.0, np.float32))
    cond = tiny(num_classes=2)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        cond.generate(2, labels=[0, 5])
    with pytest.raises(ValueError, match="labels=True"):
        cond.compile()
        cond.fit(ALL_2X2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="takes no loss"):
        model.compile(loss="mse")


def test_written_out_likelihoods_equal_the_tfp_distributions():
    """`log_prob` / `channel_log_pmf` write Bernoulli and Categorical out (tfp lowers them
    to MulNoNan and SparseSoftmaxCrossEntropyWithLogits, which ONNX / TFLite lack); they
    must stay the `tfp.distributions` values."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    from keras_aigc.models.autoregressive import pixel_distributions as pd

    tfd = tfp.distributions
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (5, 3, 3, 2)).astype(np.float32)
    x = (rng.random((5, 3, 3, 2)) < 0.5).astype(np.float32)
    np.testing.assert_allclose(
        pd.log_prob("bernoulli", logits, x, 2),
        tf.reduce_sum(tfd.Bernoulli(logits=logits).log_prob(x), -1), rtol=1e-6, atol=1e-6)
    pixel_logits = logits[:, 0, 0]  # (B, C) one pixel
    for c in range(2):
        np.testing.assert_allclose(
            pd.channel_log_pmf("bernoulli", pixel_logits, x[:, 0, 0], tf.constant(c), 2),
            tf.transpose(tfd.Bernoulli(logits=pixel_logits[:, c]).log_prob([[0.0], [1.0]])),
            rtol=1e-6, atol=1e-6)
    cat = rng.normal(0, 2, (4, 2, 2, 256)).astype(np.float32)  # one channel: v * C + c
    v = rng.integers(0, 256, (4, 2, 2, 1))
    np.testing.assert_allclose(
        pd.log_prob("categorical", cat, v.astype(np.float32) / 255.0, 1),
        tfd.Categorical(logits=cat).log_prob(v[..., 0]), rtol=1e-5, atol=1e-5)
