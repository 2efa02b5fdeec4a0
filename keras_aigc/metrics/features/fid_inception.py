"""The standard FID network: the 2015-12-05 TensorFlow Inception graph as a Keras model."""

import hashlib
import os

import numpy as np

from keras_aigc.metrics.features import _images

WEIGHTS_ENV = "KERAS_AIGC_FID_WEIGHTS"
WEIGHTS_SHA256 = "1e4c8cc47221a12387833e52b242e7f53be5273d2a0991ee0464ef8d526e5867"
# The graph's weights as converted and published by pytorch-fid (a PyTorch state dict; the
# file name carries the first 8 hex digits of its sha256, the torch.hub convention).
RELEASE_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
RELEASE_SHA256_PREFIX = "6726825d"
NETWORK_NAME = "fid_inception_2015_12_05"
PREPROCESSING = "tf1_bilinear_299_x-128/128"


def _sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def missing_weights_message(searched=None):
    where = f" (searched: {searched})" if searched else ""
    return (
        f"The FID Inception weights are not available{where}. Provide them in one of three "
        f"ways: (1) pass weights=PATH (CLI: --fid-weights PATH) to the weights.npz of the "
        f"2015-12-05 TF Inception graph; (2) set the environment variable {WEIGHTS_ENV}=PATH; "
        f"(3) on a machine with network access, pass download=True (CLI: --fid-download) to "
        f"fetch the converted release {RELEASE_URL} (sha256 checked; converting it needs "
        f"`pip install torch`). Nothing was downloaded."
    )


def resolve_weights(weights=None):
    """The weights file to use: `weights`, else `$KERAS_AIGC_FID_WEIGHTS`; None if neither."""
    if weights is not None:
        if not os.path.isfile(weights):
            raise FileNotFoundError(
                f"FID Inception weights file not found: weights={weights!r}. "
                + missing_weights_message())
        return weights
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(
                f"{WEIGHTS_ENV}={env!r} does not point to a file. " + missing_weights_message())
        return env
    return None


def weights_available(weights=None):
    """True when `FIDInception(weights)` would find weights without downloading."""
    try:
        return resolve_weights(weights) is not None
    except FileNotFoundError:
        return False


def _download_release(cache_dir):
    """Fetches pytorch-fid's converted release, checks its sha256 and converts it to npz."""
    import urllib.request

    os.makedirs(cache_dir, exist_ok=True)
    npz_path = os.path.join(cache_dir, "fid_inception_2015_12_05.npz")
    if os.path.isfile(npz_path):
        return npz_path
    pth_path = os.path.join(cache_dir, os.path.basename(RELEASE_URL))
    if not os.path.isfile(pth_path):
        tmp = pth_path + ".part"
        try:
            urllib.request.urlretrieve(RELEASE_URL, tmp)  # noqa: S310 - fixed https URL
        except Exception as e:  # noqa: BLE001 - network errors come in many types
            if os.path.exists(tmp):
                os.remove(tmp)
            raise FileNotFoundError(
                f"Could not download {RELEASE_URL} ({e}). " + missing_weights_message()) from e
        digest = _sha256(tmp)
        if not digest.startswith(RELEASE_SHA256_PREFIX):
            os.remove(tmp)
            raise ValueError(
                f"The downloaded {RELEASE_URL} has sha256 {digest}, which does not start with "
                f"the published {RELEASE_SHA256_PREFIX}; the file was removed.")
        os.replace(tmp, pth_path)
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"Converting {pth_path} to Keras weights needs PyTorch: `pip install torch`, or "
            "provide an npz with weights=PATH.") from e
    state = torch.load(pth_path, map_location="cpu")
    arrays = _from_pytorch_fid(state)
    tmp = npz_path + ".part.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, npz_path)
    return npz_path


_TORCH_BLOCKS = {
    "Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
    "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4",
    "Mixed_5b": "mixed", "Mixed_5c": "mixed_1", "Mixed_5d": "mixed_2", "Mixed_6a": "mixed_3",
    "Mixed_6b": "mixed_4", "Mixed_6c": "mixed_5", "Mixed_6d": "mixed_6", "Mixed_6e": "mixed_7",
    "Mixed_7a": "mixed_8", "Mixed_7b": "mixed_9", "Mixed_7c": "mixed_10",
}
_TORCH_BRANCHES = {
    "A": {"branch1x1": "conv", "branch5x5_1": "tower.conv", "branch5x5_2": "tower.conv_1",
          "branch3x3dbl_1": "tower_1.conv", "branch3x3dbl_2": "tower_1.conv_1",
          "branch3x3dbl_3": "tower_1.conv_2", "branch_pool": "tower_2.conv"},
    "B": {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv", "branch3x3dbl_2": "tower.conv_1",
          "branch3x3dbl_3": "tower.conv_2"},
    "C": {"branch1x1": "conv", "branch7x7_1": "tower.conv", "branch7x7_2": "tower.conv_1",
          "branch7x7_3": "tower.conv_2", "branch7x7dbl_1": "tower_1.conv",
          "branch7x7dbl_2": "tower_1.conv_1", "branch7x7dbl_3": "tower_1.conv_2",
          "branch7x7dbl_4": "tower_1.conv_3", "branch7x7dbl_5": "tower_1.conv_4",
          "branch_pool": "tower_2.conv"},
    "D": {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1",
          "branch7x7x3_1": "tower_1.conv", "branch7x7x3_2": "tower_1.conv_1",
          "branch7x7x3_3": "tower_1.conv_2", "branch7x7x3_4": "tower_1.conv_3"},
    "E": {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
          "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv",
          "branch3x3dbl_2": "tower_1_conv_1", "branch3x3dbl_3a": "tower_1_mixed_conv",
          "branch3x3dbl_3b": "tower_1_mixed_conv_1", "branch_pool": "tower_2_conv"},
}


def _block_kind(torch_block):
    if torch_block.startswith("Conv2d"):
        return None
    return {"5": "A", "6": "C", "7": "E"}[torch_block[6]] if torch_block not in (
        "Mixed_6a", "Mixed_7a") else ("B" if torch_block == "Mixed_6a" else "D")


def _from_pytorch_fid(state):
    """Renames a pytorch-fid `FIDInceptionV3` state dict to this module's npz layout."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        block = _TORCH_BLOCKS.get(parts[0])
        if block is None or parts[-1] == "num_batches_tracked":
            continue
        kind = _block_kind(parts[0])
        if kind is None:
            node, layer, param = block, parts[1], parts[2]
        else:
            node, layer, param = f"{block}.{_TORCH_BRANCHES[kind][parts[1]]}", parts[2], parts[3]
        suffix = {("conv", "weight"): "weight", ("bn", "bias"): "beta",
                  ("bn", "running_mean"): "mean", ("bn", "running_var"): "var"}.get(
                      (layer, param))
        if suffix is not None:
            out[f"{node}.{suffix}"] = value.detach().cpu().numpy().astype(np.float32)
    return out


def tf1_resize_bilinear(images, size):
    """TF1 `resize_bilinear(align_corners=False)`: no half-pixel centers, no antialiasing."""
    import tensorflow as tf

    return tf.raw_ops.ResizeBilinear(images=tf.convert_to_tensor(images, tf.float32),
                                     size=[size, size], align_corners=False,
                                     half_pixel_centers=False)


def build_fid_inception(name="fid_inception"):
    """The 2015-12-05 Inception graph up to `pool_3`, as a functional Keras model.

    Input: `(B, 299, 299, 3)` float32 in `[-1, 1)`; output `(B, 2048)`. Layer names are
    the graph's node names with `.` replaced by `__` (`mixed_4__tower__conv_1`).
    """
    import keras

    layers = keras.layers

    def conv(x, node, filters, kernel, strides=1, padding="same"):
        lname = node.replace(".", "__")
        x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                          name=f"{lname}__conv")(x)
        x = layers.BatchNormalization(scale=False, epsilon=1e-3, name=f"{lname}__bn")(x)
        return layers.ReLU(name=f"{lname}__relu")(x)

    def avg_pool(x, node):
        # TF's SAME average pooling divides by the number of real (unpadded) inputs.
        return layers.AveragePooling2D(3, strides=1, padding="same", name=f"{node}__pool")(x)

    def block_a(x, n, pool_filters):
        b1 = conv(x, f"{n}.conv", 64, 1)
        b5 = conv(conv(x, f"{n}.tower.conv", 48, 1), f"{n}.tower.conv_1", 64, 5)
        b3 = conv(x, f"{n}.tower_1.conv", 64, 1)
        b3 = conv(conv(b3, f"{n}.tower_1.conv_1", 96, 3), f"{n}.tower_1.conv_2", 96, 3)
        bp = conv(avg_pool(x, n), f"{n}.tower_2.conv", pool_filters, 1)
        return layers.Concatenate(name=f"{n}__join")([b1, b5, b3, bp])

    def block_b(x, n):
        b3 = conv(x, f"{n}.conv", 384, 3, strides=2, padding="valid")
        bd = conv(conv(x, f"{n}.tower.conv", 64, 1), f"{n}.tower.conv_1", 96, 3)
        bd = conv(bd, f"{n}.tower.conv_2", 96, 3, strides=2, padding="valid")
        bp = layers.MaxPooling2D(3, strides=2, name=f"{n}__pool")(x)
        return layers.Concatenate(name=f"{n}__join")([b3, bd, bp])

    def block_c(x, n, c7):
        b1 = conv(x, f"{n}.conv", 192, 1)
        b7 = conv(x, f"{n}.tower.conv", c7, 1)
        b7 = conv(b7, f"{n}.tower.conv_1", c7, (1, 7))
        b7 = conv(b7, f"{n}.tower.conv_2", 192, (7, 1))
        bd = conv(x, f"{n}.tower_1.conv", c7, 1)
        bd = conv(bd, f"{n}.tower_1.conv_1", c7, (7, 1))
        bd = conv(bd, f"{n}.tower_1.conv_2", c7, (1, 7))
        bd = conv(bd, f"{n}.tower_1.conv_3", c7, (7, 1))
        bd = conv(bd, f"{n}.tower_1.conv_4", 192, (1, 7))
        bp = conv(avg_pool(x, n), f"{n}.tower_2.conv", 192, 1)
        return layers.Concatenate(name=f"{n}__join")([b1, b7, bd, bp])

    def block_d(x, n):
        b3 = conv(x, f"{n}.tower.conv", 192, 1)
        b3 = conv(b3, f"{n}.tower.conv_1", 320, 3, strides=2, padding="valid")
        b7 = conv(x, f"{n}.tower_1.conv", 192, 1)
        b7 = conv(b7, f"{n}.tower_1.conv_1", 192, (1, 7))
        b7 = conv(b7, f"{n}.tower_1.conv_2", 192, (7, 1))
        b7 = conv(b7, f"{n}.tower_1.conv_3", 192, 3, strides=2, padding="valid")
        bp = layers.MaxPooling2D(3, strides=2, name=f"{n}__pool")(x)
        return layers.Concatenate(name=f"{n}__join")([b3, b7, bp])

    def block_e(x, n, pool):
        b1 = conv(x, f"{n}.conv", 320, 1)
        b3 = conv(x, f"{n}.tower_conv", 384, 1)
        b3 = layers.Concatenate(name=f"{n}__tower_join")([
            conv(b3, f"{n}.tower_mixed_conv", 384, (1, 3)),
            conv(b3, f"{n}.tower_mixed_conv_1", 384, (3, 1))])
        bd = conv(x, f"{n}.tower_1_conv", 448, 1)
        bd = conv(bd, f"{n}.tower_1_conv_1", 384, 3)
        bd = layers.Concatenate(name=f"{n}__tower_1_join")([
            conv(bd, f"{n}.tower_1_mixed_conv", 384, (1, 3)),
            conv(bd, f"{n}.tower_1_mixed_conv_1", 384, (3, 1))])
        if pool == "max":
            # The graph's last block max-pools its side branch (the one before averages).
            p = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{n}__pool")(x)
        else:
            p = avg_pool(x, n)
        bp = conv(p, f"{n}.tower_2_conv", 192, 1)
        return layers.Concatenate(name=f"{n}__join")([b1, b3, bd, bp])

    inputs = keras.Input((299, 299, 3), name="image")
    x = conv(inputs, "conv", 32, 3, strides=2, padding="valid")
    x = conv(x, "conv_1", 32, 3, padding="valid")
    x = conv(x, "conv_2", 64, 3)
    x = layers.MaxPooling2D(3, strides=2, name="pool")(x)
    x = conv(x, "conv_3", 80, 1, padding="valid")
    x = conv(x, "conv_4", 192, 3, padding="valid")
    x = layers.MaxPooling2D(3, strides=2, name="pool_1")(x)
    x = block_a(x, "mixed", 32)
    x = block_a(x, "mixed_1", 64)
    x = block_a(x, "mixed_2", 64)
    x = block_b(x, "mixed_3")
    x = block_c(x, "mixed_4", 128)
    x = block_c(x, "mixed_5", 160)
    x = block_c(x, "mixed_6", 160)
    x = block_c(x, "mixed_7", 192)
    x = block_d(x, "mixed_8")
    x = block_e(x, "mixed_9", "avg")
    x = block_e(x, "mixed_10", "max")
    out = layers.GlobalAveragePooling2D(name="pool_3")(x)
    return keras.Model(inputs, out, name=name)


def load_fid_weights(model, path):
    """Sets every conv/BN of `build_fid_inception()` from the graph-named npz at `path`."""
    try:
        arrays = np.load(path)
        names = set(arrays.files)
    except Exception as e:  # noqa: BLE001 - numpy raises several types for a bad file
        raise ValueError(f"Could not read FID Inception weights from {path!r}: {e}") from e
    used = set()
    for layer in model.layers:
        lname = layer.name
        if lname.endswith("__conv"):
            key = lname[:-len("__conv")].replace("__", ".") + ".weight"
            if key not in names:
                raise ValueError(f"FID Inception weights {path!r} lack {key!r}.")
            w = np.transpose(arrays[key], (2, 3, 1, 0))
            if w.shape != tuple(layer.kernel.shape):
                raise ValueError(f"FID Inception weights {path!r}: {key!r} has shape "
                                 f"{arrays[key].shape}, expected (out, in, kh, kw) matching "
                                 f"{tuple(layer.kernel.shape)}.")
            layer.set_weights([w])
            used.add(key)
        elif lname.endswith("__bn"):
            node = lname[:-len("__bn")].replace("__", ".")
            keys = [f"{node}.beta", f"{node}.mean", f"{node}.var"]
            missing = [k for k in keys if k not in names]
            if missing:
                raise ValueError(f"FID Inception weights {path!r} lack {missing}.")
            layer.set_weights([arrays[k] for k in keys])
            used.update(keys)
    unused = names - used
    if unused:
        raise ValueError(f"FID Inception weights {path!r} hold arrays this network does not "
                         f"use, e.g. {sorted(unused)[:3]}: not the 2015-12-05 Inception graph.")


class FIDInception:
    """`pool_3` features (2048-d) of the 2015-12-05 TF Inception graph: the FID network.

    This is the network behind every published FID (Heusel et al. 2017, Lucic et al. 2018,
    TF-GAN, pytorch-fid, clean-fid), rebuilt as a Keras model, with the original graph's
    preprocessing: pixels in 0..255, grayscale tiled to 3 channels, TF1-style bilinear
    resize to 299x299 (`align_corners=False`, no half-pixel centers, no antialiasing),
    then `(x - 128) / 128`. Its numbers are comparable with the papers'.

    The weights are looked up at `weights`, then at `$KERAS_AIGC_FID_WEIGHTS`; with
    `download=True` (and only then) the converted release of pytorch-fid is fetched,
    sha256-checked and converted. Otherwise a missing file is an error naming the three
    ways; nothing is downloaded.

    Args:
        weights: str or None. Path of the graph-named `weights.npz` (376 arrays).
        batch_size: int. Images per forward pass (bounds the memory). Defaults to `50`.
        download: bool. Fetch the published converted weights when none are found.
            Defaults to `False`.
        cache_dir: str or None. Where a download goes; defaults to
            `$KERAS_HOME/keras_aigc/` (`~/.keras/keras_aigc/`).
        verbose: int. `1` shows a Keras progress bar for extractions of more than one
            batch. Defaults to `1`.

    Example:

    ```python
    extractor = keras_aigc.metrics.features.FIDInception(weights="weights.npz")
    feats = extractor(uint8_images, value_range=(0, 255))   # (N, 2048) float32
    ```

    Reference:
        Szegedy et al. Rethinking the Inception Architecture for Computer Vision, 2016.
        Heusel et al. GANs Trained by a Two Time-Scale Update Rule Converge to a Local
        Nash Equilibrium, 2017.
    """

    name = NETWORK_NAME
    dim = 2048
    input_size = 299
    preprocessing = PREPROCESSING

    def __init__(self, weights=None, batch_size=50, download=False, cache_dir=None,
                 verbose=1):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.batch_size = batch_size
        self.verbose = int(verbose)
        path = resolve_weights(weights)
        if path is None:
            if not download:
                raise FileNotFoundError(missing_weights_message(
                    f"weights=None, ${WEIGHTS_ENV} unset, download=False"))
            home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"),
                                                                  ".keras")
            path = _download_release(cache_dir or os.path.join(home, "keras_aigc"))
        self.weights_path = path
        self.model = build_fid_inception()
        load_fid_weights(self.model, path)
        import tensorflow as tf

        self._forward = tf.function(lambda x: self.model(x, training=False),
                                    reduce_retracing=True)

    def weights_sha256(self):
        """sha256 of the weights file (the cache key of reference statistics)."""
        return _sha256(self.weights_path)

    def preprocess(self, images, value_range=(0.0, 255.0)):
        """`(N, H, W, 1 or 3)` images in `value_range` -> the network's 299x299x3 input."""
        import tensorflow as tf

        x = _images.check_images(images)
        if x.shape[-1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got shape {x.shape}.")
        x = _images.rescale(x, _images.check_value_range(value_range), (0.0, 255.0))
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        if x.shape[1:3] != (self.input_size, self.input_size):
            x = tf1_resize_bilinear(x, self.input_size)
        return (tf.convert_to_tensor(x, tf.float32) - 128.0) / 128.0

    def __call__(self, images, value_range=(0.0, 255.0)):
        """`(N, 2048)` float32 `pool_3` features of images in `value_range`."""
        import keras

        x = _images.check_images(images)
        value_range = _images.check_value_range(value_range)
        n = len(x)
        bar = (keras.utils.Progbar(n, unit_name="image")
               if self.verbose and n > self.batch_size else None)
        out = np.empty((n, self.dim), np.float32)
        for i in range(0, n, self.batch_size):
            batch = self.preprocess(x[i:i + self.batch_size], value_range)
            out[i:i + len(batch)] = np.asarray(self._forward(batch))
            if bar is not None:
                bar.update(min(i + self.batch_size, n))
        return out
