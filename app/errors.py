"""The error tree raised by domain and data code; `app.middlewares` turns it into pages."""

from __future__ import annotations

TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Not possible right now",
    413: "Too large",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Unavailable",
}


class AppError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(AppError):
    status = 400


class Forbidden(AppError):
    status = 403


class CsrfError(Forbidden):
    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "This form has expired or did not come from this site. "
            "Go back, reload the page and try again."
        )


class NotFound(AppError):
    status = 404

    def __init__(self, message: str = "We could not find that page.") -> None:
        super().__init__(message)


class Conflict(AppError):
    """An action that the current state does not allow (an illegal state transition)."""

    status = 409


class TooManyRequests(AppError):
    status = 429
