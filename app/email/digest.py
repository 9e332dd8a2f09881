"""Digest emails: one message listing what a person has not read, with a link to the inbox and
a signed one-click unsubscribe link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from email.message import EmailMessage

from app.db import Row

SHOWN = 20


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    created_at: str


def item_from_row(row: Row) -> Item:
    data = json.loads(row["data"])
    message = data.get("message")
    text = message if isinstance(message, str) else str(row["event"]).replace("_", " ").capitalize()
    return Item(" ".join(text.split())[:300], row["created_at"])


def unsubscribe_token(key: bytes, user_id: int) -> str:
    digest = hmac.new(key, f"unsubscribe:{user_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def token_matches(key: bytes, user_id: int, token: str) -> bool:
    return hmac.compare_digest(unsubscribe_token(key, user_id), token)


def compose(
    *,
    sender: str,
    to: str,
    name: str,
    items: list[Item],
    inbox_url: str,
    unsubscribe_url: str,
) -> EmailMessage:
    count = len(items)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = (
        f"You have {count} unread notification{'s' if count != 1 else ''} on Marketplace"
    )
    # RFC 8058: mail clients show their own one-click unsubscribe button.
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    lines = [f"Hello {name},", "", "While you were away:", ""]
    lines += [
        f"- {item.text} ({item.created_at.replace('T', ' ').rstrip('Z')} UTC)"
        for item in items[:SHOWN]
    ]
    if count > SHOWN:
        lines.append(f"- and {count - SHOWN} more")
    lines += [
        "",
        f"Open your inbox: {inbox_url}",
        "",
        "You get this email because you were not online when these arrived.",
        f"Stop these emails: {unsubscribe_url}",
    ]
    message.set_content("\n".join(lines))
    return message
