"""Background loops that live as long as the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background(
    run_forever: Callable[[float], Coroutine[Any, Any, None]], interval_seconds: float
) -> AsyncIterator[None]:
    """Runs `run_forever(interval_seconds)` while the context is open (interval 0: not at all),
    and cancels it on the way out."""
    task = asyncio.create_task(run_forever(interval_seconds)) if interval_seconds > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
