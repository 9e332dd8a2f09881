"""The ordering contract (DESIGN.md, "Delivery across processes") against a broker that
reorders, repeats and drops messages: every socket still ends with every notification exactly
once, in seq order, because sockets drop repeats and fill gaps from the store."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestServer

from app import keys
from app.config import Settings
from app.realtime.broker import InProcessBroker
from app.realtime.messages import BrokerMessage, CatchUp, Delivery, DeliveryGroup
from tests.conftest import Browser, BrowserFactory, MakeSettings
from tests.flows import accepted_booking
from tests.ws_helpers import Frame, metric, open_live, receive, receive_until, still_answers

COUNT = 120


class ChaosBroker(InProcessBroker):
    """Splits every delivery into one message per recipient, then repeats some, drops some,
    and hands them over in shuffled bursts. Deterministic for a given seed."""

    def __init__(self, seed: int, *, repeat: float, drop: float, burst: int = 7) -> None:
        super().__init__()
        self._random = random.Random(seed)
        self._repeat = repeat
        self._drop = drop
        self._burst = burst
        self._held: list[BrokerMessage] = []
        self.dropped = 0
        self.repeated = 0

    @property
    def lossless(self) -> bool:
        return False

    async def publish(self, message: BrokerMessage) -> None:
        if not isinstance(message, Delivery):
            self._hand_over([message])
            return
        for group in message.groups:
            for row in group.rows:
                piece = Delivery(
                    (
                        DeliveryGroup(
                            group.type,
                            group.event,
                            group.key,
                            group.raw_data,
                            group.created_at,
                            (row,),
                        ),
                    )
                )
                if self._random.random() < self._drop:
                    self.dropped += 1
                    continue
                self._held.append(piece)
                if self._random.random() < self._repeat:
                    self.repeated += 1
                    self._held.append(piece)
        if len(self._held) >= self._burst:
            self.flush()

    def flush(self) -> None:
        held, self._held = self._held, []
        self._random.shuffle(held)
        self._hand_over(held)

    def _hand_over(self, messages: list[BrokerMessage]) -> None:
        for message in messages:
            for subscriber in self._subscribers:
                subscriber(message)  # as InProcessBroker.publish does, in this order


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    # The periodic check against the store is what recovers a drop nothing follows.
    return make_settings(ws_catch_up_seconds=0.2)


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> ChaosBroker:
    repeat, drop = request.param
    return ChaosBroker(seed=8, repeat=repeat, drop=drop)


@pytest.fixture
async def app(settings: Settings, chaos: ChaosBroker) -> web.Application:
    from app import create_app

    app = create_app(settings)
    app[keys.BROKER] = chaos
    return app


async def frames_until_seq(ws: ClientWebSocketResponse, last_seq: int) -> list[Frame]:
    """Notification frames until the one with `last_seq`, then proof that nothing else is
    on its way (a ping's pong comes next)."""
    frames: list[Frame] = []
    while not frames or frames[-1]["seq"] < last_seq:
        frame = await receive(ws, within=10)
        if frame["id"] is not None:
            frames.append(frame)
    await still_answers(ws)
    return frames


async def publish_concurrently(app: web.Application, user_ids: list[int]) -> None:
    notifier = app[keys.NOTIFIER]
    await asyncio.gather(
        *(notifier.send_to_users(user_ids, "notification", {"n": n}) for n in range(COUNT))
    )


def assert_once_in_order(frames: list[Frame]) -> None:
    assert [f["seq"] for f in frames] == list(range(1, COUNT + 1))
    ids = [f["id"] for f in frames]
    assert ids == sorted(ids) and len(set(ids)) == COUNT
    assert sorted(f["data"]["n"] for f in frames) == list(range(COUNT))


@pytest.mark.parametrize(
    "chaos", [(0.3, 0.0), (0.2, 0.25)], indirect=True, ids=["reorder-repeat", "and-drop"]
)
async def test_every_socket_gets_every_notification_once_in_seq_order(
    provider: Browser,
    client_browser: Browser,
    new_browser: BrowserFactory,
    server: TestServer,
    app: web.Application,
    chaos: ChaosBroker,
) -> None:
    assert provider.user_id is not None and client_browser.user_id is not None
    other_device = await new_browser()
    assert (await other_device.login("provider@example.com")).status == 303
    sockets = [
        (await open_live(browser, server))[0]
        for browser in (provider, provider, other_device, client_browser)
    ]

    await publish_concurrently(app, [provider.user_id, client_browser.user_id])
    chaos.flush()

    for ws in sockets:
        assert_once_in_order(await frames_until_seq(ws, COUNT))
    assert chaos.repeated > 0
    assert metric(app, "ws_gaps_filled_total") > 0  # the shuffle made gaps, and they were filled
    if chaos.dropped:
        assert metric(app, "ws_catch_ups_total") > 0


@pytest.mark.parametrize("chaos", [(0.0, 1.0)], indirect=True, ids=["drop-all"])
async def test_a_catch_up_after_a_broker_outage_sends_what_every_socket_missed_in_order(
    provider: Browser, server: TestServer, app: web.Application, chaos: ChaosBroker
) -> None:
    assert provider.user_id is not None
    sockets = [(await open_live(provider, server))[0] for _ in range(2)]

    await publish_concurrently(app, [provider.user_id])
    assert chaos.dropped == COUNT
    app[keys.HUB].on_broker_message(CatchUp())  # what the Redis broker says on reconnect

    for ws in sockets:
        assert_once_in_order(await frames_until_seq(ws, COUNT))


@pytest.mark.parametrize("chaos", [(0.0, 0.0)], indirect=True, ids=["in-order"])
async def test_a_socket_resuming_by_seq_gets_exactly_what_follows(
    provider: Browser, server: TestServer, app: web.Application, chaos: ChaosBroker
) -> None:
    assert provider.user_id is not None
    notifier = app[keys.NOTIFIER]
    for n in range(5):
        await notifier.send_to_user(provider.user_id, "notification", {"n": n})
    ws = await provider.client.ws_connect(
        "/ws?last_seq=2", headers={"Origin": f"http://{server.host}:{server.port}"}
    )
    welcome = await receive(ws)
    assert (welcome["last_seq"], welcome["unread"]) == (5, 5)
    replayed = [await receive(ws) for _ in range(3)]
    assert [f["seq"] for f in replayed] == [3, 4, 5]
    done = await receive(ws)
    assert done["type"] == "replay_done" and done["last_seq"] == 5
    assert done["last_id"] == replayed[-1]["id"]


@pytest.mark.parametrize("chaos", [(0.2, 0.25)], indirect=True, ids=["reorder-repeat-drop"])
async def test_conversation_messages_reach_both_parties_once_in_conversation_order(
    provider: Browser,
    client_browser: Browser,
    server: TestServer,
    app: web.Application,
    chaos: ChaosBroker,
) -> None:
    """Messages ride the per-user streams: a broker that reorders, repeats and drops cannot
    make anyone see a message twice, miss one, or see them out of the conversation's order."""
    assert provider.user_id is not None and client_browser.user_id is not None
    booking_id = await accepted_booking(provider, client_browser)
    sockets = [(await open_live(browser, server))[0] for browser in (provider, client_browser)]
    conversations = app[keys.CONVERSATIONS]
    conversations.messages_per_minute = COUNT
    senders = [provider.user_id, client_browser.user_id]
    await asyncio.gather(
        *(conversations.send(senders[n % 2], booking_id, f"m{n}") for n in range(COUNT))
    )
    chaos.flush()
    for ws in sockets:
        seen: list[int] = []
        while len(seen) < COUNT:
            frame = await receive(ws, within=10)
            if frame["type"] == "message" and frame["data"]["type"] == "message":
                seen.append(frame["data"]["message"]["seq"])
        await ws.send_json({"type": "ping"})
        _, after = await receive_until(ws, "pong")
        assert seen == list(range(1, COUNT + 1))
        assert not [f for f in after if f["type"] == "message"]
