"""Gather concurrent requests into one model call, run on one worker thread.

Torch inference on the CPU gains little from several Python threads and a model is not meant to be run by
two at once, so every model call goes through a single worker thread. While it runs, new requests queue
up; the next call takes all of them (up to ``max_batch`` documents), after waiting ``wait_ms`` for more
when the queue runs dry. The event loop never blocks on the model.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

__all__ = ["MicroBatcher", "Busy"]

log = logging.getLogger("ecpe.serve")


class Busy(RuntimeError):
    """Too many documents are waiting, or the server is stopping; the request should be retried later."""


@dataclass
class _Job:
    items: list[Any]
    key: Hashable
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Batches calls of ``fn(items, key) -> results`` (one result per item, in order).

    Jobs with the same ``key`` (e.g. threshold and whether the matrix is wanted) share a call. If a shared
    call raises, each of its jobs is retried alone, so one bad request fails only itself.
    """

    def __init__(self, fn: Callable[[Sequence[Any], Hashable], list[Any]], max_batch: int = 64,
                 wait_ms: float = 2.0, max_pending: int = 4096):
        self.fn = fn
        self.max_batch, self.wait, self.max_pending = max_batch, wait_ms / 1000.0, max_pending
        self.pending = 0  # documents queued or running
        self.calls = 0    # model calls made
        self.documents = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ---- life cycle (inside the running event loop) --------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecpe-model")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="ecpe-batcher")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        assert self._queue is not None
        while not self._queue.empty():
            job = self._queue.get_nowait()
            _settle(job.future, exc=Busy("server shutting down"))
        if self._executor is not None:  # let a running model call finish, without blocking the event loop
            await asyncio.to_thread(self._executor.shutdown, True)
        self._task = self._queue = self._executor = None

    async def run_alone(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on the model thread (e.g. a warm-up), in turn with the batches."""
        if self._executor is None:
            raise RuntimeError("batcher not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # ---- submitting ----------------------------------------------------------------------------------
    async def submit(self, items: Sequence[Any], key: Hashable = None) -> list[Any]:
        """Results for ``items``, computed in a shared model call. Raises :class:`Busy` when overloaded,
        or whatever ``fn`` raised for these items."""
        if self._queue is None:
            raise RuntimeError("batcher not started")
        items = list(items)
        if not items:
            return []
        if self.pending + len(items) > self.max_pending:
            raise Busy(f"{self.pending} documents are waiting; try again shortly")
        fut = asyncio.get_running_loop().create_future()
        self.pending += len(items)
        self._queue.put_nowait(_Job(items, key, fut))
        try:
            return await fut
        finally:
            self.pending -= len(items)

    # ---- the loop ------------------------------------------------------------------------------------
    async def _gather(self, jobs: list[_Job]) -> None:
        """Wait for a job, then add to ``jobs`` whatever else is queued, waiting up to ``wait`` for more."""
        assert self._queue is not None
        jobs.append(await self._queue.get())
        n = len(jobs[0].items)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while n < self.max_batch:
            if self._queue.empty():
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except (asyncio.TimeoutError, TimeoutError):
                    break
            else:
                job = self._queue.get_nowait()
            jobs.append(job)
            n += len(job.items)

    async def _loop(self) -> None:
        jobs: list[_Job] = []
        try:
            while True:
                jobs = []
                await self._gather(jobs)
                groups: dict[Hashable, list[_Job]] = {}
                for j in jobs:
                    if not j.future.done():  # the client went away
                        groups.setdefault(j.key, []).append(j)
                for key, group in groups.items():
                    try:
                        await self._run(key, group)
                    except asyncio.CancelledError:
                        raise
                    except BaseException as e:  # noqa: BLE001 - must never kill the loop
                        log.exception("batcher failure")
                        for j in group:
                            _settle(j.future, exc=e)
        except asyncio.CancelledError:
            for j in jobs:
                _settle(j.future, exc=Busy("server shutting down"))
            raise

    async def _call(self, items: list[Any], key: Hashable) -> list[Any]:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._executor, self.fn, items, key)
        self.calls += 1
        self.documents += len(items)
        if len(results) != len(items):
            raise RuntimeError(f"model call returned {len(results)} results for {len(items)} documents")
        return results

    async def _run(self, key: Hashable, group: list[_Job]) -> None:
        items = [it for j in group for it in j.items]
        try:
            results = await self._call(items, key)
        except Exception as e:
            if len(group) == 1:
                _settle(group[0].future, exc=e)
                return
            for j in group:  # find which request failed: retry each alone
                try:
                    r = await self._call(j.items, key)
                except Exception as e1:
                    _settle(j.future, exc=e1)
                else:
                    _settle(j.future, r)
            return
        s = 0
        for j in group:
            part = results[s:s + len(j.items)]
            s += len(j.items)
            _settle(j.future, part)


def _settle(fut: asyncio.Future, result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():  # cancelled: the client went away
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
