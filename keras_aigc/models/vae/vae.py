"""The probabilistic VAE: TFP posterior, prior and likelihood behind a tensor boundary."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_aigc.distribute import replica_normal
from keras_aigc.export.export_utils import LOC, SCALE, Signature, TensorInfo
from keras_aigc.models.base import GenerativeModel, new_seed
from keras_aigc.models.base import positive_int as _positive_int
from keras_aigc.models.one_optimizer_compile import OneOptimizerCompile
from keras_aigc.models.vae import distributions as dists
from keras_aigc.models.vae import flows as iaf
from keras_aigc.models.vae import networks
from keras_aigc.models.vae.evaluation import VAEEvaluation
from keras_aigc.models.vae.likelihood_mean import LikelihoodMean


@keras.saving.register_keras_serializable(package="keras_aigc")
class VAE(VAEEvaluation, OneOptimizerCompile, GenerativeModel):
    """A variational autoencoder whose posterior, prior and likelihood are TFP distributions.

    The encoder network outputs the parameters of `q(z | x)`, a diagonal Gaussian or a
    full-covariance `MultivariateNormalTriL`; the prior `p(z)` is `N(0, I)` or a learnable
    mixture of diagonal Gaussians; the decoder network outputs the parameters of `p(x | z)`,
    chosen by name. Networks exchange only tensors: the distributions are built inside
    `train_step` and the evaluation functions.

    Training minimises the negative ELBO `E_q[-log p(x|z)] + beta * KL(q || p)`, with the
    analytic KL when TFP has one (Gaussian posterior, normal prior) and a Monte Carlo
    estimate otherwise (mixture prior), or the IWAE bound with `iwae_samples` importance
    samples. Per-example losses are averaged over the *global* batch and each replica
    draws its slice of one global noise draw, so a step under `MirroredStrategy` equals the
    same step on one device. Trackers: `elbo` (nats per example, higher is better),
    `reconstruction` (`-E_q log p(x|z)`), `kl`, and `iwae` for the IWAE objective.

    Args:
        image_shape: tuple. `(H, W, C)` of the images. Defaults to `(28, 28, 1)`.
        latent_dim: int. Size of `z`. Defaults to `32`.
        hidden_units: tuple of int. Widths of the encoder's hidden dense layers; the
            decoder mirrors them. `()` makes both networks linear. Defaults to `(512, 256)`.
        activation: str. Hidden activation. Defaults to `"relu"`.
        likelihood: str. `"bernoulli"` (logits; binarized data in {0, 1}), `"gaussian"`
            or `"logistic"` (discretized logistic over 8-bit pixels scaled to [0, 1]).
            Defaults to `"bernoulli"`.
        gaussian_scale: float or None. Fixed stddev of the Gaussian likelihood; `None`
            lets the decoder output a per-pixel scale. Defaults to `None`.
        posterior: str. `"diagonal"` or `"full"` (MultivariateNormalTriL).
            Defaults to `"diagonal"`.
        flow_steps: int. Inverse autoregressive flow steps on top of that Gaussian
            (`keras_aigc.models.vae.flows.IAFStep`, Kingma et al. 2016): `q(z | x)` becomes
            the Gaussian pushed through them, with its exact density. `0` (the default)
            keeps the Gaussian posterior. With flows the KL term is a Monte Carlo estimate,
            and `encode`/the exported `encode` signature still give the Gaussian base
            (`loc`, `scale`) that the flow transforms.
        flow_hidden_units: tuple of int. Hidden widths of each step's MADE network.
            Defaults to `(256,)`.
        prior: str. `"normal"` or `"mixture"` (learnable mixture of Gaussians).
            Defaults to `"normal"`.
        prior_components: int. Mixture components when `prior="mixture"`.
            Defaults to `10`.
        beta: float. Weight of the KL term (beta-VAE; 1 is the ELBO). A `KLWarmup`
            callback ramps the weight up to it. Defaults to `1.0`.
        objective: str. `"elbo"` or `"iwae"`. Defaults to `"elbo"`.
        iwae_samples: int. Latent samples per example in training: the `k` of IWAE(k),
            or the samples the ELBO averages. Defaults to `1`.
        value_range: tuple. `(low, high)` of images. Defaults to `(0, 1)`.
        seed: int. Seed of the training noise stream; drawn at random when `None` and
            then stored in the config.

    Example:

    ```python
    import keras_aigc as ka
    ds = ka.data.load("digits", scaling="sigmoid", binarize="dynamic", batch_size=64)
    vae = ka.models.VAE(image_shape=(32, 32, 1), latent_dim=16)
    vae.compile()
    vae.fit(ds, epochs=5)
    nll = -vae.log_likelihood(x, num_samples=5000)   # nats per example
    ```

    Reference:
        Kingma & Welling, Auto-Encoding Variational Bayes, 2014.
        Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, 2015.
    """

    def __init__(self, image_shape=(28, 28, 1), latent_dim=32, hidden_units=(512, 256),
                 activation="relu", likelihood="bernoulli", gaussian_scale=None,
                 posterior="diagonal", prior="normal", prior_components=10, beta=1.0,
                 objective="elbo", iwae_samples=1, flow_steps=0, flow_hidden_units=(256,),
                 value_range=(0.0, 1.0), seed=None, **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                for d in image_shape):
            raise ValueError(f"image_shape must be (H, W, C) positive integers, got "
                             f"image_shape={image_shape!r}.")
        dists.check_choice("likelihood", likelihood, dists.LIKELIHOODS)
        dists.check_choice("posterior", posterior, dists.POSTERIORS)
        dists.check_choice("prior", prior, dists.PRIORS)
        dists.check_choice("objective", objective, dists.OBJECTIVES)
        if gaussian_scale is not None and not float(gaussian_scale) > 0:
            raise ValueError(f"gaussian_scale must be > 0 or None, got {gaussian_scale!r}.")
        if gaussian_scale is not None and likelihood != "gaussian":
            raise ValueError(f"gaussian_scale={gaussian_scale!r} only applies to "
                             f"likelihood='gaussian', got likelihood={likelihood!r}.")
        if not float(beta) >= 0:
            raise ValueError(f"beta must be >= 0, got beta={beta!r}.")
        if len(value_range) != 2 or not float(value_range[0]) < float(value_range[1]):
            raise ValueError(f"value_range must be (low, high) with low < high, got "
                             f"{value_range!r}.")
        hidden_units = tuple(hidden_units)
        for units in hidden_units:
            _positive_int("hidden_units entries", units)
        if isinstance(flow_steps, bool) or not isinstance(flow_steps, (int, np.integer)) or (
                flow_steps < 0):
            raise ValueError(f"flow_steps must be an integer >= 0 (0: no flow), got "
                             f"flow_steps={flow_steps!r}.")
        if isinstance(flow_hidden_units, (str, bytes)) or not hasattr(flow_hidden_units,
                                                                      "__iter__"):
            raise ValueError(f"flow_hidden_units must be a list of positive integers, got "
                             f"flow_hidden_units={flow_hidden_units!r}.")
        flow_hidden_units = tuple(flow_hidden_units)
        if not flow_hidden_units:
            raise ValueError("flow_hidden_units must hold at least one width (each flow step "
                             "is a MADE network with a hidden layer), got ().")
        for units in flow_hidden_units:
            _positive_int("flow_hidden_units entries", units)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.latent_dim = _positive_int("latent_dim", latent_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.likelihood = likelihood
        self.gaussian_scale = None if gaussian_scale is None else float(gaussian_scale)
        self.posterior = posterior
        self.prior = prior
        self.prior_components = _positive_int("prior_components", prior_components)
        self.beta = float(beta)
        self.objective = objective
        self.iwae_samples = _positive_int("iwae_samples", iwae_samples)
        self.flow_steps = int(flow_steps)
        self.flow_hidden_units = tuple(int(u) for u in flow_hidden_units)
        self.value_range = tuple(float(v) for v in value_range)
        self.seed = new_seed() if seed is None else int(seed)

        self.encoder = self.build_encoder()
        self.decoder = self.build_decoder()
        self.flows = self.build_flows()
        # The KL weight is a variable so that KLWarmup can move it inside a traced step.
        self.kl_weight = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.beta), trainable=False,
            name="kl_weight")
        if prior == "mixture":
            k, d = self.prior_components, self.latent_dim
            self.prior_logits = self.add_weight(shape=(k,), initializer="zeros",
                                                name="prior_logits")
            self.prior_locs = self.add_weight(
                shape=(k, d), initializer=keras.initializers.RandomNormal(seed=self.seed),
                name="prior_locs")
            self.prior_raw_scales = self.add_weight(
                shape=(k, d), initializer=keras.initializers.Constant(math.log(math.e - 1)),
                name="prior_raw_scales")

        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.iwae_tracker = keras.metrics.Mean(name="iwae") if objective == "iwae" else None
        self._log_weights_fn = None
        self._decoder_mean_model = None
        self._encoder_model = None
        self.built = True

    # ------------------------------------------------------------------ networks
    family = "vae"
    evaluation = "likelihood"
    config_args = ("image_shape", "latent_dim", "hidden_units", "activation", "likelihood",
                   "gaussian_scale", "posterior", "prior", "prior_components", "beta",
                   "objective", "iwae_samples", "flow_steps", "flow_hidden_units",
                   "value_range", "seed")

    @property
    def label_dim(self):
        """Width of the one-hot label inside both networks (0: unconditional)."""
        return self.num_classes or 0

    @property
    def num_dims(self):
        return int(np.prod(self.image_shape))

    @property
    def likelihood_params(self):
        """Decoder output channels per image channel."""
        return dists.likelihood_num_params(self.likelihood, self.gaussian_scale)

    def build_encoder(self):
        """Image (and int32 labels `(B,)`, one-hot inside through
        `keras_aigc.layers.LabelOneHot`) -> posterior `loc`, `scale`; override for another
        architecture (see `networks.build_mlp_encoder`, `networks.label_input`)."""
        return networks.build_mlp_encoder(self.image_shape, self.latent_dim, self.hidden_units,
                                          self.activation, self.posterior, self.num_classes)

    def build_decoder(self):
        """`z` (and int32 labels `(B,)`) -> likelihood parameters `(H, W, C * p)`, location
        first, then the unconstrained scale if any; override for another architecture
        (see `networks.build_mlp_decoder`)."""
        return networks.build_mlp_decoder(self.image_shape, self.latent_dim, self.hidden_units,
                                          self.activation, self.likelihood_params,
                                          self.num_classes)

    def build_flows(self):
        """The posterior's IAF steps (alternating variable order), built for a context
        of `(loc, log stddev)`: `2 * latent_dim` values."""
        d = self.latent_dim
        steps = []
        for t in range(self.flow_steps):
            step = iaf.IAFStep(d, self.flow_hidden_units, reverse=bool(t % 2), name=f"iaf_{t}")
            step.build(((None, d), (None, 2 * d)))
            steps.append(step)
        return steps

    def posterior_sample(self, loc, scale, eps):
        """Samples of `q(z | x)` for noise `eps (k, B, d)` and their log-density.

        Returns:
            `(z (k, B, d), log_qz (k, B), q)`, `q` being the Gaussian base as a TFP
            distribution (the posterior itself when there are no flow steps).
        """
        eps = tf.cast(eps, tf.float32)
        z = dists.reparameterize(self.posterior, loc, scale, eps)
        q = dists.make_posterior(self.posterior, loc, scale)
        log_qz = q.log_prob(z)
        if self.flows:
            context = iaf.flow_context(self.posterior, loc, scale)
            for step in self.flows:
                z, log_det = step(z, context)
                log_qz = log_qz - log_det
        return z, log_qz, q

    def posterior_point(self, loc, scale):
        """The latent a reconstruction decodes: the posterior mean, or with flow steps the
        flow applied to the base mean (`eps = 0`)."""
        if not self.flows:
            return loc
        z, _, _ = self.posterior_sample(loc, scale, tf.zeros_like(loc)[None])
        return z[0]

    def encoder_inputs(self, x, labels):
        return [x, labels] if self.label_dim else x

    def decoder_inputs(self, z, labels):
        return [z, labels] if self.label_dim else z

    def int_labels(self, labels):
        """Labels as int32 `(B,)` for the networks (`None` for an unconditional model)."""
        if self.num_classes is None or labels is None:
            return None
        return tf.reshape(tf.cast(labels, tf.int32), [-1])

    def prior_distribution(self):
        """`p(z)` as a TFP distribution (built from the current prior weights)."""
        params = None
        if self.prior == "mixture":
            params = (self.prior_logits, self.prior_locs, self.prior_raw_scales)
        return dists.make_prior(self.prior, self.latent_dim, params)

    def call(self, inputs, training=False):
        """Reconstructs `inputs` (images) through the posterior mean: the mean image."""
        x, labels = self._split_call_inputs(inputs)
        labels = self.int_labels(labels)
        loc, scale = self.encoder(self.encoder_inputs(x, labels), training=training)
        z = self.posterior_point(loc, scale)
        params = self.decoder(self.decoder_inputs(z, labels), training=training)
        return dists.likelihood_mean(self.likelihood, params, self.image_shape[-1])

    def _split_call_inputs(self, inputs):
        return inputs, None

    # ------------------------------------------------------------ export hooks
    def decoder_mean_model(self):
        """Functional `keras.Model`: `z (B, latent_dim)` [, `label (B,)` int32] -> the
        float32 mean image `(B, H, W, C)` in `value_range`. Shares weights with the VAE."""
        if self._decoder_mean_model is None:
            z = keras.Input((self.latent_dim,), name="z")
            labels = self._export_label_input()
            params = self.decoder([z, *labels] if labels else z)
            mean = LikelihoodMean(self.likelihood, self.image_shape[-1], name="mean")(params)
            self._decoder_mean_model = keras.Model([z, *labels] if labels else z, mean,
                                                   name="decoder_mean")
        return self._decoder_mean_model

    def encoder_model(self):
        """Functional `keras.Model`: image [, `label (B,)` int32] -> posterior `loc
        (B, d)` and `scale`: the stddev `(B, d)` (diagonal) or the lower-triangular
        Cholesky factor `(B, d, d)` (full). Shares weights with the VAE."""
        if self._encoder_model is None:
            # The encoder already takes int32 labels (one-hot inside, LabelOneHot).
            self._encoder_model = self.encoder
        return self._encoder_model

    def _export_label_input(self):
        if not self.label_dim:
            return []
        return [keras.Input((), dtype="int32", name="labels")]

    # ---------------------------------------------------------------- compiling
    # compile / get_compile_config / compile_from_config: OneOptimizerCompile.
    compile_objective = "set by the model's `objective` and `beta`"

    @property
    def metrics(self):
        trackers = [self.elbo_tracker, self.reconstruction_tracker, self.kl_tracker]
        return trackers + ([self.iwae_tracker] if self.iwae_tracker is not None else [])

    # ----------------------------------------------------------------- the bound
    def log_terms(self, x, labels, eps, training=False):
        """Per-sample log-densities for noise `eps (k, B, d)`.

        Returns:
            dict with `log_px_z`, `log_pz`, `log_qz` (each `(k, B)`), `z`, and the
            distributions `q` (the Gaussian base when there are flow steps) and `prior`.
        """
        x = tf.cast(x, tf.float32)
        labels = self.int_labels(labels)
        loc, scale = self.encoder(self.encoder_inputs(x, labels), training=training)
        z, log_qz, q = self.posterior_sample(loc, scale, eps)
        k, batch = tf.shape(z)[0], tf.shape(z)[1]
        z_flat = tf.reshape(z, [-1, self.latent_dim])
        labels_flat = None if labels is None else tf.tile(labels, [k])
        params = self.decoder(self.decoder_inputs(z_flat, labels_flat), training=training)
        params = tf.reshape(params, tf.concat([[k, batch], tf.shape(params)[1:]], 0))
        log_px_z = dists.likelihood_log_prob(self.likelihood, params, x, self.image_shape[-1],
                                             self.gaussian_scale)
        prior = self.prior_distribution()
        return {"log_px_z": log_px_z, "log_pz": prior.log_prob(z), "log_qz": log_qz,
                "z": z, "q": q, "prior": prior}

    def per_example_objective(self, x, labels, eps, training=False):
        """Returns `(loss (B,), stats)`, stats holding per-example `elbo`,
        `reconstruction`, `kl` (and `iwae` for that objective)."""
        t = self.log_terms(x, labels, eps, training=training)
        recon = -tf.reduce_mean(t["log_px_z"], axis=0)
        if self.flows:  # no closed form through the flow: the same-sample estimate
            kl = tf.reduce_mean(t["log_qz"] - t["log_pz"], axis=0)
        else:
            kl, _ = dists.kl_divergence(t["q"], t["prior"], t["z"])
        beta = tf.cast(self.kl_weight, tf.float32)
        stats = {"elbo": -recon - kl, "reconstruction": recon, "kl": kl}
        if self.objective == "elbo":
            loss = recon + beta * kl
        else:
            log_w = t["log_px_z"] + beta * (t["log_pz"] - t["log_qz"])
            stats["iwae"] = dists.logmeanexp(log_w, axis=0)
            loss = -stats["iwae"]
        return loss, stats

    # ----------------------------------------------------------------- training
    def training_noise(self, local_batch, stream):
        """This replica's `(k, B, d)` standard-normal noise for the current step."""
        step = self.optimizer.iterations if self.optimizer is not None else 0
        k, d = self.iwae_samples, self.latent_dim
        eps = replica_normal(self.seed, tf.cast(step, tf.int64) * 2 + stream, local_batch,
                             k * d)
        return tf.transpose(tf.reshape(eps, [local_batch, k, d]), [1, 0, 2])

    def _check_batch(self, x):
        return self.check_image_batch(
            x, "binary" if self.likelihood == "bernoulli" else None,
            f"likelihood={self.likelihood!r}")

    def _update_trackers(self, stats):
        for name, tracker in (("elbo", self.elbo_tracker),
                              ("reconstruction", self.reconstruction_tracker),
                              ("kl", self.kl_tracker), ("iwae", self.iwae_tracker)):
            if tracker is not None:
                tracker.update_state(stats[name])

    def train_step(self, data):
        x, labels = self.unpack_batch(data)
        x = self._check_batch(x)
        eps = self.training_noise(tf.shape(x)[0], 0)
        stats = self.minimize_global_mean(
            lambda: self.per_example_objective(x, labels, eps, training=True))
        self._update_trackers(stats)
        return self.step_logs({m.name: m.result() for m in self.metrics})

    def test_step(self, data):
        x, labels = self.unpack_batch(data)
        x = self._check_batch(x)
        eps = self.training_noise(tf.shape(x)[0], 1)
        _, stats = self.per_example_objective(x, labels, eps, training=False)
        self._update_trackers(stats)
        return self.step_logs({m.name: m.result() for m in self.metrics})

    # ------------------------------------------------------------- public API
    def encode(self, x, labels=None):
        """Posterior parameters `(loc, scale)` as numpy (see `encoder_model`)."""
        x, labels = self._prepare(x, labels)
        loc, scale = self.encoder(self.encoder_inputs(tf.constant(x), tf.constant(labels)),
                                  training=False)
        return np.asarray(loc), np.asarray(scale)

    def decode(self, z, labels=None, batch_size=256):
        """Mean images `(N, H, W, C)` float32 numpy for latents `z (N, latent_dim)`;
        `labels` as in `generate`."""
        return self.generate_from_latents(dists.to_numpy(z), labels, batch_size=batch_size)

    def decode_latents(self, z, labels):
        """The mean image of `p(x | z[, y])` for one batch."""
        params = self.decoder(self.decoder_inputs(z, self.int_labels(labels)), training=False)
        return dists.likelihood_mean(self.likelihood, params, self.image_shape[-1])

    def reconstruct(self, x, labels=None):
        """Mean images decoded from the posterior means of `x` (with flow steps: from the
        flow applied to the base mean, see `posterior_point`)."""
        loc, scale = self.encode(x, labels)
        z = keras.ops.convert_to_numpy(self.posterior_point(tf.constant(loc),
                                                            tf.constant(scale)))
        return self.decode(z, labels)

    def latents(self, n, seed=None):
        """Prior samples, see `sample_prior`."""
        return self.sample_prior(n, seed)

    def sample_prior(self, n, seed=None):
        """`n` latents from `p(z)` as float32 numpy; reproducible for an int seed."""
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        if self.prior == "normal":
            return eps
        prior = self.latent_prior()
        comp = rng.choice(len(prior["weights"]), size=n, p=prior["weights"])
        locs, scales = np.asarray(prior["locs"]), np.asarray(prior["scales"])
        return (locs[comp] + scales[comp] * eps).astype(np.float32)

    def latent_prior(self):
        """`p(z)` as plain numbers, for export manifests and samplers without TFP.

        Returns:
            `{"type": "normal", "latent_dim": d}`, or for the mixture prior also
            `"weights" (K,)`, `"locs" (K, d)` and `"scales" (K, d)` as nested lists.
        """
        if self.prior == "normal":
            return {"type": "normal", "latent_dim": self.latent_dim}
        logits = keras.ops.convert_to_numpy(self.prior_logits).astype(np.float64)
        weights = np.exp(logits - logits.max())
        raw = keras.ops.convert_to_numpy(self.prior_raw_scales).astype(np.float64)
        return {"type": "mixture", "latent_dim": self.latent_dim,
                "weights": (weights / weights.sum()).tolist(),
                "locs": keras.ops.convert_to_numpy(self.prior_locs).tolist(),
                "scales": (np.logaddexp(0.0, raw) + dists.MIN_POSTERIOR_SCALE).tolist()}

    # ------------------------------------------------------------------ export
    def export_signatures(self):
        """`decode`: `z` [, `labels`] -> mean `image`; `encode`: `image` [, `labels`] ->
        posterior `loc`, `scale` (see `decoder_mean_model`, `encoder_model`)."""
        decoder, encoder = self.decoder_mean_model(), self.encoder_model()
        scale_shape = (None,) + tuple(encoder.outputs[1].shape[1:])

        def decode(z, *labels):
            return {"image": decoder([z, *labels] if labels else z, training=False)}

        def encode(x, *labels):
            loc, scale = encoder([x, *labels] if labels else x, training=False)
            return {"loc": loc, "scale": scale}

        return [
            self.image_signature("decode", decode),
            Signature("encode", encode, self.signature_inputs(self.image_info()),
                      [TensorInfo("loc", LOC, "float32", (None, self.latent_dim)),
                       TensorInfo("scale", SCALE, "float32", scale_shape)]),
        ]

    def export_tracked(self):
        return [self.decoder_mean_model(), self.encoder_model()]
