"""Long requests (a video, a many-face explanation, a report) take at most workers - 1 workers, so
a short request (/v1/detect) is served while they run instead of waiting behind them (issue 34)."""

from __future__ import annotations

import threading

import anyio
import pytest

pytest.importorskip("fastapi")
from emodetect.serve.state import ServeConfig, ServeState  # noqa: E402


def test_a_short_request_is_served_while_long_ones_hold_the_others():
    state = ServeState(ServeConfig(workers=2))
    release, served_before_release = threading.Event(), []

    async def main() -> None:
        state.limiter = anyio.CapacityLimiter(2)
        async with anyio.create_task_group() as tasks:
            for _ in range(2):
                tasks.start_soon(state.run_long, lambda: release.wait(timeout=30))
            await anyio.sleep(0.2)
            short = anyio.Event()

            async def short_request() -> None:
                await state.run(lambda: None)
                short.set()

            tasks.start_soon(short_request)
            with anyio.move_on_after(5):
                await short.wait()
            served_before_release.append(short.is_set())
            release.set()

    anyio.run(main)
    # With `run` for the long jobs too, both workers are held and the short request waits 30 s.
    assert served_before_release == [True]
