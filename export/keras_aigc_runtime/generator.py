"""`load(bundle_dir)`: a `Generator` that runs an export bundle with ONNX Runtime or LiteRT."""

import logging
import os

import numpy as np

from keras_aigc_runtime import postprocess
from keras_aigc_runtime.manifest import MANIFEST, check_file, check_path, load_manifest

logger = logging.getLogger("keras_aigc_runtime")

BACKENDS = {"onnx": "onnx", "tflite": "tflite"}  # backend -> files[].format
QUANTIZATIONS = ("none", "float16", "dynamic_int8", "int8")
_FLOAT_ROLES = ("latent", "image", "loc", "scale", "noise")


class InputError(ValueError):
    """A caller's input does not fit the signature (the server answers it with HTTP 400)."""


class _SignatureRunner:
    """One logical signature over one dynamic-batch file or several fixed-batch files.

    A batch that equals a fixed-batch file's size runs on that file (bundles carry
    fixed files for batch 1 and the server's largest merged batch next to the dynamic
    one, because XNNPACK runs them faster); any other batch runs on the dynamic file.
    Without a dynamic file, a request whose batch no fixed-batch file accepts is split
    greedily into the largest sizes that fit, and the last chunk is padded (with copies
    of its first row) up to the smallest size that holds it; padding rows are dropped.
    """

    def __init__(self, name, spec, parts):
        self.name = name
        self.spec = spec  # manifest["signatures"][name]
        self.parts = parts  # [(batch_size, file entry signature, runner)]
        self.dynamic = next((p for p in parts if p[0] == -1), None)
        self.fixed = sorted((p for p in parts if p[0] != -1), key=lambda p: -p[0])
        self.batch_sizes = [-1] if self.dynamic else [p[0] for p in reversed(self.fixed)]

    def _run_file(self, part, inputs):
        _, file_sig, runner = part
        # Feed by the file's own names, matched to the logical inputs by position.
        feed = {ft["name"]: inputs[lt["name"]]
                for ft, lt in zip(file_sig["inputs"], self.spec["inputs"], strict=True)}
        res = runner(feed)
        return {lt["name"]: res[ft["name"]]
                for ft, lt in zip(file_sig["outputs"], self.spec["outputs"], strict=True)}

    def __call__(self, inputs):
        n = len(next(iter(inputs.values())))
        exact = next((p for p in self.fixed if p[0] == n), None)
        if exact is not None:
            return self._run_file(exact, inputs)
        if self.dynamic:
            return self._run_file(self.dynamic, inputs)
        chunks, start = [], 0
        while start < n:
            left = n - start
            part = next((p for p in self.fixed if p[0] <= left), None)
            if part is None:  # the tail is smaller than every size: pad the smallest fitting
                part = next(p for p in reversed(self.fixed) if p[0] >= left)
            size = part[0]
            take = min(size, left)
            chunk = {}
            for k, v in inputs.items():
                piece = v[start:start + take]
                if take < size:
                    piece = np.concatenate([piece, np.repeat(piece[:1], size - take, axis=0)])
                chunk[k] = piece
            out = self._run_file(part, chunk)
            chunks.append({k: v[:take] for k, v in out.items()})
            start += take
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


class Generator:
    """A loaded export bundle. Create it with `keras_aigc_runtime.load`.

    Attributes:
        manifest: dict. The validated `manifest.json`.
        backend: str. `"onnx"` or `"tflite"`.
        variant: str. Quantization of the files in use.
        signatures: list of str. Signatures this backend can run (`generate`, or
            `decode` and `encode`).
        primary: str. The image-producing signature (`generate` or `decode`).
        files: list of str. Bundle files in use.
    """

    def __init__(self, bundle_dir, manifest, backend, variant, runners, files):
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self.backend = backend
        self.variant = variant
        self._runners = runners
        self.files = files
        self.signatures = [s for s in ("generate", "decode", "encode", "log_prob")
                           if s in runners]
        # The image-producing signature; an encoder-only file (variant=path) has none.
        self.primary = next((s for s in ("generate", "decode") if s in runners),
                            self.signatures[0])
        self.name = manifest["name"]
        self.family = manifest["model"]["family"]
        self.num_classes = manifest["num_classes"]
        self.image_shape = tuple(manifest["output"]["image_shape"])

    def __repr__(self):
        return (f"Generator(name={self.name!r}, family={self.family!r}, backend={self.backend!r}, "
                f"variant={self.variant!r}, signatures={self.signatures})")

    def signature_spec(self, signature=None):
        """`{inputs, outputs}` of a logical signature (`-1` = batch dimension)."""
        return self._runners[self._signature(signature)].spec

    def batch_sizes(self, signature=None):
        """`[-1]` for a dynamic batch, else the fixed batch sizes of the files in use."""
        return list(self._runners[self._signature(signature)].batch_sizes)

    def _signature(self, signature):
        signature = self.primary if signature is None else signature
        if signature not in self._runners:
            raise InputError(f"Unknown signature={signature!r}. This bundle with "
                             f"backend={self.backend!r} has signatures {self.signatures}.")
        return signature

    def check_inputs(self, inputs, signature=None, max_batch=None):
        """Validates and normalises raw inputs; returns `{name: contiguous array}`.

        Raises:
            InputError (a ValueError): unknown or missing names, a wrong dtype kind or
                shape, different batch sizes, a batch over `max_batch`, NaN/Inf in
                float inputs, labels outside `[0, num_classes)`.
        """
        signature = self._signature(signature)
        spec = self._runners[signature].spec
        if not isinstance(inputs, dict):
            raise InputError(f"inputs must be a dict {{name: array}}, got "
                             f"{type(inputs).__name__}.")
        expected = [t["name"] for t in spec["inputs"]]
        unknown = [k for k in inputs if k not in expected]
        missing = [k for k in expected if k not in inputs]
        if unknown or missing:
            raise InputError(f"Signature {signature!r} takes inputs {expected}; got "
                             f"{sorted(inputs)} (unknown: {unknown}, missing: {missing}).")
        out, batch = {}, None
        for t in spec["inputs"]:
            name, want = t["name"], t["shape"]
            x = np.asarray(inputs[name])
            kind = np.dtype(t["dtype"]).kind
            if kind == "f" and x.dtype.kind not in "f":
                raise InputError(f"Input {name!r} must hold floats ({t['dtype']}), got dtype "
                                 f"{x.dtype}.")
            if kind in "iu" and x.dtype.kind not in "iu":
                raise InputError(f"Input {name!r} must hold integers ({t['dtype']}), got dtype "
                                 f"{x.dtype}.")
            if x.ndim != len(want) or any(w not in (-1, s)
                                          for w, s in zip(want, x.shape, strict=True)):
                raise InputError(f"Input {name!r} must have shape {want} (-1: batch), got "
                                 f"{list(x.shape)}.")
            if x.shape[0] < 1:
                raise InputError(f"Input {name!r} has an empty batch; send at least one row.")
            if batch is not None and x.shape[0] != batch:
                raise InputError(f"All inputs must have the same batch size; {name!r} has "
                                 f"{x.shape[0]}, another input has {batch}.")
            batch = x.shape[0]
            if max_batch is not None and batch > max_batch:
                raise InputError(f"Batch size {batch} of input {name!r} is over the limit of "
                                 f"{max_batch} per request.")
            if kind == "f":
                x = x.astype(t["dtype"], copy=False)
                if not np.isfinite(x).all():
                    raise InputError(f"Input {name!r} holds NaN or Inf values; all values must "
                                     f"be finite.")
                if t.get("role") == "noise":
                    noise = self.manifest.get("noise") or {"low": 0.0, "high": 1.0}
                    low, high = float(noise["low"]), float(noise["high"])
                    if x.size and (x.min() < low or x.max() >= high):
                        raise InputError(f"Input {name!r} holds noise in [{x.min()}, "
                                         f"{x.max()}]; noise must be in [{low}, {high}).")
            elif t.get("role") == "label":
                if x.size and (x.min() < 0 or x.max() >= (self.num_classes or 0)):
                    raise InputError(f"Input {name!r} holds labels in [{x.min()}, {x.max()}]; "
                                     f"allowed labels are 0 ... {(self.num_classes or 0) - 1}.")
                x = x.astype(t["dtype"])
            else:
                x = x.astype(t["dtype"])
            out[name] = np.ascontiguousarray(x)
        return out

    def run_checked(self, inputs, signature=None):
        """`run` without the input checks, for inputs from `check_inputs` (the server)."""
        return self._runners[self._signature(signature)](inputs)

    def run(self, inputs, signature=None):
        """Runs a signature on raw inputs.

        Args:
            inputs: dict `{input name: array}` with the manifest's names (e.g. `z`, and
                `labels` for a conditional GAN), batch first.
            signature: str or `None`. `generate`, `decode` or `encode`; defaults to the
                image-producing one.

        Returns:
            dict `{output name: float32 array}` (int8 outputs dequantized).
        """
        signature = self._signature(signature)
        return self.run_checked(self.check_inputs(inputs, signature), signature)

    def sample_latents(self, n, seed=None):
        """`(n, latent_dim)` float32 draws from the manifest's prior."""
        n = _check_n(n)
        return postprocess.sample_latents(self.manifest["latent"], n,
                                          np.random.default_rng(seed))

    def _takes_labels(self, signature):
        return any(t.get("role") == "label" for t in self._runners[signature].spec["inputs"])

    def _labels(self, n, labels, signature):
        """Labels for a signature by its inputs' roles: int32 `(n,)` or `None`."""
        if not self._takes_labels(signature):
            if labels is not None:
                raise InputError(f"labels are only for conditional models; signature "
                                 f"{signature!r} of this bundle has no input with role 'label'. "
                                 f"Pass labels=None.")
            return None
        return postprocess.normalize_labels(labels, n, self.num_classes, InputError)

    def generate(self, n, seed=None, labels=None):
        """Samples `n` images as uint8 `(n, H, W, C)` pixels.

        Works for every bundle whose image-producing signature (`generate` or
        `decode`) takes a `latent` input (GANs, VAEs) or a uniform `noise` input (the
        autoregressive PixelCNN) and, for conditional models, a `label` input: inputs
        are chosen by their role, whatever the model family.

        Args:
            n: int. Number of images.
            seed: int or `None`. Seed of the numpy latent (or noise) draw: same seed, same
                images.
            labels: int, sequence of `n` ints or `None` for conditional models: `None`
                cycles the classes, `np.arange(n) % num_classes`, as keras_aigc does.
        """
        return self._generate(n, seed, labels)[0]

    def _generate(self, n, seed, labels):
        """`(pixels, labels used or None)`, as `generate`."""
        n = _check_n(n)
        if self.primary not in ("generate", "decode"):
            raise InputError(f"generate() needs a 'generate' or 'decode' signature; the files "
                             f"loaded ({self.files}) have {self.signatures}.")
        rng = np.random.default_rng(seed)
        inputs = postprocess.random_inputs(self.manifest, self.signature_spec(self.primary),
                                           n, rng)
        labels = self._labels(n, labels, self.primary)
        if labels is not None:
            inputs[self._role_name(self.primary, "label")] = labels
        pixels = self.to_uint8(self.run(inputs, self.primary)[self._image_output(self.primary)])
        return pixels, labels

    @property
    def manifest_sha256(self):
        """sha256 of the bundle's `manifest.json` (which pins every model file's sha256)."""
        from keras_aigc_runtime.manifest import sha256_file

        return sha256_file(os.path.join(self.bundle_dir, "manifest.json"))

    def provenance_claims(self, seed=None, labels=None):
        """The claims stamped into PNGs: this bundle (name, manifest sha256), seed, labels."""
        from keras_aigc_runtime import __version__
        from keras_aigc_runtime.provenance import generation_claims

        return generation_claims(self.name, self.manifest_sha256, seed, labels,
                                 sha256_of="manifest.json", generator_name="keras-aigc",
                                 generator_version=__version__)

    def save_png(self, path, n=16, seed=None, labels=None, ncols=None, sign=None,
                 watermark=None):
        """Generates `n` images and writes them as one PNG grid with provenance.

        With `sign` (a credentials directory, see `keras-aigc credentials init`) the PNG
        carries a signed C2PA manifest (model, seed, labels, time; digital source type
        trainedAlgorithmicMedia). Without it, plain PNG text chunks with the same facts,
        which anyone can edit and which prove nothing.

        Args:
            path: str. The PNG to write (written whole or not at all).
            n: int. Number of images. Defaults to `16`.
            seed: int or `None`. Latent seed.
            labels: int, sequence of `n` ints or `None` (conditional models).
            ncols: int or `None`. Grid columns (default: about sqrt(n)).
            sign: str, `Credentials` or `None`. Signing credentials directory.
            watermark: int or `None`. A 32-bit payload embedded as the invisible DWT-DCT
                watermark (`keras_aigc_runtime.provenance.watermark`) before signing;
                grids under 128 px a side are upscaled first (the PNG is then larger).

        Returns:
            The uint8 images `(n, H, W, C)` (unmarked).

        Example:

        ```python
        g = keras_aigc_runtime.load("bundle/")
        g.save_png("samples.png", 16, seed=0, sign="creds/")
        ```
        """
        from keras_aigc_runtime.png import encode_png, image_grid
        from keras_aigc_runtime.provenance import stamp_png

        payload = None
        if watermark is not None:  # checked before generating
            from keras_aigc_runtime.provenance import watermark as wm

            payload = wm.parse_payload(watermark) if isinstance(watermark, str) else \
                watermark
            wm.payload_bits(payload)
        pixels, used = self._generate(n, seed, labels)
        claims = self.provenance_claims(seed, None if used is None else used.tolist())
        grid = image_grid(pixels, ncols)
        if payload is not None:
            grid, _ = wm.mark(grid, payload)
        data = stamp_png(encode_png(grid), claims, sign=sign)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return pixels

    def decode(self, z, labels=None):
        """VAE: latents `(n, dim)` [and labels, as in `generate`] -> uint8 mean images."""
        if "decode" not in self._runners:
            raise InputError(f"decode() needs a VAE bundle with a 'decode' signature; this one "
                             f"has {self.signatures}.")
        inputs = {self._role_name("decode", "latent"): z}
        labels = self._labels(len(np.asarray(z)), labels, "decode")
        if labels is not None:
            inputs[self._role_name("decode", "label")] = labels
        out = self.run(inputs, "decode")
        return self.to_uint8(out[self._image_output("decode")])

    def encode(self, x, labels=None):
        """VAE: images [and, for conditional models, their labels] -> `{"loc": ...,
        "scale": ...}` of the posterior.

        `x` is uint8 pixels (mapped back to `output.value_range`) or floats already in
        that range, shape `(n, H, W, C)`. Conditional models need the true labels.
        """
        if "encode" not in self._runners:
            raise InputError(f"encode() needs a VAE bundle with an 'encode' signature; this one "
                             f"has {self.signatures}.")
        x = np.asarray(x)
        if x.dtype == np.uint8:
            low, high = self.manifest["output"]["value_range"]
            x = x.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
        inputs = {self._role_name("encode", "image"): x}
        if self._takes_labels("encode"):
            if labels is None:
                raise InputError("encode() of a conditional model needs the images' labels: "
                                 f"{len(x)} ints in [0, {self.num_classes}).")
            inputs[self._role_name("encode", "label")] = self._labels(len(x), labels, "encode")
        elif labels is not None:
            raise InputError("labels are only for conditional models; signature 'encode' of "
                             "this bundle has no input with role 'label'. Pass labels=None.")
        return self.run(inputs, "encode")

    def log_prob(self, images, labels=None):
        """Exact log-likelihood in nats of each image, float32 `(n,)` (models with a
        `log_prob` signature: the PixelCNN).

        Args:
            images: `(n, H, W, C)` floats in the model's value range (for a PixelCNN,
                [0, 1]: pixels of 8-bit models are rounded to the nearest of 256 levels,
                those of binary (bernoulli) models must be exactly 0 or 1, as
                `PixelCNN.log_likelihood` requires), or uint8 pixels, which are mapped
                back with the inverse of `to_uint8` (what `generate` returns).
            labels: as in `generate`, for conditional models.
        """
        if "log_prob" not in self._runners:
            raise InputError(f"log_prob() needs a 'log_prob' signature; this bundle with "
                             f"backend={self.backend!r} has {self.signatures}.")
        x = np.asarray(images)
        if x.dtype == np.uint8:
            spec = self.manifest["output"]["to_uint8"]
            low, high = float(spec["low"]), float(spec["high"])
            x = (low + x.astype(np.float32) * ((high - low) / 255.0)).astype(np.float32)
        if x.ndim != 4:
            raise InputError(f"images must have shape (n, H, W, C) = (n, "
                             f"{', '.join(map(str, self.image_shape))}), got {list(x.shape)}.")
        inputs = {self._role_name("log_prob", "image"): x}
        labels = self._labels(len(x), labels, "log_prob")
        if labels is not None:
            inputs[self._role_name("log_prob", "label")] = labels
        out = self.run(inputs, "log_prob")
        name = next(t["name"] for t in self.signature_spec("log_prob")["outputs"]
                    if t.get("role") == "log_prob")
        return np.asarray(out[name], np.float32)

    def to_uint8(self, images):
        """The manifest's post-processing: float images -> uint8 pixels."""
        return postprocess.to_uint8(images, self.manifest["output"]["to_uint8"])

    def _role_name(self, signature, role):
        return next(t["name"] for t in self._runners[signature].spec["inputs"]
                    if t.get("role") == role)

    def _image_output(self, signature):
        outs = self._runners[signature].spec["outputs"]
        return next((t["name"] for t in outs if t.get("role") == "image"), outs[0]["name"])


def _check_n(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive int, got n={n!r}.")
    return int(n)


def _select(manifest, backend, variant):
    """`{signature: [(file entry, file signature)]}` for a backend and variant."""
    fmt = BACKENDS[backend]
    files = [f for f in manifest["files"] if f["format"] == fmt]
    by_path = {f["path"]: f for f in files}
    if variant in by_path:
        chosen = [by_path[variant]]
    else:
        quant = "none" if variant is None else variant
        if quant not in QUANTIZATIONS:
            raise ValueError(f"Unrecognized variant={variant!r}. Supported variants are a "
                             f"quantization {list(QUANTIZATIONS)} or a {fmt} file of the bundle "
                             f"{sorted(by_path)}.")
        chosen = [f for f in files if f["quantization"] == quant]
    if not chosen:
        available = sorted({f["quantization"] for f in files})
        raise ValueError(f"The bundle has no {fmt} file for backend={backend!r}, "
                         f"variant={variant!r}; its {fmt} variants are {available or 'none'} "
                         f"(formats in the bundle: "
                         f"{sorted({f['format'] for f in manifest['files']})}).")
    plan = {}
    for entry in chosen:
        for sig in entry["signatures"]:
            plan.setdefault(sig["name"], []).append((entry, sig))
    return plan


def _check_file_signature(entry, file_sig, logical, runner):
    """Compares what the manifest says of a model file with the file itself: tensor
    names, dtypes, the batch dimension and every fixed dimension. Raises ValueError."""
    where = f"{entry['path']!r} (signature {file_sig['name']!r})"
    actual = runner.io_spec()
    for kind in ("inputs", "outputs"):
        declared = file_sig[kind]
        if len(declared) != len(logical[kind]):
            raise ValueError(f"{MANIFEST} lists {len(declared)} {kind} for {where} but "
                             f"{len(logical[kind])} for the signature.")
        names = sorted(t["name"] for t in declared)
        if names != sorted(actual[kind]):
            raise ValueError(f"{MANIFEST} says {where} has {kind} {names}; the file has "
                             f"{sorted(actual[kind])}. The manifest does not describe this "
                             f"file: re-export the bundle.")
        for t, lt in zip(declared, logical[kind], strict=True):
            dtype, shape = actual[kind][t["name"]]
            if dtype != np.dtype(t["dtype"]).name:
                raise ValueError(f"{MANIFEST} says {kind[:-1]} {t['name']!r} of {where} is "
                                 f"{t['dtype']}; the file has {dtype}.")
            want = [file_sig["batch_size"]] + list(lt["shape"][1:])
            if len(shape) != len(want) or any(
                    a is not None and a != w and not (w == -1 and a in (-1, 1))
                    for a, w in zip(shape, want, strict=True)):
                raise ValueError(f"{MANIFEST} says {kind[:-1]} {t['name']!r} of {where} has "
                                 f"shape {want} (-1: any batch); the file has {shape}.")


def load(bundle_dir, backend="onnx", variant=None, verify="used", num_threads=None,
         providers=None, inter_op_num_threads=None, public_key=None):
    """Loads an export bundle for TensorFlow-free inference.

    Args:
        bundle_dir: str. Directory written by `keras_aigc.export.export_bundle`.
        backend: str. `"onnx"` (ONNX Runtime) or `"tflite"` (LiteRT). Defaults to `"onnx"`.
        variant: str or `None`. Quantization of the files to use (`"none"`, `"float16"`,
            `"dynamic_int8"`, `"int8"`) or one file's `path` from the manifest.
            Defaults to fp32 (`"none"`).
        verify: str. `"used"` checks the sha256 of the files this backend loads,
            `"all"` of every file in the manifest (a trimmed serving copy of a bundle
            may lack the SavedModel). Defaults to `"used"`.
        num_threads: int or `None`. ONNX Runtime intra-op threads / LiteRT threads.
        providers: list or `None`. ONNX Runtime providers; defaults to CUDA (with
            `cudnn_conv_algo_search=HEURISTIC`) when available, else CPU.
        inter_op_num_threads: int or `None`. ONNX Runtime inter-op threads.
        public_key: `None`, or an Ed25519 public key (PEM file path, PEM bytes or a
            `cryptography` key) to require a valid `manifest.json.sig` (written by
            `keras-aigc export --sign-key`); a missing or wrong signature raises
            `ValueError` before anything is loaded.

    Returns:
        A `Generator`.

    Example:

    ```python
    g = keras_aigc_runtime.load("bundle/", backend="tflite", variant="int8")
    pixels = g.generate(16, seed=0)
    ```
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unrecognized backend={backend!r}. Supported backends are: "
                         f"{list(BACKENDS)}.")
    if verify not in ("used", "all"):
        raise ValueError(f"Unrecognized verify={verify!r}. Supported values are: "
                         f"['used', 'all'].")
    bundle_dir = os.fspath(bundle_dir)
    if not os.path.isdir(bundle_dir):
        raise FileNotFoundError(f"bundle_dir={bundle_dir!r} is not a directory.")
    manifest = load_manifest(bundle_dir, check_files=verify == "all", public_key=public_key)
    plan = _select(manifest, backend, variant)
    runners, files, cache = {}, [], {}
    for name, parts in plan.items():
        loaded = []
        for entry, file_sig in parts:
            path = check_path(bundle_dir, entry["path"])
            if entry["path"] not in files:
                check_file(bundle_dir, entry)
                files.append(entry["path"])
            if backend == "onnx":
                if path not in cache:
                    from keras_aigc_runtime.onnx_backend import OnnxRunner

                    cache[path] = OnnxRunner(path, providers=providers,
                                             intra_op_num_threads=num_threads,
                                             inter_op_num_threads=inter_op_num_threads)
                runner = cache[path]
            else:
                from keras_aigc_runtime.litert_backend import LiteRTRunner

                runner = LiteRTRunner(path, file_sig["key"], num_threads=num_threads)
            _check_file_signature(entry, file_sig, manifest["signatures"][name], runner)
            loaded.append((file_sig["batch_size"], file_sig, runner))
        runners[name] = _SignatureRunner(name, manifest["signatures"][name], loaded)
    quant = plan and next(iter(plan.values()))[0][0]["quantization"]
    logger.info("Loaded bundle %s (%s) with %s: %s", bundle_dir, manifest["name"], backend, files)
    return Generator(bundle_dir, manifest, backend, quant, runners, files)
