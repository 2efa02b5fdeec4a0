"""Inputs of `keras-aigc prepare`: list work items on the driver, read them on executors.

The driver lists only metadata (file paths, array lengths, labels); executors read and
decode the images. Numpy, Pillow and the standard library at module level only (shipped
to Spark executors by value); tensorflow-datasets and scikit-learn are imported lazily.
"""

import csv
import os
import zipfile

import numpy as np
from numpy.lib import format as npy_format

from keras_aigc.data.prepare import images as _images

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SCHEMES = ("dir", "npz", "tfds", "digits")
DIGITS_SIZE = 32
CHUNK = 1024  # array-source images per work item


def parse(spec):
    """`scheme:rest` -> `(scheme, rest)`, with a clear error for anything else."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"SOURCE must be a non-empty string, got {spec!r}. Supported: "
                         "dir:PATH, npz:PATH, tfds:NAME, digits.")
    scheme, _, rest = spec.partition(":")
    if scheme not in SCHEMES:
        raise ValueError(f"Unrecognized SOURCE {spec!r} (scheme {scheme!r}). Supported: "
                         "dir:PATH, npz:PATH, tfds:NAME, digits.")
    if scheme == "digits" and rest:
        raise ValueError(f"SOURCE {spec!r}: digits takes no argument; use 'digits'.")
    if scheme != "digits" and not rest:
        raise ValueError(f"SOURCE {spec!r} names nothing; use {scheme}:PATH.")
    return scheme, rest


def list_items(spec, labels_csv=None, data_dir=None):
    """Returns `(items, class_names, unlabeled)`.

    `items` are picklable work items for `read_item`; `unlabeled` lists files that have
    no label (top-level files next to class folders, or files missing from the CSV).
    """
    scheme, rest = parse(spec)
    if labels_csv is not None and scheme != "dir":
        raise ValueError(f"--labels-csv applies to dir: sources only, not {spec!r}.")
    if scheme == "dir":
        return _list_dir(spec, rest, labels_csv)
    if scheme == "npz":
        return _list_npz(spec, rest)
    if scheme == "tfds":
        return _list_tfds(spec, rest, data_dir)
    return [("digits", None, start, min(start + CHUNK, 1797)) for start in range(0, 1797, CHUNK)], \
        [str(i) for i in range(10)], []


def _list_dir(spec, root, labels_csv):
    if not os.path.isdir(root):
        raise FileNotFoundError(f"SOURCE {spec!r}: no such folder {os.path.abspath(root)!r}.")
    files = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.relpath(os.path.join(folder, name), root))
    files.sort()
    if not files:
        raise ValueError(f"SOURCE {spec!r}: found no images in {os.path.abspath(root)!r} "
                         f"(looked for {', '.join(IMAGE_EXTENSIONS)} files at any depth).")
    unlabeled = []
    if labels_csv is not None:
        table = _read_labels_csv(labels_csv, root)
        names = sorted(set(table.values()))
        index = {n: i for i, n in enumerate(names)}
        items = []
        for rel in files:
            key = os.path.normpath(rel)
            if key in table:
                items.append(("file", rel, os.path.join(root, rel), index[table[key]]))
            else:
                unlabeled.append(rel)
        return items, names, unlabeled
    nested = [f for f in files if os.sep in f]
    if not nested:
        return [("file", f, os.path.join(root, f), 0) for f in files], ["0"], []
    names = sorted({f.split(os.sep, 1)[0] for f in nested})
    index = {n: i for i, n in enumerate(names)}
    items = []
    for rel in files:
        if os.sep in rel:
            items.append(("file", rel, os.path.join(root, rel), index[rel.split(os.sep, 1)[0]]))
        else:
            unlabeled.append(rel)
    return items, names, unlabeled


def _read_labels_csv(path, root):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--labels-csv: no such file {os.path.abspath(path)!r}.")
    table = {}
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or (lineno == 1 and [c.strip().lower() for c in row] == ["path", "label"]):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise ValueError(f"--labels-csv {path!r} line {lineno}: expected 'path,label', "
                                 f"got {row!r}.")
            p = row[0].strip()
            if os.path.isabs(p):
                p = os.path.relpath(p, root)
            table[os.path.normpath(p)] = row[1].strip()
    if not table:
        raise ValueError(f"--labels-csv {path!r} has no 'path,label' rows.")
    return table


def _npz_lengths(spec, path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SOURCE {spec!r}: no such file {os.path.abspath(path)!r}.")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:
        raise ValueError(f"SOURCE {spec!r}: {path!r} is not a readable .npz ({e}).") from e
    with archive:
        keys = [k for k in ("x_train", "x_test") if k in archive.files]
        if not keys or any(k.replace("x_", "y_") not in archive.files for k in keys):
            raise ValueError(f"SOURCE {spec!r}: {path!r} needs the keras.datasets layout "
                             f"(x_train, y_train[, x_test, y_test]); found {sorted(archive.files)}.")
        labels = {k: np.asarray(archive[k.replace("x_", "y_")]).reshape(-1) for k in keys}
    lengths = {}
    with zipfile.ZipFile(path) as z:
        for k in keys:
            with z.open(k + ".npy") as f:  # the header only, not the array
                version = npy_format.read_magic(f)
                read = (npy_format.read_array_header_1_0 if version == (1, 0)
                        else npy_format.read_array_header_2_0)
                shape, _, _ = read(f)
            lengths[k] = shape[0]
            if shape[0] != len(labels[k]):
                raise ValueError(f"SOURCE {spec!r}: {k} has {shape[0]} images but "
                                 f"{k.replace('x_', 'y_')} has {len(labels[k])} labels.")
    return keys, lengths, labels


def _list_npz(spec, path):
    keys, lengths, labels = _npz_lengths(spec, path)
    items = [("npz", os.path.abspath(path), k, start, min(start + CHUNK, lengths[k]))
             for k in keys for start in range(0, lengths[k], CHUNK)]
    top = max(int(v.max()) for v in labels.values() if v.size)
    return items, [str(i) for i in range(top + 1)], []


def _list_tfds(spec, name, data_dir):
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError("The tfds: source needs tensorflow-datasets: "
                          "pip install tensorflow-datasets") from e
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        builder.download_and_prepare()
    except Exception as e:
        raise RuntimeError(
            f"SOURCE {spec!r}: tensorflow-datasets could not prepare {name!r}: "
            f"{type(e).__name__}: {str(e)[:300]}. Without a network, prepare it where there "
            "is one and pass --data-dir, or use dir:PATH or npz:PATH.") from e
    items = []
    for split, info in builder.info.splits.items():
        n = info.num_examples
        items += [("tfds", name, f"{split}[{s}:{min(s + CHUNK, n)}]", builder.data_dir, s)
                  for s in range(0, n, CHUNK)]
    label = builder.info.features["label"] if "label" in builder.info.features else None
    names = list(getattr(label, "names", []) or [])
    return items, names or ["0"], []


def read_item(item, params):
    """Yields `("ok", record)` or `("skip", reason, id, detail)` for one work item."""
    kind = item[0]
    if kind == "file":
        _, rel, path, label = item
        try:
            with open(path, "rb") as f:
                data = f.read()
            im = _images.open_image(data, params["max_pixels"])
            pixels = _images.process_pil(im, params)
            yield ("ok", _images.record(rel, label, pixels, params))
        except _images.Skip as s:
            yield ("skip", s.reason, rel, s.detail)
        except OSError as e:
            yield ("skip", _images.UNREADABLE, rel, f"{type(e).__name__}: {e}")
    elif kind == "npz":
        _, path, key, start, stop = item
        with np.load(path, allow_pickle=False) as archive:
            x = archive[key][start:stop]
            y = np.asarray(archive[key.replace("x_", "y_")]).reshape(-1)[start:stop]
        yield from _arrays(x, y, f"{key}/", start, params)
    elif kind == "digits":
        from PIL import Image
        from sklearn.datasets import load_digits

        _, _, start, stop = item
        bunch = load_digits()
        small = (bunch.images[start:stop] * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8)
        x = np.stack([np.asarray(Image.fromarray(im).resize((DIGITS_SIZE, DIGITS_SIZE),
                                                            Image.BILINEAR)) for im in small])
        yield from _arrays(x, bunch.target[start:stop], "digits/", start, params)
    elif kind == "tfds":
        import tensorflow_datasets as tfds

        _, name, split, data_dir, start = item
        ds = tfds.load(name, split=split, data_dir=data_dir, as_supervised=True)
        xs, ys = zip(*tfds.as_numpy(ds))
        yield from _arrays(np.stack(xs), np.asarray(ys), f"{split.split('[')[0]}/", start, params)
    else:  # pragma: no cover - items come from list_items
        raise ValueError(f"unknown work item {item!r}")


def _arrays(x, y, prefix, start, params):
    for i, (image, label) in enumerate(zip(x, y)):
        rid = f"{prefix}{start + i:09d}"
        try:
            if image.dtype != np.uint8:
                raise _images.Skip(_images.UNREADABLE, f"dtype {image.dtype}, expected uint8")
            pixels = _images.process_array(image, params)
            yield ("ok", _images.record(rid, int(label), pixels, params))
        except _images.Skip as s:
            yield ("skip", s.reason, rid, s.detail)
