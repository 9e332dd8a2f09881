"""Background task helpers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has stopped; None and done tasks are fine."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def repeat(interval: float, action: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `action` every `interval` seconds, for ever; a failure is logged and the next run
    comes as usual."""
    while True:
        await asyncio.sleep(interval)
        try:
            await action()
        except Exception:
            log.exception("%s failed", what)
