"""One task of the FILE auto-shard test: `python records_shard_worker.py RECORDS OUT INDEX`.

Builds MultiWorkerMirroredStrategy from TF_CONFIG, distributes the `records:` dataset and
writes the labels (one unique label per record) this worker read in one epoch.
"""

import json
import sys


def main():
    records, out, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from keras_aigc.distribute import get_strategy

    strategy = get_strategy("multi_worker", timeout=120)
    from keras_aigc import data

    ds = data.load(f"records:{records}", batch_size=4, labels=True, shuffle=False)
    policy = ds.options().experimental_distribute.auto_shard_policy
    seen = []
    for _, labels in strategy.experimental_distribute_dataset(ds):
        for part in strategy.experimental_local_results(labels):
            seen += [int(v) for v in part.numpy()]
    with open(f"{out}.task{index}", "w") as f:
        json.dump({"labels": seen, "policy": int(policy)}, f)


if __name__ == "__main__":
    main()
