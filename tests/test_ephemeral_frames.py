"""Ephemeral frames (typing, presence) under back-pressure: they are the first to go, and they
never cost a socket its life or a notification its place."""

from __future__ import annotations

import asyncio

from app.metrics import Metrics
from app.realtime.connection import Connection, Outbound, State
from tests.ws_helpers import eventually

QUEUE = 16


class StuckSocket:
    """A peer that takes nothing until `release` is set."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.release = asyncio.Event()

    async def send_str(self, text: str) -> None:
        await self.release.wait()
        self.sent.append(text)

    async def close(self, *, code: int, message: bytes) -> None:
        return None


def connection(ws: StuckSocket, metrics: Metrics) -> Connection:
    async def no_backfill(user_id: int, after: int, upto: int) -> list[Outbound]:
        return []

    conn = Connection(
        ws,  # type: ignore[arg-type]
        user_id=1,
        session_id=1,
        queue_size=QUEUE,
        metrics=metrics,
        on_closed=lambda conn: None,
        backfill=no_backfill,
    )
    conn.go_live()
    return conn


def dropped(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("ws_ephemeral_dropped_total") or 0.0


async def test_ephemeral_frames_wait_behind_a_short_backlog_and_are_dropped_behind_a_long_one() -> (
    None
):
    metrics = Metrics()
    ws = StuckSocket()
    conn = connection(ws, metrics)
    conn.send_ephemeral(Outbound("typing-1", droppable=True))  # nothing ahead: queued
    for seq in range(1, QUEUE // 8 + 1):
        conn.offer(Outbound(f"n{seq}", seq, seq))
    conn.send_ephemeral(Outbound("typing-2", droppable=True))  # behind a backlog: dropped
    assert dropped(metrics) == 1
    ws.release.set()
    await eventually(lambda: len(ws.sent) == 3, what="the queue written out")
    assert ws.sent == ["typing-1", "n1", "n2"]
    assert conn.state is State.LIVE


async def test_a_full_queue_drops_ephemeral_frames_before_closing_the_socket() -> None:
    metrics = Metrics()
    ws = StuckSocket()
    conn = connection(ws, metrics)
    conn.offer(Outbound("typing", droppable=True))
    conn.offer(Outbound("presence", droppable=True))
    for seq in range(1, QUEUE - 1):
        conn.offer(Outbound(f"n{seq}", seq, seq))
    assert conn._queue is not None and len(conn._queue) == QUEUE
    # The queue is full: a notification makes room by dropping the ephemeral frames.
    assert conn.offer(Outbound("n-last", QUEUE - 1, QUEUE - 1))
    assert conn.state is State.LIVE
    assert dropped(metrics) == 2
    # Full of notifications only: the slow consumer is closed, as before (1013).
    conn.offer(Outbound("n-more", QUEUE, QUEUE))
    assert not conn.offer(Outbound("n-over", QUEUE + 1, QUEUE + 1))
    await asyncio.sleep(0)
    assert conn.state is State.CLOSING
    ws.release.set()
    await conn.finished()
