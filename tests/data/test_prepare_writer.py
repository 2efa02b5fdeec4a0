"""The TensorFlow-free shard writer, and executors that never import TensorFlow."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_aigc.data.prepare import writer


def _tf_example(rec):
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rec["image"]])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[rec["label"]])),
        "hash": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rec["sha"].encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


@pytest.mark.parametrize("label", [0, 1, 127, 128, 300, 2**40, -1])
@pytest.mark.parametrize("size", [0, 5, 127, 128, 70_000])
def test_example_bytes_equal_tensorflows_encoder(label, size):
    rng = np.random.default_rng(size)
    rec = {"sha": hashlib.sha256(str(size).encode()).hexdigest(), "label": label,
           "image": rng.integers(0, 256, size, dtype=np.uint8).tobytes()}
    ex = _tf_example(rec)
    mine = writer.example_bytes(rec)
    assert mine == ex.SerializeToString(deterministic=True)
    assert type(ex).FromString(mine) == ex


def test_shard_is_read_back_by_tf_data(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    recs = [{"sha": f"{i:064x}", "label": i % 3, "shape": (4, 4, 3),
             "image": rng.integers(0, 256, 48 + i, dtype=np.uint8).tobytes()}
            for i in range(20)]
    info = writer.write_shard(str(tmp_path), "train", 2, 5, recs)
    path = tmp_path / "train-00002-of-00005.tfrecord"
    assert info["file"] == path.name and info["records"] == 20
    assert info["per_class"] == {0: 7, 1: 7, 2: 6}
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left
    # TFRecordDataset checks both CRCs of every record.
    read = [bytes(x.numpy()) for x in tf.data.TFRecordDataset(str(path))]
    assert read == [_tf_example(r).SerializeToString(deterministic=True) for r in recs]


def test_missing_crc32c_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "google_crc32c", None)
    with pytest.raises(ImportError, match=r"pip install 'keras-aigc\[spark\]'"):
        writer.tfrecord_frame(b"x")


def test_executor_functions_run_without_tensorflow(tmp_path):
    """What Spark ships to a Python worker runs there without importing TensorFlow, Keras
    or keras_aigc (a worker that imports them exceeds spark.python.worker.memory, spills
    every shuffle and spends seconds in each gc.collect)."""
    pytest.importorskip("pyspark")
    from PIL import Image
    from pyspark import cloudpickle

    from keras_aigc.data.prepare import inputs, job

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    params = job.make_params(image_size=32)
    items, _, _ = inputs.list_items(f"dir:{folder}")
    job.ship_by_value()

    def read(item):  # like the job's read stage
        return job._read(item, params)

    blob = cloudpickle.dumps((read, items, writer.write_shard, str(tmp_path)))
    code = (
        "import pickle, sys\n"
        "read, items, write, out = pickle.loads(sys.stdin.buffer.read())\n"
        "rows = [r for it in items for r in read(it)]\n"
        "info = write(out, 'train', 0, 1, [r[1] for r in rows if r[0] == 'ok'])\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in ('tensorflow', 'keras', 'keras_aigc'))\n"
        "print(info['records'], [r[1] for r in rows if r[0] == 'skip'], heavy)\n")
    result = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                            cwd=str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode().split("\n")[0] == "3 ['unreadable'] []"
