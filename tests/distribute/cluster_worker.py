"""One task of a test cluster: `python cluster_worker.py JOB.json TASK_INDEX`.

JOB.json: {"config": <run config>, "run_dir": str, "step_log": str or null,
"step_sleep": float}. Trains with `keras_aigc.cli.train.run` (the CLI's code path) and,
when asked, appends one JSON line per trained step: the GAN's step number
(`g_optimizer.iterations`) and the step's losses.
"""

import json
import os
import sys
import time


def main():
    job_path, index = sys.argv[1], int(sys.argv[2])
    with open(job_path) as f:
        job = json.load(f)
    from keras_aigc.cli import train

    extra = []
    if job.get("step_log") or job.get("step_sleep"):
        import keras

        class StepLog(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.last = None

            def on_train_batch_end(self, batch, logs=None):
                if job.get("step_sleep"):
                    time.sleep(job["step_sleep"])
                step = int(self.model.g_optimizer.iterations.numpy())
                if not job.get("step_log") or step == self.last:
                    return  # a step skipped on resume trains nothing
                self.last = step
                rec = {"step": step, "pid": os.getpid(),
                       **{k: float(v) for k, v in (logs or {}).items()}}
                with open(f"{job['step_log']}.task{index}", "a") as f:
                    f.write(json.dumps(rec) + "\n")

        extra.append(StepLog())
    train.run(job["config"], job["run_dir"], extra_callbacks=extra)


if __name__ == "__main__":
    main()
