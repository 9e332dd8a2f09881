"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from app import keys
from app.accounts.sessions import SessionStore
from app.config import Settings
from app.db import Database
from app.demo import seed_demo
from app.marketplace.payments import PaymentProcessor, SimulatedProcessor
from app.middlewares import auth_middleware, error_middleware
from app.migrate import migrate
from app.notifications.service import NotificationService
from app.rendering import FILTERS
from app.routes import setup_routes
from app.security import (
    FailureLimiter,
    Passwords,
    csrf_middleware,
    derive_key,
    headers_middleware,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, payment_processor: PaymentProcessor | None = None
) -> web.Application:
    app = web.Application(
        middlewares=[headers_middleware(lambda request: keys.USER in request)],
        client_max_size=256 * 1024,
    )
    app[keys.SETTINGS] = settings
    app[keys.PASSWORDS] = Passwords(settings.argon2)
    app[keys.PAYMENT_PROCESSOR] = payment_processor or SimulatedProcessor()
    app[keys.CSRF_KEY] = derive_key(settings.secret_key, "csrf")
    app[keys.LOGIN_FAILURES_BY_ACCOUNT] = FailureLimiter(
        settings.login_max_failures, settings.login_failure_window_seconds
    )
    app[keys.LOGIN_FAILURES_BY_ADDRESS] = FailureLimiter(
        settings.login_max_failures * 4, settings.login_failure_window_seconds
    )

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
        [error_middleware, auth_middleware, csrf_middleware(app[keys.CSRF_KEY], settings.https)]
    )
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters=FILTERS,
    )
    app[aiohttp_jinja2.static_root_key] = "/static"
    app.cleanup_ctx.append(database_ctx)
    setup_routes(app, STATIC_DIR)
    return app


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    db = Database(settings.db_path)
    await db.open()
    try:
        await migrate(db)
        app[keys.DB] = db
        app[keys.SESSIONS] = SessionStore(db, settings)
        app[keys.NOTIFIER] = NotificationService(db)
        if settings.demo:
            await seed_demo(app)
    except BaseException:
        await db.close()
        raise
    yield
    await db.close()
