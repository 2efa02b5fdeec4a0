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
