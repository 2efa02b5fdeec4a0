"""Probabilistic PCA as a VAE: a linear Gaussian decoder with a closed-form marginal.

p(z) = N(0, I), p(x | z) = N(W z + b, sigma^2 I)  =>  p(x) = N(b, W W^T + sigma^2 I) and
p(z | x) = N(M^-1 W^T (x - b), sigma^2 M^-1) with M = W^T W + sigma^2 I (Tipping & Bishop 1999).
"""

import numpy as np

from keras_aigc.models import VAE

IMAGE_SHAPE = (3, 2, 1)
D = 6
LATENT = 2
SIGMA = 0.5


def make_params(posterior, seed=0):
    rng = np.random.default_rng(seed)
    if posterior == "diagonal":
        # Orthogonal columns make W^T W, hence the exact posterior covariance, diagonal.
        q, _ = np.linalg.qr(rng.standard_normal((D, LATENT)))
        w = q * np.array([2.0, 0.7])
    else:
        w = rng.standard_normal((D, LATENT))
    b = rng.standard_normal(D)
    return w, b


def exact_log_px(x_flat, w, b):
    cov = w @ w.T + SIGMA**2 * np.eye(D)
    diff = x_flat - b
    _, logdet = np.linalg.slogdet(cov)
    maha = np.einsum("ni,ni->n", diff, np.linalg.solve(cov, diff.T).T)
    return -0.5 * (D * np.log(2 * np.pi) + logdet + maha)


def exact_posterior(w, b):
    """Returns `(A, c, cov)`: posterior mean `A x + c` and covariance."""
    m = w.T @ w + SIGMA**2 * np.eye(LATENT)
    m_inv = np.linalg.inv(m)
    a = m_inv @ w.T
    return a, -a @ b, SIGMA**2 * m_inv


def sample_x(w, b, n, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, LATENT))
    x = z @ w.T + b + SIGMA * rng.standard_normal((n, D))
    return x.astype(np.float32).reshape((n, *IMAGE_SHAPE)), x


def make_vae(posterior, loc_shift=0.0, scale_factor=1.0, seed=0, **kwargs):
    """A PPCA VAE with the exact posterior, optionally perturbed (shift of the loc in
    posterior stddevs, and a factor on the posterior scale); `kwargs` go to `VAE`."""
    w, b = make_params(posterior, seed)
    vae = VAE(image_shape=IMAGE_SHAPE, latent_dim=LATENT, hidden_units=(),
              likelihood="gaussian", gaussian_scale=SIGMA, posterior=posterior, seed=0,
              **kwargs)
    dec = vae.decoder.get_layer("likelihood_raw")
    dec.set_weights([w.T.astype(np.float32), b.astype(np.float32)])
    a, c, cov = exact_posterior(w, b)
    chol = np.linalg.cholesky(cov) * scale_factor
    c = c + loc_shift * np.sqrt(np.diag(cov))
    params = vae.encoder.get_layer("posterior_params")
    if posterior == "diagonal":
        raw_scale = params.raw_scale(np.diag(chol).astype(np.float32)).numpy()
    else:
        raw_scale = params.raw_scale(chol.astype(np.float32)).numpy()
    n_scale = raw_scale.shape[-1]
    kernel = np.concatenate([a.T, np.zeros((D, n_scale))], axis=1).astype(np.float32)
    bias = np.concatenate([c, raw_scale]).astype(np.float32)
    vae.encoder.get_layer("posterior_raw").set_weights([kernel, bias])
    return vae, w, b
