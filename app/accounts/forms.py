"""Sign-up and login form validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.forms import Errors, check_length, text
from app.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class SignupData:
    email: str
    name: str
    password: str


def _password(form: Mapping[str, Any]) -> str:
    # Passwords are not stripped: spaces may be part of them.
    value = form.get("password", "")
    return value if isinstance(value, str) else ""


def validate_signup(form: Mapping[str, Any]) -> tuple[SignupData | None, Errors]:
    errors: Errors = {}
    email = text(form, "email").lower()
    name = text(form, "name")
    password = _password(form)
    check_length(errors, "email", email, "Email", maximum=254)
    if "email" not in errors and not _EMAIL.match(email):
        errors["email"] = "Enter an email address like name@example.com."
    check_length(errors, "name", name, "Name", maximum=80)
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors["password"] = f"Use at most {MAX_PASSWORD_LENGTH} characters."
    if errors:
        return None, errors
    return SignupData(email, name, password), errors


def read_login(form: Mapping[str, Any]) -> tuple[str, str]:
    return text(form, "email").lower(), _password(form)
