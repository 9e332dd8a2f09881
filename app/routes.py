"""The whole URL map. Every route is named; code and templates reverse URLs by name."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from app import api, pages
from app.accounts import views as accounts
from app.conversations import views as conversations
from app.email import views as email
from app.marketplace import review_views
from app.marketplace import views as marketplace
from app.notifications import preferences_views as preferences
from app.notifications import socket_route
from app.notifications import views as notifications
from app.push import views as push

# [0-9], not \d: \d also matches other scripts' digits, which are no id.
ID = r"{id:[0-9]{1,18}}"


def setup_routes(app: web.Application, static_dir: Path) -> None:
    r = app.router
    r.add_get("/", pages.index, name="index")
    r.add_get("/healthz", pages.healthz, name="healthz")
    r.add_get("/metrics", api.metrics, name="metrics")
    r.add_post("/api/publish", api.publish, name="api_publish")
    r.add_get("/ws", socket_route.websocket, name="ws")
    r.add_get("/sw.js", push.service_worker, name="service_worker")
    r.add_get("/account/push", push.push_key, name="push_key")
    r.add_post("/account/push", push.subscribe)
    r.add_post("/account/push/remove", push.unsubscribe, name="push_remove")
    r.add_post("/account/email", email.save_mode, name="email_mode")
    r.add_post("/account/quiet-hours", preferences.save_quiet_hours_form, name="quiet_hours")
    r.add_get("/email/unsubscribe", email.unsubscribe_page, name="email_unsubscribe")
    r.add_post("/email/unsubscribe", email.unsubscribe)

    r.add_get("/signup", accounts.signup_form, name="signup")
    r.add_post("/signup", accounts.signup)
    r.add_get("/login", accounts.login_form, name="login")
    r.add_post("/login", accounts.login)
    r.add_post("/logout", accounts.logout, name="logout")
    r.add_get("/account/sessions", accounts.sessions_page, name="sessions")
    r.add_post(f"/account/sessions/{ID}/revoke", accounts.revoke_session, name="session_revoke")
    r.add_get("/account/notifications", preferences.preferences_page, name="preferences")
    r.add_post("/account/notifications", preferences.save)

    r.add_get("/services", marketplace.browse, name="services")
    r.add_get("/services/new", marketplace.service_new_form, name="service_new")
    r.add_post("/services/new", marketplace.service_create)
    r.add_get(f"/services/{ID}", marketplace.service_detail, name="service_detail")
    r.add_get(f"/services/{ID}/edit", marketplace.service_edit_form, name="service_edit")
    r.add_post(f"/services/{ID}/edit", marketplace.service_update)
    r.add_post(f"/services/{ID}/unpublish", marketplace.service_unpublish, name="service_unpublish")
    r.add_post(f"/services/{ID}/publish", marketplace.service_publish, name="service_publish")
    r.add_post(f"/services/{ID}/book", marketplace.book, name="service_book")
    r.add_get(f"/services/{ID}/image", marketplace.service_image, name="service_image")
    r.add_get("/my/services", marketplace.my_services, name="my_services")
    r.add_get(f"/providers/{ID}", marketplace.provider_profile, name="provider_profile")

    r.add_get("/bookings", marketplace.bookings_page, name="bookings")
    r.add_get(f"/bookings/{ID}", marketplace.booking_detail, name="booking_detail")
    r.add_post(
        f"/bookings/{ID}/{{action:accept|decline|cancel|complete}}",
        marketplace.booking_action,
        name="booking_action",
    )
    r.add_post(f"/bookings/{ID}/messages", conversations.post_message, name="booking_messages")
    r.add_post(f"/bookings/{ID}/conversation/mute", conversations.mute, name="conversation_mute")
    r.add_post(f"/bookings/{ID}/review", review_views.post_review, name="booking_review")
    r.add_get(f"/bookings/{ID}/pay", marketplace.pay_form, name="booking_pay")
    r.add_post(f"/bookings/{ID}/pay", marketplace.pay)
    r.add_get(f"/payments/{ID}", marketplace.payment_detail, name="payment_detail")
    r.add_post(f"/payments/{ID}/refund", marketplace.refund, name="payment_refund")

    r.add_get("/notifications", notifications.inbox, name="notifications")
    r.add_post("/notifications/read-all", notifications.read_all, name="notifications_read_all")
    r.add_get(f"/notifications/{ID}", notifications.open_notification, name="notification_open")
    r.add_post(f"/notifications/{ID}/read", notifications.read_one, name="notification_read")

    r.add_static("/static", static_dir, name="static")
