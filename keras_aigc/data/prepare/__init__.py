"""`keras-aigc prepare`: image folders and datasets -> sharded TFRecords, on Apache Spark.

```python
from keras_aigc.data.prepare import prepare
prepare("dir:photos", "records/photos", image_size=64, master="local[2]")
ds = keras_aigc.data.load("records:records/photos", split="train", batch_size=64)
```
"""

from keras_aigc.data.prepare.job import DATASET_JSON, make_params, prepare, spark_session

__all__ = ["prepare", "make_params", "spark_session", "DATASET_JSON"]
