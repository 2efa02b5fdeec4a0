"""One task of the records sharding tests: `python records_shard_worker.py RECORDS OUT INDEX
[repeat]`.

Builds MultiWorkerMirroredStrategy from TF_CONFIG, distributes the `records:` dataset and
writes the labels (one unique label per record) this worker read: one epoch of the
auto-sharded dataset, or with `repeat` the first two passes of this worker's share of the
endless stream (every worker reads the same number of steps, enough for two passes of the
largest share).
"""

import json
import sys


def main():
    records, out, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
    repeat = sys.argv[4:] == ["repeat"]
    from keras_aigc.distribute import get_strategy

    strategy = get_strategy("multi_worker", timeout=120)
    from keras_aigc import data
    from keras_aigc.data import records as rec

    ds = data.load(f"records:{records}", batch_size=4, labels=True, shuffle=repeat, seed=1,
                   shuffle_buffer=5, repeat=repeat)
    policy = ds.options().experimental_distribute.auto_shard_policy
    seen, share = [], None
    if repeat:
        meta = rec.read_metadata(records)
        shards = meta["splits"]["train"]["shards"]
        workers = strategy.extended._num_workers  # noqa: SLF001 - the cluster size
        shares = [sum(s["records"] for s in shards[w::workers]) for w in range(workers)]
        share = shares[index]
        steps = -(-2 * max(shares) // (4 // workers))
        iterator = iter(strategy.experimental_distribute_dataset(ds))
        for _ in range(steps):
            _, labels = next(iterator)
            for part in strategy.experimental_local_results(labels):
                seen += [int(v) for v in part.numpy()]
    else:
        for _, labels in strategy.experimental_distribute_dataset(ds):
            for part in strategy.experimental_local_results(labels):
                seen += [int(v) for v in part.numpy()]
    with open(f"{out}.task{index}", "w") as f:
        json.dump({"labels": seen, "policy": int(policy), "share": share}, f)


if __name__ == "__main__":
    main()
