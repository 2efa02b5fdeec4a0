"""DynamicBatcher in-process: merging rules, per-request results, errors, close()."""

import asyncio
import concurrent.futures

import numpy as np
import pytest

from keras_aigc_runtime.server.batcher import DynamicBatcher


def _run(coro):
    return asyncio.run(coro)


async def _serve(max_batch, delay, sizes, fn=None):
    runs = []
    executor = concurrent.futures.ThreadPoolExecutor(1)

    def double(inputs):
        runs.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    b = DynamicBatcher(fn or double, max_batch, delay, executor)
    b.start()
    try:
        reqs = [np.full((n, 1), i, np.float32) for i, n in enumerate(sizes)]
        outs = await asyncio.gather(*(b.submit({"x": r}) for r in reqs),
                                    return_exceptions=True)
    finally:
        await b.close()
        executor.shutdown()
    return reqs, outs, runs


def test_concurrent_requests_merge_up_to_max_batch_and_split_back():
    reqs, outs, runs = _run(_serve(8, 1.0, [1, 2, 3, 2, 4]))
    # 1+2+3+2 = 8 fills the first batch at once (no wait for the delay); 4 runs next.
    assert runs == [8, 4]
    for r, o in zip(reqs, outs, strict=True):
        np.testing.assert_array_equal(o["y"], r * 2)


def test_no_merging_when_batching_is_off():
    _, outs, runs = _run(_serve(1, 1.0, [1, 3, 1]))
    assert runs == [1, 3, 1]


def test_a_failed_run_fails_its_requests_only():
    calls = []

    def flaky(inputs):
        calls.append(len(inputs["x"]))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return {"y": inputs["x"]}

    _, outs, runs = _run(_serve(2, 0.0, [2, 1], flaky))
    assert isinstance(outs[0], RuntimeError) and outs[1]["y"].shape == (1, 1)


def test_submit_after_close_is_refused():
    async def main():
        executor = concurrent.futures.ThreadPoolExecutor(1)
        b = DynamicBatcher(lambda x: x, 4, 0.0, executor)
        b.start()
        await b.close()
        with pytest.raises(RuntimeError, match=r"shutting down"):
            await b.submit({"x": np.zeros((1, 1))})
        executor.shutdown()

    _run(main())


def test_two_instances_run_batches_concurrently():
    import threading

    async def main():
        executor = concurrent.futures.ThreadPoolExecutor(2)
        both_running = threading.Barrier(2, timeout=10)

        def fn(inputs):
            both_running.wait()  # returns only if two runs overlap
            return {"y": inputs["x"] + 1}

        b = DynamicBatcher(fn, 1, 0.0, executor, instances=2)
        b.start()
        try:
            outs = await asyncio.gather(b.submit({"x": np.zeros((1, 1))}),
                                        b.submit({"x": np.ones((1, 1))}))
        finally:
            await b.close()
            executor.shutdown()
        return outs

    outs = _run(main())
    assert [o["y"].item() for o in outs] == [1.0, 2.0]


# --- Issue 11: no request is ever stranded, bounded queue, deadlines, adaptive batching.

def _failing_stage(stage):
    """A batcher whose merge, run, split or metrics callback raises."""
    executor = concurrent.futures.ThreadPoolExecutor(1)

    def fn(inputs):
        if stage == "run":
            raise RuntimeError("run failed")
        if stage == "split":
            return {"y": inputs["x"][:1]}  # fewer rows than the batch
        return {"y": inputs["x"] * 2}

    b = DynamicBatcher(fn, 8, 0.05, executor,
                       on_batch=(lambda rows: 1 / 0) if stage == "on_batch" else None)
    if stage == "merge":
        def merge(live):
            raise ValueError("merge failed")
        b._merge = merge
    return b, executor


@pytest.mark.parametrize("stage", ["merge", "run", "split", "on_batch"])
def test_a_failure_at_any_stage_resolves_every_future(stage):
    async def main():
        b, executor = _failing_stage(stage)
        b.start()
        try:
            outs = await asyncio.wait_for(asyncio.gather(
                *(b.submit({"x": np.full((2, 1), i, np.float32)}) for i in range(3)),
                return_exceptions=True), 10)
        finally:
            await asyncio.wait_for(b.close(), 10)
            executor.shutdown()
        return outs

    outs = _run(main())
    assert len(outs) == 3
    if stage == "on_batch":  # a metrics failure is logged, requests still succeed
        assert all(o["y"].shape == (2, 1) for o in outs), outs
    else:
        assert all(isinstance(o, Exception) for o in outs), outs
        if stage in ("merge", "split"):
            from keras_aigc_runtime.server.batcher import BatchFailed
            assert all(isinstance(o, BatchFailed) for o in outs)


def test_requests_with_different_row_shapes_never_merge():
    # 161f78a concatenated them outside the try: the whole run hung for ever.
    runs = []

    def fn(inputs):
        runs.append(inputs["x"].shape)
        return {"y": inputs["x"].sum(axis=1, keepdims=True)}

    async def main():
        executor = concurrent.futures.ThreadPoolExecutor(1)
        b = DynamicBatcher(fn, 8, 0.05, executor)
        b.start()
        try:
            return await asyncio.wait_for(asyncio.gather(
                b.submit({"x": np.ones((1, 3), np.float32)}),
                b.submit({"x": np.ones((1, 5), np.float32)}),
                b.submit({"x": np.ones((2, 3), np.float32)})), 10)
        finally:
            await b.close()
            executor.shutdown()

    outs = _run(main())
    assert [o["y"].ravel().tolist() for o in outs] == [[3.0], [5.0], [3.0, 3.0]]
    assert sorted(runs) == [(1, 5), (3, 3)]


def test_queue_bound_and_deadline():
    import threading

    from keras_aigc_runtime.server.batcher import DeadlineExceeded, QueueFull

    release = threading.Event()

    def fn(inputs):
        release.wait(10)
        return {"y": inputs["x"]}

    async def main():
        executor = concurrent.futures.ThreadPoolExecutor(1)
        b = DynamicBatcher(fn, 1, 0.0, executor, max_queue=1)
        b.start()
        try:
            running = asyncio.ensure_future(b.submit({"x": np.zeros((1, 1))}, timeout=0.3))
            await asyncio.sleep(0.1)  # picked up: running in the executor
            queued = asyncio.ensure_future(b.submit({"x": np.zeros((1, 1))}, timeout=0.3))
            await asyncio.sleep(0)
            with pytest.raises(QueueFull, match=r"limit is 1"):
                await b.submit({"x": np.zeros((1, 1))})
            for fut in (running, queued):
                with pytest.raises(DeadlineExceeded, match=r"deadline"):
                    await fut
            release.set()
            out = await asyncio.wait_for(b.submit({"x": np.ones((1, 1))}), 10)
            assert out["y"].item() == 1.0
        finally:
            release.set()
            await b.close()
            executor.shutdown()

    _run(main())


def test_adaptive_batching_runs_at_once_and_merges_what_queued_meanwhile():
    import threading

    first_running, release = threading.Event(), threading.Event()
    runs = []

    def fn(inputs):
        runs.append(len(inputs["x"]))
        first_running.set()
        release.wait(10)
        return {"y": inputs["x"]}

    async def main():
        executor = concurrent.futures.ThreadPoolExecutor(1)
        b = DynamicBatcher(fn, 64, 0.0, executor)  # max_delay 0: adaptive (the default)
        b.start()
        try:
            first = asyncio.ensure_future(b.submit({"x": np.zeros((1, 1))}))
            # An idle model runs the first request at once, without a delay window.
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                None, first_running.wait, 10), 10)
            others = [asyncio.ensure_future(b.submit({"x": np.zeros((1, 1))}))
                      for _ in range(5)]
            await asyncio.sleep(0.05)
            release.set()
            await asyncio.wait_for(asyncio.gather(first, *others), 10)
        finally:
            release.set()
            await b.close()
            executor.shutdown()

    _run(main())
    assert runs == [1, 5]
