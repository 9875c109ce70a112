"""A Python function as a channel: called once per notification, sync or async, under a total timeout.

A sync function runs on a thread of the channel's own, never on the event loop: a slow one would stall
the worker's lease renewals and wakeups, and the deliveries of every other channel.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..models import Notification
from .channel import Outcome


class CallableDelivery:
    """Calls a function (sync or async) once per notification, concurrently; an exception is a failure.

    ``timeout_s`` bounds each call in all (the coroutine, or the sync function's run on its thread), well
    inside the worker's default 30 s lease; a call past it fails with ``TimeoutError`` and is retried. A
    sync function that overruns cannot be stopped: its thread runs on, still holding one of the
    ``concurrency`` threads, and the timeout of a call starts only once a thread is free for it.
    """

    def __init__(
        self,
        fn: Callable[[Notification], Awaitable[object] | object],
        *,
        timeout_s: float = 10.0,
        concurrency: int = 16,
    ) -> None:
        self.fn = fn
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        # async def functions, and objects whose __call__ is one, run on the loop; anything else on a thread
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
        self._threads: ThreadPoolExecutor | None = None  # made on the first sync call
        self._free = asyncio.Semaphore(concurrency)

    async def _one(self, n: Notification) -> None:
        if self._is_async:
            async with asyncio.timeout(self.timeout_s):
                result = self.fn(n)
                if inspect.isawaitable(result):
                    await result
            return
        await self._free.acquire()
        try:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="zsched-callable")
            call = contextvars.copy_context().run
            running = asyncio.get_running_loop().run_in_executor(self._threads, call, self.fn, n)
        except BaseException:
            self._free.release()
            raise
        # The slot is free again when the thread is, not when the wait times out: a thread cannot be stopped.
        running.add_done_callback(lambda _: self._free.release())
        async with asyncio.timeout(self.timeout_s):
            result = await asyncio.shield(running)
            if inspect.isawaitable(result):  # a plain function returning a coroutine (a lambda, a partial)
                await result

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Run the function for every notification; collect what each raised."""
        results = await asyncio.gather(*(self._one(n) for n in batch), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    async def aclose(self) -> None:
        """Let go of the threads (one still running an overdue call finishes on its own)."""
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
