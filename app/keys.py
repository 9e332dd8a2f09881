"""Every typed key for application state and per-request data."""

from __future__ import annotations

from aiohttp import web

from app.accounts.limits import LoginLimiter
from app.accounts.sessions import CurrentUser, SessionStore
from app.config import Settings
from app.connections import ConnectionLimiter
from app.conversations.frames import FrameRouter
from app.conversations.service import ConversationService
from app.db import Database
from app.email.sender import EmailSender
from app.marketplace.payments import PaymentProcessor
from app.metrics import Metrics
from app.notifications.delivery import DeliveryRecorder
from app.notifications.service import NotificationService
from app.push.sender import PushSender
from app.realtime.broker import Broker
from app.realtime.hub import Hub
from app.realtime.presence import PresenceTracker
from app.security import Passwords

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
PASSWORDS = web.AppKey("passwords", Passwords)
SESSIONS = web.AppKey("sessions", SessionStore)
NOTIFIER = web.AppKey("notifier", NotificationService)
PAYMENT_PROCESSOR = web.AppKey("payment_processor", PaymentProcessor)
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
CSRF_KEY = web.AppKey("csrf_key", bytes)
METRICS = web.AppKey("metrics", Metrics)
BROKER = web.AppKey("broker", Broker)
HUB = web.AppKey("hub", Hub)
ACKS = web.AppKey("acks", DeliveryRecorder)
FRAMES = web.AppKey("frames", FrameRouter)
CONVERSATIONS = web.AppKey("conversations", ConversationService)
VAPID_PEM = web.AppKey("vapid_pem", bytes)
PUSH = web.AppKey("push", PushSender)
EMAIL = web.AppKey("email", EmailSender)
PRESENCE = web.AppKey("presence", PresenceTracker)
CONNECTIONS = web.AppKey("connections", ConnectionLimiter)

USER = web.RequestKey("user", CurrentUser)
