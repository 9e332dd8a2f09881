"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from app import keys
from app.accounts.limits import LoginLimiter
from app.accounts.sessions import SessionStore
from app.clock import to_text, utc_now
from app.config import Settings
from app.connections import ConnectionLimiter, accept_errors_ctx
from app.conversations.frames import ConversationFrames, FrameRouter
from app.conversations.service import ConversationService
from app.db import database_from_settings
from app.demo import seed_demo
from app.email.sender import EmailSender
from app.email.smtp import SmtpServer
from app.email.views import unsubscribe_key
from app.jobs import Job, JobRunner, Leases, process_name
from app.marketplace.billing import resolve_interrupted_payments
from app.marketplace.images import upload_limit_middleware
from app.marketplace.payments import PaymentProcessor, SimulatedProcessor
from app.metrics import Metrics
from app.middlewares import auth_middleware, error_middleware
from app.migrate import migrate
from app.notifications.delivery import DeliveryRecorder
from app.notifications.live import NotificationFrames, StoreHistory
from app.notifications.service import NotificationService
from app.notifications.store import forget_client_messages
from app.presence_store import SqlPresenceStore
from app.push.sender import PushSender
from app.push.store import forget_sessions
from app.push.vapid import new_private_pem
from app.realtime.broker import Broker, InProcessBroker
from app.realtime.handshake_gate import HandshakeGate
from app.realtime.hub import Hub, HubSettings
from app.realtime.messages import SessionsEnded
from app.realtime.presence import PresenceTracker
from app.realtime.redis_broker import RedisBroker, RedisSettings
from app.rendering import FILTERS
from app.routes import setup_routes
from app.security import Passwords, csrf_middleware, derive_key, headers_middleware

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"

log = logging.getLogger(__name__)

# A client message id is remembered this long: an offline queue older than that is stale.
CLIENT_MESSAGE_MEMORY = timedelta(days=7)


def create_app(
    settings: Settings, *, payment_processor: PaymentProcessor | None = None
) -> web.Application:
    metrics = Metrics()
    handshake_gate = HandshakeGate(
        settings.ws_handshake_concurrency, settings.ws_handshake_wait_seconds, metrics
    )
    app = web.Application(
        middlewares=[
            headers_middleware(lambda request: keys.USER in request),
            handshake_gate.middleware("/ws"),
        ],
        client_max_size=256 * 1024,
        # aiohttp's wait-for-request timer, which runs from when a connection opens and from the
        # end of each response and is not extended by trickling bytes: the header timeout.
        handler_args={"keepalive_timeout": settings.header_timeout_seconds},
    )
    app[keys.SETTINGS] = settings
    app[keys.PASSWORDS] = Passwords(settings.argon2)
    app[keys.PAYMENT_PROCESSOR] = payment_processor or SimulatedProcessor()
    app[keys.CSRF_KEY] = derive_key(settings.secret_key, "csrf")
    # Tests build Settings without a key file: a key for this process only.
    app[keys.VAPID_PEM] = settings.vapid_private_key or new_private_pem()

    setup_session(
        app,
        EncryptedCookieStorage(
            derive_key(settings.secret_key, "session-cookie"),
            cookie_name=settings.cookie_name,
            httponly=True,
            samesite="Lax",
            secure=settings.https,
            path="/",
            max_age=settings.session_absolute_seconds,
        ),
    )
    app.middlewares.extend(
        [
            error_middleware,
            auth_middleware,
            upload_limit_middleware,
            csrf_middleware(app[keys.CSRF_KEY], settings.https),
        ]
    )
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters=FILTERS,
    )
    app[aiohttp_jinja2.static_root_key] = "/static"
    app[keys.METRICS] = metrics
    app[keys.CONNECTIONS] = ConnectionLimiter(settings.max_connections_per_address, metrics)
    app[keys.BROKER] = make_broker(settings, metrics)
    app[keys.HUB] = Hub(
        HubSettings(
            heartbeat_seconds=settings.ws_heartbeat_seconds,
            heartbeat_timeout_seconds=settings.ws_heartbeat_timeout_seconds,
            max_sockets_per_user=settings.ws_max_per_user,
            queue_size=settings.ws_queue_size,
            session_check_seconds=settings.session_check_seconds,
            shutdown_spread_seconds=settings.shutdown_spread_seconds,
            replay_concurrency=settings.ws_replay_concurrency,
        ),
        metrics,
    )
    app.cleanup_ctx.append(accept_errors_ctx)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(realtime_ctx)
    app.cleanup_ctx.append(jobs_ctx)
    app.on_shutdown.append(shutdown_realtime)
    setup_routes(app, STATIC_DIR)
    return app


def make_broker(settings: Settings, metrics: Metrics) -> Broker:
    """Redis when a URL is configured (several processes are one site), else in-process."""
    if settings.redis_url is None:
        return InProcessBroker()
    return RedisBroker(RedisSettings(settings.redis_url), metrics)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    db = database_from_settings(settings)
    log.info("database: %s", db.describe())
    await db.open()
    try:
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    app[keys.DB] = db
    app[keys.SESSIONS] = SessionStore(db, settings)
    app[keys.LOGIN_LIMITER] = LoginLimiter(
        db,
        max_per_account=settings.login_max_failures,
        max_per_address=settings.login_max_failures * 4,
        window_seconds=settings.login_failure_window_seconds,
    )
    yield
    await db.close()


async def realtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """The notification writer, the broker, the hub and its loops, delivery receipts."""
    db, broker, hub, metrics = app[keys.DB], app[keys.BROKER], app[keys.HUB], app[keys.METRICS]
    sessions = app[keys.SESSIONS]
    notifier = NotificationService(
        db,
        broker,
        metrics,
        client_messages_per_user=app[keys.SETTINGS].client_messages_per_user,
    )
    app[keys.NOTIFIER] = notifier
    acks = DeliveryRecorder(db, metrics)
    app[keys.ACKS] = acks
    settings = app[keys.SETTINGS]
    presence = PresenceTracker(
        hub,
        SqlPresenceStore(db),
        broker,
        metrics,
        grace_seconds=settings.presence_grace_seconds,
        heartbeat_seconds=settings.presence_heartbeat_seconds,
    )
    app[keys.PRESENCE] = presence
    conversations = ConversationService(
        db,
        notifier,
        broker,
        metrics,
        SqlPresenceStore(db),
        messages_per_minute=settings.messages_per_minute,
        stale_seconds=presence.stale_seconds,
    )
    app[keys.CONVERSATIONS] = conversations
    conversation_frames = ConversationFrames(db, conversations, hub, presence)
    app[keys.FRAMES] = FrameRouter(
        NotificationFrames(notifier, acks),
        dict.fromkeys(ConversationFrames.TYPES, conversation_frames),
    )

    await broker.start()
    broker.subscribe(hub.on_broker_message)

    async def sessions_ended(session_ids: list[int]) -> None:
        await broker.publish(SessionsEnded(tuple(session_ids)))

    sessions.on_revoke(sessions_ended)
    notifier.start()
    acks.start()
    hub.start(
        sessions.ended_among,
        StoreHistory(db),
        catch_up_seconds=0.0 if broker.lossless else settings.ws_catch_up_seconds,
    )
    await presence.start()
    pusher = PushSender(
        db,
        metrics,
        vapid_pem=app[keys.VAPID_PEM],
        subject=settings.vapid_subject,
        delay_seconds=settings.push_delay_seconds,
        scan_seconds=settings.push_scan_seconds,
    )
    app[keys.PUSH] = pusher
    await pusher.start()

    async def forget_devices(session_ids: list[int]) -> None:
        await forget_sessions(db, session_ids)

    sessions.on_revoke(forget_devices)
    mailer = email_sender(app)
    if mailer is not None:
        mailer.start()
    if settings.demo:
        await seed_demo(app)
    yield
    if mailer is not None:
        await mailer.stop()
    await pusher.stop()
    await presence.stop()
    await hub.stop_loops()
    await acks.stop()
    await notifier.close()
    await broker.close()


def email_sender(app: web.Application) -> EmailSender | None:
    """The digest sender, when an SMTP server is configured (else email is off)."""
    settings = app[keys.SETTINGS]
    if settings.smtp_url is None:
        return None
    mailer = EmailSender(
        app[keys.DB],
        app[keys.METRICS],
        SmtpServer.from_url(settings.smtp_url),
        sender=settings.email_from,
        public_url=settings.public_url or f"http://{settings.host}:{settings.port}",
        unsubscribe_key=unsubscribe_key(settings.secret_key),
        delay_seconds=settings.email_delay_seconds,
        scan_seconds=settings.email_scan_seconds,
    )
    app[keys.EMAIL] = mailer
    return mailer


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    """Maintenance that must keep running, in one process of the site at a time."""
    settings, db, notifier = app[keys.SETTINGS], app[keys.DB], app[keys.NOTIFIER]
    processor, limiter = app[keys.PAYMENT_PROCESSOR], app[keys.LOGIN_LIMITER]

    async def resolve_payments() -> None:
        await resolve_interrupted_payments(
            db, notifier, processor, older_than_seconds=settings.interrupted_payment_seconds
        )

    async def prune() -> None:
        await forget_client_messages(db, to_text(utc_now() - CLIENT_MESSAGE_MEMORY))
        await limiter.prune()

    interval = settings.maintenance_interval_seconds
    runner = JobRunner(
        Leases(db, process_name()),
        [Job("interrupted_payments", interval, resolve_payments), Job("prune", interval, prune)],
    )
    runner.start()
    yield
    await runner.stop()


async def shutdown_realtime(app: web.Application) -> None:
    """SIGTERM / SIGINT: finish in-flight publishes, then close sockets in staggered batches."""
    await app[keys.NOTIFIER].close()
    await app[keys.HUB].shutdown()
