"""Raw image sources: each returns uint8 NHWC arrays and integer labels per split.

A source spec is a string: ``digits``, ``mnist``, ``fashion_mnist``, ``npz:PATH``,
``tfds:NAME`` or ``dir:PATH``.
Sources never scale or shuffle; that is the job of :mod:`keras_aigc.data.loader`.
"""

import dataclasses
import os
import warnings

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DIGITS_SIZE = 32


@dataclasses.dataclass
class RawData:
    """What a source yields before preprocessing.

    Args:
        splits: dict. Split name -> `(images, labels)`, images uint8 `(N, H, W, C)`,
            labels int64 `(N,)`.
        class_names: list of str. One name per class index.
        skipped: list of str. Files the source could not read, with the reason.
    """

    splits: dict
    class_names: list
    skipped: list = dataclasses.field(default_factory=list)


def _digits(spec, image_size=None, **_):
    """scikit-learn's bundled 8x8 digits (1,797 images), upscaled to 32x32 by default.

    32 = 8 * 4 keeps every stride-2 convolution exact down to a 4x4 base. Upscaling is
    bilinear (not nearest) so that the images look like pen strokes, not blocks.
    `image_size=(8, 8)` keeps the native pixels (the quickstart demo trains on those).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError(
            "The `digits` source needs scikit-learn: pip install scikit-learn"
        ) from e
    from PIL import Image

    height, width = image_size or (DIGITS_SIZE, DIGITS_SIZE)
    bunch = load_digits()
    small = (bunch.images * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8)
    if (height, width) == small.shape[1:]:
        big = small[..., None]
    else:
        big = np.stack(
            [
                np.asarray(Image.fromarray(im).resize((width, height), Image.BILINEAR))
                for im in small
            ]
        )[..., None]
    labels = bunch.target.astype(np.int64)
    return RawData(splits={"all": (big, labels)}, class_names=[str(i) for i in range(10)])


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _npz(spec, path, **_):
    if not path:
        raise ValueError(f"Source '{spec}' names no file. Use npz:PATH, e.g. npz:mnist.npz.")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Source '{spec}': no such file {os.path.abspath(path)!r}. "
            "An npz source needs the keras.datasets layout "
            "(x_train, y_train, x_test, y_test)."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:
        raise ValueError(f"Source '{spec}': {path!r} is not a readable .npz file ({e}).") from e
    with archive:
        missing = [k for k in NPZ_KEYS if k not in archive.files]
        if missing:
            raise ValueError(
                f"Source '{spec}': {path!r} lacks the key(s) {missing}. Expected the "
                f"keras.datasets layout {list(NPZ_KEYS)}; found {sorted(archive.files)}."
            )
        splits = {}
        for split in ("train", "test"):
            x = np.asarray(archive[f"x_{split}"])
            y = np.asarray(archive[f"y_{split}"]).reshape(-1)
            splits[split] = (_as_nhwc_uint8(x, spec, f"x_{split}"), y.astype(np.int64))
            if len(y) != len(x):
                raise ValueError(
                    f"Source '{spec}': x_{split} has {len(x)} images but y_{split} has "
                    f"{len(y)} labels."
                )
    labels = np.concatenate([splits["train"][1], splits["test"][1]])
    num_classes = int(labels.max()) + 1 if labels.size else 0
    return RawData(splits=splits, class_names=[str(i) for i in range(num_classes)])


# name -> (environment variable, file in the Keras datasets cache, keras.datasets module)
KERAS_DATASETS = {
    "mnist": ("KERAS_AIGC_MNIST", "mnist.npz", "mnist"),
    "fashion_mnist": ("KERAS_AIGC_FASHION_MNIST", os.path.join("fashion-mnist",
                                                               "train-images-idx3-ubyte.gz"),
                      "fashion_mnist"),
}


def keras_datasets_dir():
    """Where `keras.datasets` caches files: `$KERAS_HOME/datasets` or `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def _tfds_prepared(name, data_dir=None):
    try:
        import tensorflow_datasets as tfds

        return tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:
        return False


def _keras_dataset(spec, data_dir=None, **_):
    """`mnist` / `fashion_mnist`, found in this order: the environment variable
    (`KERAS_AIGC_MNIST` / `KERAS_AIGC_FASHION_MNIST`, a keras.datasets-layout .npz), the
    Keras datasets cache, a prepared `tfds:NAME`, then a `keras.datasets` download."""
    env, cached, module = KERAS_DATASETS[spec]
    path = os.environ.get(env)
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Source '{spec}': {env}={path!r} is not a file; point it "
                                    "at a keras.datasets-layout .npz (x_train, y_train, x_test, "
                                    "y_test) or unset it.")
        return _npz(f"npz:{path}", path)
    cache = os.path.join(keras_datasets_dir(), cached)
    if spec == "mnist" and os.path.isfile(cache):
        return _npz(f"npz:{cache}", cache)
    if not os.path.isfile(cache) and _tfds_prepared(spec, data_dir):
        return _tfds(f"tfds:{spec}", spec, data_dir=data_dir)
    import keras

    try:  # reads the cache when it is there, else downloads into it
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, module).load_data()
    except Exception as e:
        raise FileNotFoundError(
            f"Source '{spec}': not found locally and the download failed "
            f"({type(e).__name__}: {str(e)[:200]}). Provide it one of three ways: set "
            f"{env}=/path/to/{spec}.npz (keras.datasets layout); put the keras.datasets "
            f"files in {os.path.dirname(cache)} (keras.datasets.{module}.load_data() on a "
            f"machine with a network writes them); or prepare tfds:{spec} with "
            "tensorflow-datasets and pass data_dir=.") from e
    splits = {"train": (_as_nhwc_uint8(x_train, spec, "x_train"), y_train.astype(np.int64)),
              "test": (_as_nhwc_uint8(x_test, spec, "x_test"), y_test.astype(np.int64))}
    return RawData(splits=splits, class_names=[str(i) for i in range(10)])


def _as_nhwc_uint8(x, spec, key):
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(
            f"Source '{spec}': {key} has shape {x.shape}; expected (N, H, W) or "
            "(N, H, W, 1|3) images."
        )
    if x.dtype != np.uint8:
        if np.issubdtype(x.dtype, np.floating) and x.size and x.max() <= 1.0 and x.min() >= 0:
            x = (x * 255.0).round()
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError(
                f"Source '{spec}': {key} has values in [{x.min()}, {x.max()}]; expected "
                "uint8 pixels in [0, 255] (or floats in [0, 1])."
            )
        x = x.astype(np.uint8)
    return x


def _tfds(spec, path, data_dir=None, **_):
    name = path
    if not name:
        raise ValueError(f"Source '{spec}' names no dataset. Use tfds:NAME, e.g. tfds:mnist.")
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(
            "The tfds: source needs tensorflow-datasets: pip install tensorflow-datasets"
        ) from e
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:
        raise ValueError(f"Source '{spec}': tensorflow-datasets has no dataset {name!r} ({e}).") from e
    try:
        builder.download_and_prepare()
    except Exception as e:
        raise RuntimeError(
            f"Source '{spec}': tensorflow-datasets could not download or prepare {name!r} "
            f"into {builder.data_dir!r}: {type(e).__name__}: {str(e)[:300]}. "
            "Without a network, prepare it on a machine that has one and pass data_dir=, "
            "or use a local source: npz:PATH (keras.datasets layout) or dir:PATH "
            "(an image folder)."
        ) from e
    splits = {}
    for split in builder.info.splits.keys():
        ds = builder.as_dataset(split=split, as_supervised=True)
        xs, ys = [], []
        for x, y in tfds.as_numpy(ds):
            xs.append(x)
            ys.append(y)
        splits[split] = (_as_nhwc_uint8(np.stack(xs), spec, split), np.asarray(ys, np.int64))
    label = builder.info.features.get("label") if hasattr(builder.info.features, "get") else None
    names = list(getattr(label, "names", []) or [])
    if not names:
        n = int(max(int(y.max()) for _, y in splits.values())) + 1
        names = [str(i) for i in range(n)]
    return RawData(splits=splits, class_names=names)


DEFAULT_MAX_IMAGE_PIXELS = 64 * 1024 * 1024
SKIP_KINDS = ("unreadable", "too large", "outside the root")


def _inside(root_real, path):
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _dir(spec, path, image_size=None, color_mode="auto", max_image_pixels=None, **_):
    """Images in class sub-folders (or at the top) of `path`.

    Unreadable files, images over `max_image_pixels` pixels (decompression bombs: a
    tiny file can claim 20000x10000 pixels) and symlinks that resolve outside `path`
    are skipped and listed in `RawData.skipped` as `"<path>: <kind> (<reason>)"`, kind
    one of `SKIP_KINDS`.
    """
    from PIL import Image, UnidentifiedImageError

    max_pixels = DEFAULT_MAX_IMAGE_PIXELS if max_image_pixels is None else int(max_image_pixels)
    if max_pixels < 1:
        raise ValueError(f"max_image_pixels must be >= 1, got {max_image_pixels!r}.")
    if not path:
        raise ValueError(f"Source '{spec}' names no folder. Use dir:PATH.")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Source '{spec}': no such folder {os.path.abspath(path)!r}.")
    root_real = os.path.realpath(path)
    skipped = []
    entries = sorted(os.listdir(path))
    class_dirs = []
    for d in entries:
        full = os.path.join(path, d)
        if os.path.isdir(full):
            if _inside(root_real, full):
                class_dirs.append(d)
            else:
                skipped.append(f"{full}: outside the root (a symlink to "
                               f"{os.path.realpath(full)!r}; not read as a class)")
    if class_dirs:
        groups = [(d, os.path.join(path, d)) for d in class_dirs]
    else:
        groups = [("0", path)]
    files, labels = [], []
    for label, (_, folder) in enumerate(groups):
        for root, _, names in sorted(os.walk(folder)):
            for name in sorted(names):
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    full = os.path.join(root, name)
                    if not _inside(root_real, full):
                        skipped.append(f"{full}: outside the root (a symlink to "
                                       f"{os.path.realpath(full)!r})")
                        continue
                    files.append(full)
                    labels.append(label)
    if not files:
        raise ValueError(
            f"Source '{spec}': found no images in {os.path.abspath(path)!r} (looked for "
            f"{', '.join(IMAGE_EXTENSIONS)} files, in class sub-folders or at the top)."
        )
    images, kept = [], []
    mode = None
    expected = None
    for f, label in zip(files, labels):
        try:
            with Image.open(f) as im:
                if im.size[0] * im.size[1] > max_pixels:  # before decoding a single pixel
                    skipped.append(f"{f}: too large ({im.size[0]}x{im.size[1]} pixels, over "
                                   f"max_image_pixels={max_pixels})")
                    continue
                im.load()
                if mode is None:
                    mode = _choose_mode(im, color_mode)
                im = im.convert(mode)
                if image_size is not None:
                    im = im.resize((image_size[1], image_size[0]), Image.BILINEAR)
                arr = np.asarray(im, np.uint8)
        except Image.DecompressionBombError as e:  # PIL's own limit, hit at open
            skipped.append(f"{f}: too large ({e})")
            continue
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            skipped.append(f"{f}: unreadable ({type(e).__name__}: {e})")
            continue
        if arr.ndim == 2:
            arr = arr[..., None]
        if expected is None:
            expected = (arr.shape, f)
        elif arr.shape != expected[0]:
            raise ValueError(
                f"Source '{spec}': image {f!r} has size {arr.shape[1]}x{arr.shape[0]} but "
                f"{expected[1]!r} has {expected[0][1]}x{expected[0][0]}. All images must "
                "have one size; pass image_size=(H, W) to resize them."
            )
        images.append(arr)
        kept.append(label)
    if skipped:
        warnings.warn(
            f"Source '{spec}': skipped {len(skipped)} file(s) (unreadable, too large or "
            f"outside the root): "
            + "; ".join(skipped[:5]),
            stacklevel=3,
        )
    if not images:
        raise ValueError(f"Source '{spec}': none of the {len(files)} image files could be read.")
    return RawData(
        splits={"all": (np.stack(images), np.asarray(kept, np.int64))},
        class_names=[g[0] for g in groups],
        skipped=skipped,
    )


def _choose_mode(im, color_mode):
    if color_mode == "grayscale":
        return "L"
    if color_mode == "rgb":
        return "RGB"
    if color_mode != "auto":
        raise ValueError(
            f"Unrecognized color_mode={color_mode!r}. Supported: 'auto', 'grayscale', 'rgb'."
        )
    return "L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"


SOURCES = {"digits": _digits, "mnist": _keras_dataset, "fashion_mnist": _keras_dataset,
           "npz": _npz, "tfds": _tfds, "dir": _dir}
KNOWN = "digits, mnist, fashion_mnist, npz:PATH, tfds:NAME, dir:PATH"


def parse_spec(spec):
    """Split ``scheme:rest`` into its parts, checking that the scheme is known."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(
            f"A data source must be a non-empty string, got {spec!r}. Known sources: "
            f"{KNOWN}."
        )
    scheme, _, rest = spec.partition(":")
    if scheme not in SOURCES:
        raise ValueError(
            f"Unrecognized data source {spec!r} (scheme {scheme!r}). Known sources: "
            f"{KNOWN}."
        )
    if scheme in ("digits", *KERAS_DATASETS) and rest:
        raise ValueError(f"Source {spec!r}: the {scheme} source takes no argument; use "
                         f"{scheme!r}.")
    return scheme, rest


def read_source(spec, data_dir=None, image_size=None, color_mode="auto", max_image_pixels=None):
    scheme, rest = parse_spec(spec)
    extra = {} if max_image_pixels is None else {"max_image_pixels": max_image_pixels}
    return SOURCES[scheme](
        spec, path=rest, data_dir=data_dir, image_size=image_size, color_mode=color_mode,
        **extra,
    )
