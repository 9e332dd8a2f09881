"""Every typed key for application state and per-request data."""

from __future__ import annotations

from aiohttp import web

from app.accounts.sessions import CurrentUser, SessionStore
from app.config import Settings
from app.db import Database
from app.marketplace.payments import PaymentProcessor
from app.metrics import Metrics
from app.notifications.delivery import DeliveryRecorder
from app.notifications.service import NotificationService
from app.realtime.broker import Broker
from app.realtime.hub import Hub
from app.security import FailureLimiter, Passwords

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
PASSWORDS = web.AppKey("passwords", Passwords)
SESSIONS = web.AppKey("sessions", SessionStore)
NOTIFIER = web.AppKey("notifier", NotificationService)
PAYMENT_PROCESSOR = web.AppKey("payment_processor", PaymentProcessor)
LOGIN_FAILURES_BY_ACCOUNT = web.AppKey("login_failures_by_account", FailureLimiter)
LOGIN_FAILURES_BY_ADDRESS = web.AppKey("login_failures_by_address", FailureLimiter)
CSRF_KEY = web.AppKey("csrf_key", bytes)
METRICS = web.AppKey("metrics", Metrics)
BROKER = web.AppKey("broker", Broker)
HUB = web.AppKey("hub", Hub)
ACKS = web.AppKey("acks", DeliveryRecorder)

USER = web.RequestKey("user", CurrentUser)
