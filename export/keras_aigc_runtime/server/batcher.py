"""Dynamic batching: concurrent requests merged into one model run, split back after."""

import asyncio
import collections
import time

import numpy as np


class ShuttingDown(RuntimeError):
    """Raised by `submit` once `close()` has begun (the server answers 503)."""


class _Item:
    __slots__ = ("inputs", "n", "future")

    def __init__(self, inputs, n, future):
        self.inputs, self.n, self.future = inputs, n, future


class DynamicBatcher:
    """Queues requests for one signature and runs them in merged batches.

    The first queued request opens a batch; requests arriving within `max_delay_s`
    of it join while the merged batch stays within `max_batch` rows. At most
    `instances` batches run at once on `executor` (Triton's `instance_group` count;
    1 by default); while they all run, new requests queue up and form the next
    batch. The event loop keeps accepting requests meanwhile. `max_batch <= 1`
    turns merging off.

    Args:
        fn: callable `{name: array} -> {name: array}` (already validated inputs).
        max_batch: int. Most rows per merged run.
        max_delay_s: float. Longest wait for more requests after the first one.
        executor: `concurrent.futures.Executor` running `fn`.
        on_batch: callable `(rows)` called for each run (metrics).
        instances: int. Concurrent runs (the executor needs as many workers).
    """

    def __init__(self, fn, max_batch, max_delay_s, executor, on_batch=None, instances=1):
        self.fn = fn
        self.max_batch = int(max_batch)
        self.max_delay_s = float(max_delay_s)
        self.executor = executor
        self.on_batch = on_batch
        self._items = collections.deque()
        self._event = asyncio.Event()
        self._closing = False
        self._task = None
        self._slots = asyncio.Semaphore(int(instances))
        self._running = set()

    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self):
        """Runs what is queued, then stops."""
        self._closing = True
        self._event.set()
        if self._task is not None:
            await self._task

    async def submit(self, inputs):
        if self._closing:
            raise ShuttingDown("The server is shutting down; retry on another replica.")
        n = len(next(iter(inputs.values())))
        fut = asyncio.get_running_loop().create_future()
        self._items.append(_Item(inputs, n, fut))
        self._event.set()
        return await fut

    async def _collect(self):
        first = self._items.popleft()
        batch, total = [first], first.n
        if self.max_batch <= 1:
            return batch
        deadline = time.monotonic() + self.max_delay_s
        while True:
            while self._items and total + self._items[0].n <= self.max_batch:
                item = self._items.popleft()
                batch.append(item)
                total += item.n
            if total >= self.max_batch or self._items or self._closing:
                return batch  # full, or the next request does not fit
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return batch
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def _loop(self):
        while True:
            if not self._items:
                if self._closing:
                    break
                self._event.clear()
                await self._event.wait()
                continue
            await self._slots.acquire()  # only this loop pops items: still non-empty
            batch = await self._collect()
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        if self._running:
            await asyncio.gather(*self._running)

    async def _run(self, batch):
        try:
            live = [b for b in batch if not b.future.done()]
            if not live:
                return
            names = list(live[0].inputs)
            merged = {k: live[0].inputs[k] if len(live) == 1 else
                      np.concatenate([b.inputs[k] for b in live]) for k in names}
            rows = sum(b.n for b in live)
            try:
                out = await asyncio.get_running_loop().run_in_executor(self.executor, self.fn,
                                                                       merged)
            except Exception as e:  # noqa: BLE001 - handed to every waiting request
                for b in live:
                    if not b.future.done():
                        b.future.set_exception(e)
                return
            if self.on_batch is not None:
                self.on_batch(rows)
            start = 0
            for b in live:
                part = {k: v[start:start + b.n] for k, v in out.items()}
                start += b.n
                if not b.future.done():
                    b.future.set_result(part)
        finally:
            self._slots.release()
