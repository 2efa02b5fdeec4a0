"""`keras-aigc prepare` end to end on a real local[2] Spark session (one per module)."""

import hashlib
import io
import json
import os
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_aigc.data.prepare import dedup, images

SIZE = 64
PARAMS = dict(image_size=SIZE, min_size=32, validation_fraction=0.2, test_fraction=0.2,
              records_per_shard=8, num_partitions=2)
# Spark on a loaded 2-core machine: a prepare run can take minutes there (seconds idle).
SPARK_TIMEOUT = pytest.mark.timeout(3000)


@pytest.fixture(scope="module")
def spark():
    from keras_aigc.data.prepare import spark_session

    session = spark_session("local[2]", conf={"spark.ui.enabled": "false",
                                              "spark.ui.showConsoleProgress": "false",
                                              "spark.default.parallelism": "2"})
    yield session
    session.stop()


def smooth_image(rng, size=SIZE, mode="RGB"):
    """A random image of blobs (12x12 noise upsampled): photo-like low frequencies, so its
    pHash survives JPEG and resizing (6x6 noise leaves most DCT terms near the median)."""
    channels = 1 if mode == "L" else 3
    small = rng.integers(0, 256, (12, 12, channels), dtype=np.uint8)
    im = Image.fromarray(small[..., 0] if channels == 1 else small).resize((size, size),
                                                                          Image.BICUBIC)
    return im


def png_bytes(im):
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(side=20000):
    """A ~20 kB grayscale PNG that decodes to side*side pixels (400 M at 20,000)."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    z = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    raw = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw)
            + chunk(b"IEND", b""))


def processed_sha(path):
    """What the pipeline should compute for one file, without Spark."""
    with open(path, "rb") as f:
        im = images.open_image(f.read(), 89_478_485)
    params = dict(PARAMS, color_mode="auto", resize="crop")
    pixels = images.process_pil(im, params)
    return images.pixel_hash(pixels), images.phash(pixels)


def build_folder(root, seed=0, n_base=30, prefix="img"):
    """Plants the cases of the issue; returns the expectations."""
    rng = np.random.default_rng(seed)
    folders = ["cat/indoor", "cat/outdoor/deep", "dog", "bird/a/b/c"]
    base = []
    for i in range(n_base):
        folder = os.path.join(root, folders[i % len(folders)])
        os.makedirs(folder, exist_ok=True)
        if i == 0:
            im, ext = smooth_image(rng, mode="L"), ".png"  # grayscale
        elif i == 1:
            im = smooth_image(rng).convert("RGBA")
            alpha = np.full((SIZE, SIZE), 255, np.uint8)
            alpha[:8] = 0
            im.putalpha(Image.fromarray(alpha))
            ext = ".png"  # RGBA, composited over white
        else:
            im, ext = smooth_image(rng), ".png"
        path = os.path.join(folder, f"{prefix}{i:03d}{ext}")
        im.save(path)
        base.append(path)
    return base


def plant_everything(root):
    base = build_folder(root)
    # Exact duplicates: byte copies, and the same pixels as BMP in another class folder.
    shutil.copy(base[2], os.path.join(root, "dog", "copy_a.png"))
    shutil.copy(base[3], os.path.join(root, "cat", "indoor", "copy_b.png"))
    shutil.copy(base[3], os.path.join(root, "bird", "copy_c.png"))
    Image.open(base[4]).save(os.path.join(root, "dog", "same_pixels.bmp"))
    # Near duplicates: recompressed, resized, one-pixel edit.
    Image.open(base[5]).convert("RGB").save(os.path.join(root, "dog", "recompressed.jpg"),
                                            quality=80)
    Image.open(base[6]).resize((96, 96), Image.BICUBIC).save(
        os.path.join(root, "cat", "resized.png"))
    edited = np.array(Image.open(base[7]))
    edited[10, 10] = 255 - edited[10, 10]
    Image.fromarray(edited).save(os.path.join(root, "cat", "indoor", "one_pixel.png"))
    # Broken inputs.
    with open(os.path.join(root, "dog", "noise.jpg"), "wb") as f:
        f.write(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with open(os.path.join(root, "cat", "text.png"), "w") as f:
        f.write("this is not an image\n")
    data = png_bytes(smooth_image(np.random.default_rng(9)))
    with open(os.path.join(root, "dog", "truncated.png"), "wb") as f:
        f.write(data[: len(data) * 6 // 10])
    with open(os.path.join(root, "bird", "bomb.png"), "wb") as f:
        f.write(bomb_png())
    Image.new("RGB", (16, 16), (200, 10, 10)).save(os.path.join(root, "dog", "tiny.png"))
    Image.new("RGB", (64, 64)).save(os.path.join(root, "top_level.png"))  # no class folder
    return base


def read_shards(out, meta):
    import tensorflow as tf

    seen = {}
    for split, info in meta["splits"].items():
        for shard in info["shards"]:
            path = os.path.join(out, shard["file"])
            with open(path, "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == shard["sha256"]
            n = 0
            for raw in tf.data.TFRecordDataset(path):
                ex = tf.train.Example.FromString(raw.numpy())
                sha = ex.features.feature["hash"].bytes_list.value[0].decode()
                pixels = np.asarray(Image.open(io.BytesIO(
                    ex.features.feature["image"].bytes_list.value[0])))
                assert images.pixel_hash(pixels) == sha
                assert sha not in seen, f"{sha} appears in two shards"
                seen[sha] = (split, shard["file"], int(ex.features.feature["label"]
                                                        .int64_list.value[0]))
                n += 1
            assert n == shard["records"]
    return seen


def expected_splits(base, cluster_members=()):
    out = {}
    for path in base:
        sha, _ = processed_sha(path)
        out[sha] = images.split_of(sha, 0.2, 0.2)
    return out


@pytest.mark.slow
@SPARK_TIMEOUT
def test_prepare_end_to_end_counts_and_shards(spark, tmp_path):
    from keras_aigc.data.prepare import prepare

    root = tmp_path / "photos"
    base = plant_everything(str(root))
    out = str(tmp_path / "records")
    meta = prepare(f"dir:{root}", out, spark=spark, **PARAMS)

    assert meta["dropped"] == {
        "unreadable": 2, "truncated": 1, "decompression_bomb": 1, "too_small": 1,
        "unlabeled": 1, "exact_duplicate": 4, "near_duplicate": 3,
    }
    assert meta["class_names"] == ["bird", "cat", "dog"]
    assert meta["image_shape"] == [SIZE, SIZE, 3]
    assert meta["num_inputs"] == 30 + 4 + 3 + 5 + 1
    assert meta["near_duplicate_clusters"]["clusters"] == 3
    assert meta["near_duplicate_clusters"]["size_histogram"] == {"2": 3}
    # The near duplicates' clusters decide the split of the kept image: for each planted
    # pair, the cluster hash is the smaller of the two pixel hashes.
    near = {5: "dog/recompressed.jpg", 6: "cat/resized.png", 7: "cat/indoor/one_pixel.png"}
    expected = {}
    for i, path in enumerate(base):
        sha, ph = processed_sha(path)
        cluster = sha
        if i in near:
            other, other_ph = processed_sha(os.path.join(root, near[i]))
            assert bin(ph ^ other_ph).count("1") <= 4
            cluster = min(sha, other)
            sha = cluster  # the smaller hash is the one kept
        expected[sha] = images.split_of(cluster, 0.2, 0.2)
    seen = read_shards(out, meta)
    assert {k: v[0] for k, v in seen.items()} == expected
    for split in ("train", "validation", "test"):
        n = sum(1 for s in expected.values() if s == split)
        assert meta["splits"][split]["num_examples"] == n
        assert sum(meta["splits"][split]["per_class"].values()) == n
        assert len(meta["splits"][split]["shards"]) == max(1, -(-n // 8)) if n else True
    # Labels come from the first-level folder (nested folders included).
    labels = {processed_sha(p)[0]: ["bird", "cat", "dog"].index(
        os.path.relpath(p, root).split(os.sep)[0]) for p in base}
    for sha, (_, _, label) in seen.items():
        if sha in labels:
            assert label == labels[sha]
    names = sorted(os.listdir(out))
    assert names[-1] == "dataset.json" or "dataset.json" in names
    assert not [n for n in names if n.endswith(".tmp")]
    assert meta["splits"]["train"]["shards"][0]["file"].startswith("train-00000-of-")

    # Idempotent: the same parameters rewrite the same bytes, and nothing else is left.
    before = open(os.path.join(out, "dataset.json")).read()
    prepare(f"dir:{root}", out, spark=spark, **PARAMS)
    assert open(os.path.join(out, "dataset.json")).read() == before
    assert sorted(os.listdir(out)) == names
    # Different shard sizes replace the old shards (no stale file survives).
    meta2 = prepare(f"dir:{root}", out, spark=spark, **dict(PARAMS, records_per_shard=1000))
    files = {s["file"] for v in meta2["splits"].values() for s in v["shards"]}
    assert sorted(os.listdir(out)) == sorted(files | {"dataset.json"})


@pytest.mark.slow
@SPARK_TIMEOUT
def test_split_stability_and_clusters_never_straddle(spark, tmp_path):
    from keras_aigc.data.prepare import prepare

    root = tmp_path / "photos"
    base = build_folder(str(root), seed=3, n_base=40)
    # Near-duplicate pairs kept together (near_duplicates="keep").
    pairs = []
    for i in range(2, 12):  # base[1] is RGBA: its alpha-free copy is not a near duplicate
        src = base[i]
        dst = os.path.join(os.path.dirname(src), f"near{i}.png")
        edited = np.array(Image.open(src).convert("RGB"))
        edited[i, 2 * i] = 255 - edited[i, 2 * i]  # a one-pixel edit
        Image.fromarray(edited).save(dst)
        pairs.append((src, dst))
    opts = dict(PARAMS, near_duplicates="keep")
    meta = prepare(f"dir:{root}", str(tmp_path / "a"), spark=spark, **opts)
    first = {k: v[0] for k, v in read_shards(str(tmp_path / "a"), meta).items()}
    assert len(first) == 50 and meta["dropped"]["near_duplicate"] == 0
    assert meta["near_duplicate_clusters"]["clusters"] == 10
    for a, b in pairs:
        assert first[processed_sha(a)[0]] == first[processed_sha(b)[0]]

    build_folder(str(root), seed=4, n_base=5, prefix="new")  # +10%
    meta = prepare(f"dir:{root}", str(tmp_path / "b"), spark=spark, **opts)
    second = {k: v[0] for k, v in read_shards(str(tmp_path / "b"), meta).items()}
    assert len(second) == 55
    assert {k: second[k] for k in first} == first


@pytest.mark.slow
@SPARK_TIMEOUT
def test_prepare_npz_matches_arrays(spark, tmp_path):
    from keras_aigc.data.prepare import prepare

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 32, 32), dtype=np.uint8)
    x[5] = x[4]  # one exact duplicate
    y = np.arange(40) % 4
    path = str(tmp_path / "small.npz")
    np.savez(path, x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    meta = prepare(f"npz:{path}", str(tmp_path / "out"), spark=spark, image_format="raw",
                   near_duplicates="off", min_size=8, validation_fraction=0.2,
                   test_fraction=0.2, num_partitions=2)
    assert meta["image_shape"] == [32, 32, 1]
    assert meta["dropped"]["exact_duplicate"] == 1
    assert sum(v["num_examples"] for v in meta["splits"].values()) == 39
    assert meta["class_names"] == ["0", "1", "2", "3"]


def test_dedup_finds_every_pair_within_distance_without_all_pairs():
    rng = np.random.default_rng(0)
    hashes = [int(v) for v in rng.integers(0, 2**63, 500, dtype=np.int64)]
    # Plant pairs at distance 0..4 and one at 5 (beyond max_distance=4).
    planted = {}
    for d in range(6):
        h = hashes[d]
        flip = h
        for bit in rng.choice(64, d, replace=False):
            flip ^= 1 << int(bit)
        planted[f"p{d}"] = (f"h{d:03d}", flip, d)
    members = [(f"h{i:03d}", h) for i, h in enumerate(hashes)]
    members += [(name, flip) for name, (_, flip, _) in planted.items()]
    widths = dedup.band_widths(4)
    assert sum(widths) == 64 and len(widths) == 5
    groups = {}
    for mid, h in members:
        for key in dedup.band_keys(h, widths):
            groups.setdefault(key, []).append((mid, h))
    pairs = set()
    for group in groups.values():
        pairs.update(dedup.close_pairs(group, 4))
    brute = {(a, b) for i, (a, ha) in enumerate(sorted(members)) for b, hb in
             sorted(members)[i + 1:] if bin(ha ^ hb).count("1") <= 4}
    assert pairs == brute
    for name, (orig, _, d) in planted.items():
        assert ((orig, name) in pairs or (name, orig) in pairs) == (d <= 4)
    assert dedup.clusters([("b", "c"), ("a", "b"), ("x", "y")]) == {
        "a": "a", "b": "a", "c": "a", "x": "x", "y": "x"}


def test_bad_options_name_the_problem(tmp_path):
    from keras_aigc.data.prepare import make_params, prepare

    with pytest.raises(ValueError, match="resize='zoom'"):
        make_params(resize="zoom")
    with pytest.raises(ValueError, match="image_format='gif'"):
        make_params(image_format="gif")
    with pytest.raises(ValueError, match="leave some data for train"):
        make_params(validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="Unrecognized SOURCE 'csv:x'"):
        prepare("csv:x", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        prepare(f"dir:{tmp_path}/missing", str(tmp_path))
    with pytest.raises(ValueError, match="labels-csv applies to dir"):
        prepare("digits", str(tmp_path), labels_csv="x.csv")


def test_skip_reasons_per_image():
    with pytest.raises(images.Skip) as e:
        images.open_image(bomb_png(12000), 89_478_485)
    assert e.value.reason == images.DECOMPRESSION_BOMB
    with pytest.raises(images.Skip) as e:
        images.open_image(b"GIF89a nonsense", 10**8)
    assert e.value.reason == images.UNREADABLE
    data = png_bytes(smooth_image(np.random.default_rng(0)))
    with pytest.raises(images.Skip) as e:
        images.open_image(data[: len(data) // 2], 10**8)
    assert e.value.reason == images.TRUNCATED
    im = images.open_image(data, 10**8)
    with pytest.raises(images.Skip) as e:
        images.process_pil(im, dict(min_size=65, color_mode="rgb", image_size=64,
                                    resize="crop"))
    assert e.value.reason == images.TOO_SMALL
    wide = Image.new("RGB", (100, 50), (255, 0, 0))
    padded = np.asarray(images.fit_size(wide, 40, "pad"))
    assert padded.shape == (40, 40, 3) and padded[0, 0].tolist() == [0, 0, 0]
    assert padded[20, 20].tolist() == [255, 0, 0]
    cropped = np.asarray(images.fit_size(wide, 40, "crop"))
    assert cropped.shape == (40, 40, 3) and (cropped == [255, 0, 0]).all()


def test_phash_invariances_and_split_function():
    ramp = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (64, 1, 3))
    assert images.phash(ramp) == images.phash(ramp[:, :, :1])
    assert images.phash(ramp) != images.phash(ramp.transpose(1, 0, 2))
    assert json.dumps(images.split_of("abc", 0.1, 0.1)) in ('"train"', '"validation"', '"test"')
