import json

import numpy as np
import pytest

import keras_aigc as ka
from keras_aigc import latent
from keras_aigc.cli.main import main


def test_slerp_endpoints_and_closed_form_norms():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal(16), 2.0 * rng.standard_normal(16)
    path = latent.interpolate(z0, z1, 9)
    np.testing.assert_allclose(path[0], z0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(path[-1], z1, rtol=1e-6, atol=1e-6)
    # Closed form: |slerp(t)|^2 = a^2 |z0|^2 + b^2 |z1|^2 + 2ab z0.z1 with
    # a = sin((1-t)w)/sin w, b = sin(tw)/sin w.
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    w = np.arccos(z0 @ z1 / (n0 * n1))
    t = np.linspace(0, 1, 9)
    a, b = np.sin((1 - t) * w) / np.sin(w), np.sin(t * w) / np.sin(w)
    expected = np.sqrt(a**2 * n0**2 + b**2 * n1**2 + 2 * a * b * (z0 @ z1))
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), expected, rtol=1e-5)
    # Unit vectors stay on the unit sphere; the angle advances uniformly.
    u0, u1 = z0 / n0, z1 / n1
    unit = latent.interpolate(u0, u1, 5)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    angles = np.arccos(np.clip(unit @ u0, -1, 1))
    np.testing.assert_allclose(np.diff(angles), w / 4, atol=1e-3)  # float32 arccos
    # lerp is the straight line; batched paths have shape (n, steps, d).
    np.testing.assert_allclose(latent.interpolate(z0, z1, 3, "lerp")[1], (z0 + z1) / 2,
                               rtol=1e-6)
    assert latent.interpolate(np.stack([z0, z0]), np.stack([z1, z1]), 4).shape == (2, 4, 16)
    # Parallel vectors fall back to lerp without NaNs.
    assert np.isfinite(latent.interpolate(z0, 2 * z0, 4)).all()


def test_truncation():
    z = np.random.default_rng(1).standard_normal((5, 4))
    np.testing.assert_array_equal(latent.truncate(z, 0.0), np.zeros((5, 4), np.float32))
    mean = np.array([1, 2, 3, 4], np.float32)
    np.testing.assert_allclose(latent.truncate(z, 0.0, mean=mean), np.tile(mean, (5, 1)))
    np.testing.assert_allclose(latent.truncate(z, 1.0), z, rtol=1e-6)
    np.testing.assert_allclose(latent.truncate(z, 0.5, mean=mean), mean + 0.5 * (z - mean),
                               rtol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: latent.interpolate(np.zeros(3), np.zeros(3), 1), "steps must be an integer >= 2"),
    (lambda: latent.interpolate(np.zeros(3), np.zeros(4), 3), "same shape"),
    (lambda: latent.interpolate(np.zeros(3), np.zeros(3), 3, "cubic"),
     r"Unrecognized method='cubic'"),
    (lambda: latent.truncate(np.zeros(3), -0.1), r"psi must be a number in \[0, 2\]"),
    (lambda: latent.truncate(np.zeros(3), 0.5, mean=np.zeros(2)), "mean must have shape"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_traverse_gan_varies_only_one_dimension():
    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4),
                          d_filters=(4,), kernel_size=3, seed=0)
    z, images = latent.traverse(gan, 2, [-1.0, 0.0, 1.0])
    assert images.shape == (3, 8, 8, 1)
    np.testing.assert_array_equal(z[:, 2], [-1, 0, 1])
    assert (z[:, [0, 1, 3]] == 0).all()
    np.testing.assert_allclose(images, gan.generate_from_latents(z), rtol=1e-6)
    with pytest.raises(ValueError, match=r"dim must be an integer in \[0, 4\)"):
        latent.traverse(gan, 4, [0.0])


class _KnownPosterior:
    """An encoder with known posterior means/scales: dims 0-2 follow x, dims 3-5 do not."""

    prior = "normal"
    latent_dim = 6

    def encode(self, x):
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        loc = np.zeros((len(x), 6))
        loc[:, :3] = x[:, :3]            # variance of the data: 1, 0.25, 0.04
        loc[:, 3] = 0.05 * x[:, 0]       # variance 0.0025: below the 0.01 threshold
        scale = np.ones((len(x), 6))
        scale[:, :3] = 0.1
        return loc.astype(np.float32), scale.astype(np.float32)


def test_active_units_and_kl_known_values():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 3)) * np.array([1.0, 0.5, 0.2])
    stats = latent.active_units(_KnownPosterior(), x)
    np.testing.assert_allclose(stats["variance"][:4], [1.0, 0.25, 0.04, 0.0025], rtol=0.05)
    assert stats["count"] == 3 and stats["active"] == [True] * 3 + [False] * 3
    kl = latent.kl_per_dimension(_KnownPosterior(), x)
    # 0.5 (E[mu^2] + sigma^2 - 1) - log sigma per dimension.
    expected = [0.5 * (v + 0.01 - 1) - np.log(0.1) for v in (1.0, 0.25, 0.04)]
    expected += [0.5 * 0.0025, 0.0, 0.0]
    np.testing.assert_allclose(kl, expected, rtol=0.05, atol=1e-4)
    with pytest.raises(ValueError, match="has no encode"):
        latent.active_units(object(), x)


def test_explore_cli_writes_grids_and_json(tmp_path):
    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4),
                          d_filters=(4,), kernel_size=3, seed=0)
    gan.save(str(tmp_path / "model.keras"))
    assert main(["explore", str(tmp_path), "--interpolate", "--steps", "5", "--rows", "3"]) == 0
    stats = json.loads((tmp_path / "explore" / "interpolate.json").read_text())
    assert stats["method"] == "slerp" and (tmp_path / "explore" / "interpolate_slerp.png").is_file()
    from PIL import Image

    # 3 rows x 5 columns of 8 px with 2 px padding, upscaled 2x.
    assert Image.open(tmp_path / "explore" / "interpolate_slerp.png").size == (
        2 * (5 * 10 + 2), 2 * (3 * 10 + 2))
    assert main(["explore", str(tmp_path), "--traverse", "--steps", "3"]) == 0
    assert json.loads((tmp_path / "explore" / "traverse.json").read_text())["dims"] == [0, 1, 2, 3]
    assert main(["explore", str(tmp_path), "--active-units"]) == 2  # needs --data
    assert main(["explore", str(tmp_path), "--interpolate", "--steps", "1"]) == 2


def test_explore_active_units_on_a_vae(tmp_path):
    # The digits source's default size is 32x32 (8x8 upscaled).
    vae = ka.models.VAE(image_shape=(32, 32, 1), latent_dim=3, hidden_units=(8,),
                        likelihood="gaussian", seed=0)
    vae.save(str(tmp_path / "model.keras"))
    assert main(["explore", str(tmp_path), "--active-units", "--data", "digits",
                 "--num-examples", "50"]) == 0
    stats = json.loads((tmp_path / "explore" / "active_units.json").read_text())
    assert len(stats["variance"]) == 3 and len(stats["kl_per_dimension"]) == 3
    assert stats["count"] == sum(stats["active"])


# ------------------------------------------ active units on data of known intrinsic dimension
# x = A f + noise, f ~ N(0, I_3), A (16 x 3) with orthogonal columns of norms 2, 1.5, 1: the
# data covariance has eigenvalues lam_k = s_k^2 + NOISE^2 on 3 directions and NOISE^2 on the
# other 13. A VAE with linear networks and a fixed Gaussian likelihood scale SCALE is
# probabilistic PCA: its optimum (Tipping & Bishop 1999; Lucas et al. 2019 for the diagonal
# posterior) uses a latent unit for each eigenvalue above SCALE^2 and collapses the others
# to the prior. An active unit k then has, in closed form,
#   Var_x E[z|x] = 1 - SCALE^2 / lam_k   and   KL(q(z_k|x) || N(0, 1)) = 0.5 log(lam_k / SCALE^2),
# and a collapsed one 0 and 0.
# SCALE (0.2) is above the true noise (0.02) on purpose: an encoder weight along a direction
# the data barely spans gets almost no gradient (it scales with the data variance there,
# NOISE^2), so a collapsed unit keeps about NOISE^2 |w|^2 of posterior-mean variance from its
# initial weights. With NOISE = 0.02 that is < 1e-3, far under the 0.01 threshold (with
# NOISE = SCALE = 0.2 such units sat at 0.02 to 0.07 after 150 epochs), while the model's larger SCALE keeps the
# optimisation fast: the count settles at 3 in ~300 steps, and the 800 steps here bring the
# collapsed units' KL under 0.01 (the same held for 10 of 10 seeds).
_SINGULAR = np.array([2.0, 1.5, 1.0])
_NOISE, _SCALE = 0.02, 0.2


def _three_factor_data(n, rng, a):
    x = rng.standard_normal((n, 3)) @ a.T + _NOISE * rng.standard_normal((n, a.shape[0]))
    return x.astype(np.float32).reshape(n, 4, 4, 1)


def test_active_units_of_a_vae_on_three_factor_data_is_three(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    a = np.linalg.qr(rng.standard_normal((16, 3)))[0] * _SINGULAR
    x_train, x_val = _three_factor_data(4000, rng, a), _three_factor_data(2000, rng, a)
    keras.utils.set_random_seed(0)
    vae = ka.models.VAE(image_shape=(4, 4, 1), latent_dim=8, hidden_units=(),
                        likelihood="gaussian", gaussian_scale=_SCALE, value_range=(-4.0, 4.0),
                        seed=0)
    epochs, batch = 100, 500
    lr = keras.optimizers.schedules.CosineDecay(3e-2, epochs * len(x_train) // batch, alpha=0.1)
    vae.compile(optimizer=keras.optimizers.Adam(lr))
    vae.fit(x_train, batch_size=batch, epochs=epochs, verbose=0)

    stats = latent.active_units(vae, x_val)
    kl = np.array(latent.kl_per_dimension(vae, x_val))
    var = np.array(stats["variance"])
    assert stats["count"] == 3, stats
    active = np.array(stats["active"])
    lam = np.sort(_SINGULAR**2 + _NOISE**2)[::-1]
    # Active units: a posterior-mean variance near 1 - SCALE^2 / lam_k (0.96 to 0.99),
    # which it approaches from above on a slow direction (0.92 to 1.17 over 10 seeds).
    assert (np.abs(var[active] - 1.0) < 0.25).all(), var
    # The KL of the active units sums to the closed form. (Each unit reaches its own
    # 0.5 log(lam_k / SCALE^2) only after ~2,400 steps: rotations inside the signal subspace
    # are the slowest direction of the diagonal-posterior ELBO. Here the units only need to
    # span that subspace, checked on the decoder below.)
    np.testing.assert_allclose(kl[active].sum(), 0.5 * np.log(lam / _SCALE**2).sum(), atol=0.15)
    assert (kl[active] > 1.4).all() and (kl[active] < 2.5).all(), kl
    # Collapsed units: far under the threshold, and no KL (they are the prior).
    assert (var[~active] < 2e-3).all(), var
    assert (kl[~active] < 0.01).all(), kl
    # The decoder columns of the active units lie in span(A); the others are ~0.
    w = vae.decoder.get_layer("likelihood_raw").get_weights()[0]  # (latent, 16)
    q = np.linalg.qr(a)[0]
    off_span = w - (w @ q) @ q.T
    assert np.linalg.norm(off_span[active], axis=1).max() < 0.05, off_span
    assert (np.linalg.norm(w[active], axis=1) > 0.9).all()
    assert np.linalg.norm(w[~active], axis=1).max() < 0.05, w

    # `keras-aigc explore --active-units` reports the same units from a saved run and an
    # npz of the data (uint8 over value_range (-4, 4): steps of 0.03, a little more noise).
    vae.save(str(tmp_path / "model.keras"))
    to_uint8 = np.clip(np.round((x_val + 4.0) / 8.0 * 255.0), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "three.npz", x_train=to_uint8, y_train=np.zeros(len(x_val), np.int64),
             x_test=to_uint8[:10], y_test=np.zeros(10, np.int64))
    assert main(["explore", str(tmp_path), "--active-units", "--data",
                 f"npz:{tmp_path / 'three.npz'}"]) == 0
    cli = json.loads((tmp_path / "explore" / "active_units.json").read_text())
    assert cli["count"] == 3 and cli["active"] == stats["active"], cli
