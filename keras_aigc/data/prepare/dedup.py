"""Near-duplicate search by locality-sensitive banding of 64-bit perceptual hashes.

With `max_distance + 1` bands, two hashes within Hamming distance `max_distance` agree
on at least one whole band (pigeonhole), so grouping by `(band index, band value)` and
comparing only inside groups finds every pair within the distance, with no all-pairs
comparison. Numpy and the standard library only (shipped to Spark executors by value).
"""

import numpy as np


def band_widths(max_distance, bits=64):
    """Bit widths of `max_distance + 1` near-equal bands covering `bits` bits."""
    n = int(max_distance) + 1
    if not 1 <= n <= bits:
        raise ValueError(f"max_distance must be in [0, {bits - 1}], got {max_distance!r}.")
    base, extra = divmod(bits, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def band_keys(h, widths):
    """`(band index, band value)` keys of a 64-bit hash."""
    keys = []
    shift = 64
    for i, w in enumerate(widths):
        shift -= w
        keys.append((i, (h >> shift) & ((1 << w) - 1)))
    return keys


def popcount64(x):
    """Number of set bits of each element of a uint64 array."""
    x = x.astype(np.uint64)
    count = np.zeros(x.shape, np.int64)
    for byte in range(8):
        count += _POP8[((x >> np.uint64(8 * byte)) & np.uint64(0xFF)).astype(np.int64)]
    return count


_POP8 = np.array([bin(i).count("1") for i in range(256)], np.int64)


def close_pairs(members, max_distance, chunk=2048):
    """Pairs `(a, b)` of ids (a < b) in one band group within Hamming `max_distance`.

    Args:
        members: list of `(id, hash)`.
    """
    members = sorted(set(members))
    if len(members) < 2:
        return []
    ids = [m[0] for m in members]
    hashes = np.array([m[1] for m in members], np.uint64)
    pairs = []
    for start in range(0, len(hashes), chunk):
        block = hashes[start:start + chunk]
        dist = popcount64(block[:, None] ^ hashes[None, :])
        rows, cols = np.nonzero(dist <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if i < c:
                pairs.append((ids[i], ids[c]))
    return pairs


def clusters(edges):
    """Connected components of an edge list, as `{node: smallest node of its component}`.

    Only nodes that have a near-duplicate appear; everything else is its own cluster.
    """
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            parent[rb] = ra
    return {node: find(node) for node in list(parent)}
