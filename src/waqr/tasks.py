"""Background tasks that never die silently.

Every long-lived task (watchdogs, event pumps, keepalive loops) is started through
:func:`spawn`: it keeps a strong reference until the task ends (asyncio only holds weak
ones, so an unreferenced task can vanish mid-flight) and logs any exception with the name
given at creation, instead of asyncio's "Task exception was never retrieved" at exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("waqr.tasks")
T = TypeVar("T")
_running: set[asyncio.Task[Any]] = set()


def _done(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error(
            "background task failed",
            exc_info=(type(error), error, error.__traceback__),
            extra={"task": task.get_name()},
        )


def spawn(coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
    task = asyncio.create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(_done)
    return task


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:  # already logged by _done
        return
