"""Settings: one frozen dataclass, built from command-line flags and environment variables.

Every setting has a flag and an `APP_*` variable; a flag wins over the variable, the variable
over the default. `settings_from_args` is what `run.py` calls; tests build `Settings` directly.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from redis.asyncio.connection import parse_url

from app.email.smtp import SmtpServer
from app.forms import NumberError, parse_int
from app.private_file import create_private_file
from app.push.vapid import VapidError, load_vapid_key

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_SETTING = 2**31 - 1  # no count, size or number of seconds we take is near this


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost. The defaults are OWASP's minimum (19 MiB, 2 passes, 1 lane)."""

    memory_kib: int = 19 * 1024
    time_cost: int = 2
    parallelism: int = 1


@dataclass(frozen=True)
class Settings:
    db_path: Path
    secret_key: bytes
    # PostgreSQL instead of the SQLite file at db_path (a site on more than one host).
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    log_level: str = "INFO"
    https: bool = False
    currency: str = "USD"
    argon2: Argon2Params = field(default_factory=Argon2Params)
    session_idle_seconds: int = 14 * 24 * 3600
    session_absolute_seconds: int = 30 * 24 * 3600
    login_max_failures: int = 5
    login_failure_window_seconds: int = 15 * 60
    demo: bool = False
    allowed_origins: tuple[str, ...] = ()
    ws_heartbeat_seconds: float = 25.0
    ws_heartbeat_timeout_seconds: float = 10.0
    ws_max_per_user: int = 10
    ws_queue_size: int = 256
    # Client frames: a token bucket; a socket with `ws_flood_refusals` frames refused within
    # `ws_flood_window_seconds` is closed with 1008.
    ws_rate_per_second: float = 20.0
    ws_rate_burst: float = 40.0
    ws_flood_refusals: int = 40
    ws_flood_window_seconds: float = 10.0
    # A resume further behind than this gets the newest `ws_replay_limit` and a
    # `replay_truncated` frame; at most `ws_replay_concurrency` replays run at once.
    ws_replay_limit: int = 1000
    ws_replay_concurrency: int = 4
    # With a broker that can lose messages unnoticed (not the in-process one), every socket
    # is checked against the store this often, besides after every broker reconnect.
    ws_catch_up_seconds: float = 30.0
    # WebSocket handshakes in progress at once (a reconnect storm waits its turn, and other
    # requests stay fast); one waiting longer than `ws_handshake_wait_seconds` gets 503.
    ws_handshake_concurrency: int = 32
    ws_handshake_wait_seconds: float = 10.0
    # Client message ids remembered per user (the oldest are forgotten past this).
    client_messages_per_user: int = 1000
    # Conversations: messages a person may send a minute (over every process); how long a
    # person whose last socket closed still shows online (a flapping link changes nothing);
    # how often each process proves it is alive (its presence rows expire after 3 beats).
    messages_per_minute: int = 30
    presence_grace_seconds: float = 5.0
    presence_heartbeat_seconds: float = 10.0
    # Maintenance jobs (interrupted payments, pruning) run this often, in one process.
    maintenance_interval_seconds: float = 15.0
    # A payment pending this long is not in flight anywhere (see billing.CHARGE_TIMEOUT_SECONDS).
    interrupted_payment_seconds: float = 60.0
    session_check_seconds: float = 5.0
    shutdown_spread_seconds: float = 10.0
    # A connection must send a whole request line and headers this soon after it opens (or
    # after the previous response): slow-header clients cannot hold descriptors.
    header_timeout_seconds: float = 10.0
    # Open connections per client address, per process (a descriptor guard); 0: no cap.
    max_connections_per_address: int = 256
    # Web Push: the VAPID private key (PEM; None: a key made for this process only, as in
    # tests), the contact the push services see, how long a notification may stay
    # unacknowledged by every socket before it is pushed, how often that is looked for, and
    # whether plain-http or loopback push endpoints are accepted (tests' local push service;
    # never in production: an endpoint is a URL the server will POST to).
    vapid_private_key: bytes | None = None
    vapid_subject: str = "mailto:admin@localhost"
    push_delay_seconds: float = 30.0
    push_scan_seconds: float = 1.0
    push_allow_local_endpoints: bool = False
    # Email fallback: the SMTP server (None: email is off), how long a notification stays
    # unread before a digest, the sender, and the site's address for the links in emails
    # (None: http://HOST:PORT).
    smtp_url: str | None = None
    email_delay_seconds: float = 600.0
    email_from: str = "Marketplace <noreply@localhost>"
    public_url: str | None = None
    email_scan_seconds: float = 15.0
    # Scale-out: a Redis URL selects the Redis broker (None: in-process); `workers` processes
    # share the port (SO_REUSEPORT), the database and Redis.
    redis_url: str | None = None
    workers: int = 1

    @property
    def uploads_dir(self) -> Path:
        """Uploaded files (service pictures): `uploads/` in the data folder, the one holding
        the SQLite file and the generated secret (with PostgreSQL too)."""
        return self.db_path.parent / "uploads"

    @property
    def cookie_name(self) -> str:
        # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only
        # and Path=/, so a sibling subdomain cannot plant or shadow it.
        return "__Host-session" if self.https else "session"


# (flag, env var, help, type, default) for every setting that comes from outside.
_OPTIONS: tuple[tuple[str, str, str, type, object], ...] = (
    ("--host", "APP_HOST", "address to listen on", str, "127.0.0.1"),
    ("--port", "APP_PORT", "port to listen on", int, 8080),
    ("--db", "APP_DB", "SQLite database file (created on first start)", str, "data/app.db"),
    (
        "--database-url",
        "APP_DATABASE_URL",
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE: PostgreSQL instead of the SQLite file "
        "(the database must exist; its tables are created on first start)",
        str,
        None,
    ),
    ("--api-key", "APP_API_KEY", "bearer key for POST /api/publish (unset: API off)", str, None),
    (
        "--secret-key-file",
        "APP_SECRET_KEY_FILE",
        "file holding the cookie secret (default: secret.key beside the database; "
        "generated with mode 0600 when missing)",
        str,
        None,
    ),
    (
        "--allowed-origins",
        "APP_ALLOWED_ORIGINS",
        "extra origins allowed to open WebSockets, comma-separated exact origins "
        "(the site's own origin is always allowed)",
        str,
        "",
    ),
    (
        "--ws-heartbeat",
        "APP_WS_HEARTBEAT",
        "seconds between heartbeat pings; a socket silent for this plus "
        "APP_WS_HEARTBEAT_TIMEOUT is closed",
        float,
        25.0,
    ),
    ("--ws-heartbeat-timeout", "APP_WS_HEARTBEAT_TIMEOUT", "see --ws-heartbeat", float, 10.0),
    ("--ws-max-per-user", "APP_WS_MAX_PER_USER", "open sockets allowed per user", int, 10),
    (
        "--ws-replay-limit",
        "APP_WS_REPLAY_LIMIT",
        "most notifications one resume replays; a client further behind gets the newest "
        "ones and a replay_truncated frame",
        int,
        1000,
    ),
    (
        "--ws-queue-size",
        "APP_WS_QUEUE_SIZE",
        "frames queued for one socket before it is closed as a slow consumer (1013)",
        int,
        256,
    ),
    (
        "--push-delay",
        "APP_PUSH_DELAY",
        "seconds a notification may go unacknowledged by every open socket of its person "
        "before it is sent to their devices by Web Push",
        float,
        30.0,
    ),
    (
        "--smtp-url",
        "APP_SMTP_URL",
        "smtp://[USER:PASSWORD@]HOST[:PORT] (or smtps://): send digest emails through this "
        "server; unset: no email",
        str,
        None,
    ),
    (
        "--email-delay",
        "APP_EMAIL_DELAY",
        "seconds a notification stays unread before it goes out in a digest email",
        float,
        600.0,
    ),
    (
        "--email-from",
        "APP_EMAIL_FROM",
        "the From of digest emails",
        str,
        "Marketplace <noreply@localhost>",
    ),
    (
        "--public-url",
        "APP_PUBLIC_URL",
        "the site's address as people reach it, for links in emails (default http://HOST:PORT)",
        str,
        None,
    ),
    (
        "--vapid-subject",
        "APP_VAPID_SUBJECT",
        "the contact push services see for this site (mailto: or https: URL)",
        str,
        "mailto:admin@localhost",
    ),
    (
        "--messages-per-minute",
        "APP_MESSAGES_PER_MINUTE",
        "conversation messages one person may send a minute, over every process",
        int,
        30,
    ),
    (
        "--shutdown-spread",
        "APP_SHUTDOWN_SPREAD",
        "seconds over which clients are told to reconnect after a shutdown",
        float,
        10.0,
    ),
    (
        "--header-timeout",
        "APP_HEADER_TIMEOUT",
        "seconds a connection has to send a complete request line and headers, from when it "
        "opens or its previous response ends; then it is closed",
        float,
        10.0,
    ),
    (
        "--max-connections-per-address",
        "APP_MAX_CONNECTIONS_PER_ADDRESS",
        "open connections allowed from one client address, per process; more are refused "
        "with 503 (0: no cap)",
        int,
        256,
    ),
    (
        "--redis-url",
        "APP_REDIS_URL",
        "redis://HOST:PORT/DB: deliver through Redis pub/sub, so several processes (or hosts) "
        "sharing the database are one site (unset: in-process delivery)",
        str,
        None,
    ),
    (
        "--workers",
        "APP_WORKERS",
        "worker processes serving the one port (SO_REUSEPORT); more than 1 needs --redis-url "
        "and a fixed --port",
        int,
        1,
    ),
    ("--log-level", "APP_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", str, "INFO"),
    ("--currency", "APP_CURRENCY", "ISO 4217 code shown with every price", str, "USD"),
    ("--argon2-memory-kib", "APP_ARGON2_MEMORY_KIB", "Argon2id memory cost in KiB", int, 19456),
    ("--argon2-time-cost", "APP_ARGON2_TIME_COST", "Argon2id passes", int, 2),
    (
        "--session-idle-seconds",
        "APP_SESSION_IDLE_SECONDS",
        "a session unused this long ends",
        int,
        14 * 24 * 3600,
    ),
    (
        "--session-absolute-seconds",
        "APP_SESSION_ABSOLUTE_SECONDS",
        "a session ends this long after login, used or not",
        int,
        30 * 24 * 3600,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Services marketplace with real-time notifications.",
        epilog="Each flag can also be set by the environment variable named in brackets. "
        "APP_SECRET_KEY (hex or any string of 32+ characters) sets the secret directly.",
    )
    for flag, env, help_text, _kind, default in _OPTIONS:
        shown = "unset" if default is None else default
        parser.add_argument(flag, default=None, help=f"{help_text} [{env}, default: {shown}]")
    parser.add_argument(
        "--https",
        action="store_true",
        default=None,
        help="served over HTTPS (behind a TLS proxy): Secure, __Host- cookies [APP_HTTPS=1]",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="fill an empty database with a demo provider, client and services [APP_DEMO=1]",
    )
    return parser


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _pick(
    args: argparse.Namespace, env: Mapping[str, str], flag: str, name: str, default: object
) -> object:
    dest = flag.lstrip("-").replace("-", "_")
    from_flag = getattr(args, dest)
    if from_flag is not None:
        return from_flag
    return env.get(name, default)


def _as_int(value: object, name: str, minimum: int = 0) -> int:
    # int() alone would also read Arabic-Indic or full-width digits; settings use 0-9 only.
    try:
        return parse_int(str(value).strip(), minimum=minimum, maximum=MAX_SETTING)
    except NumberError as exc:
        raise ConfigError(f"{name} {exc}, got {value!r}") from None


def load_secret_key(path: Path, env: Mapping[str, str]) -> bytes:
    """The cookie secret: APP_SECRET_KEY if set, else the key file, generated once when missing."""
    raw = env.get("APP_SECRET_KEY")
    if raw is not None:
        if len(raw) < 32:
            raise ConfigError("APP_SECRET_KEY must be at least 32 characters")
        return raw.encode()
    if not path.exists():
        create_private_file(path, secrets.token_hex(32).encode())
    data = path.read_bytes().strip()
    if len(data) < 32:
        raise ConfigError(f"secret key file {path} holds fewer than 32 bytes")
    return data


def _as_float(value: object, name: str, minimum: float = 0.0) -> float:
    text = str(value).strip()
    # float() also reads other scripts' digits; settings are written with 0-9 only.
    if not text.isascii():
        raise ConfigError(f"{name} must be a number written with the digits 0-9, got {value!r}")
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not minimum <= number < float("inf"):
        raise ConfigError(f"{name} must be at least {minimum}, got {value!r}")
    return number


def parse_origins(value: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise ConfigError(
                f"APP_ALLOWED_ORIGINS entries are origins like https://example.com, got {origin!r}"
            )
    return origins


def parse_database_url(value: str) -> str:
    """A PostgreSQL URL with a host and a database name; the password is never echoed."""
    url = value.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise ConfigError("APP_DATABASE_URL is not a valid URL") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            "APP_DATABASE_URL must start with postgresql:// "
            "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
        )
    if not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(
            "APP_DATABASE_URL needs a host and a database name "
            "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
        )
    return url


def _vapid_key(path: Path, env: Mapping[str, str]) -> bytes:
    try:
        return load_vapid_key(path, env)
    except VapidError as exc:
        raise ConfigError(exc.message) from None


def _smtp_url(value: object) -> str | None:
    if value is None or not str(value).strip():
        return None
    url = str(value).strip()
    try:
        SmtpServer.from_url(url)
    except ValueError as exc:
        # Not echoed: the URL may hold a password.
        raise ConfigError(f"APP_SMTP_URL {exc}") from None
    return url


def _public_url(value: object) -> str | None:
    if value is None:
        return None
    url = str(value).strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or url.count("/") != 2:
        raise ConfigError(f"APP_PUBLIC_URL must look like https://example.com, got {url!r}")
    return url


def parse_vapid_subject(value: str) -> str:
    subject = value.strip()
    if not subject.startswith(("mailto:", "https://")) or len(subject) < 10:
        raise ConfigError(
            f"APP_VAPID_SUBJECT must be a mailto: or https: URL (push services may contact it), "
            f"got {subject!r}"
        )
    return subject


def parse_redis_url(value: str) -> str:
    url = value.strip()
    try:
        parse_url(url)
    except ValueError as exc:
        # Not echoed: the URL may hold a password.
        raise ConfigError(f"APP_REDIS_URL must look like redis://HOST:PORT/DB: {exc}") from None
    return url


def check_workers(workers: int, redis_url: str | None, port: int) -> None:
    if workers <= 1:
        return
    if redis_url is None:
        raise ConfigError(
            f"APP_WORKERS={workers} needs APP_REDIS_URL (--redis-url redis://HOST:PORT/DB): "
            "worker processes deliver each other's notifications through Redis"
        )
    if port == 0:
        raise ConfigError(
            f"APP_WORKERS={workers} needs a fixed APP_PORT, not 0: each worker would get a "
            "port of its own"
        )


def settings_from_args(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    values = {flag: _pick(args, env, flag, name, d) for flag, name, _h, _k, d in _OPTIONS}

    db_path = Path(str(values["--db"]))
    database_url_value = values["--database-url"]
    database_url = None
    if database_url_value is not None:
        if args.db is not None or "APP_DB" in env:
            raise ConfigError(
                "APP_DB (a SQLite file) and APP_DATABASE_URL (PostgreSQL) choose different "
                "databases: set one of them"
            )
        database_url = parse_database_url(str(database_url_value))
    key_file_value = values["--secret-key-file"]
    key_file = Path(str(key_file_value)) if key_file_value else db_path.parent / "secret.key"
    log_level = str(values["--log-level"]).upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"APP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    currency = str(values["--currency"]).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ConfigError(f"APP_CURRENCY must be a three-letter code, got {currency!r}")
    api_key = values["--api-key"]
    if api_key is not None and len(str(api_key)) < 16:
        raise ConfigError("APP_API_KEY must be at least 16 characters")

    redis_value = values["--redis-url"]
    redis_url = None if redis_value is None else parse_redis_url(str(redis_value))
    workers = _as_int(values["--workers"], "APP_WORKERS", 1)
    port = _as_int(values["--port"], "APP_PORT")
    check_workers(workers, redis_url, port)

    https = args.https if args.https is not None else _truthy(env.get("APP_HTTPS", ""))
    demo = args.demo if args.demo is not None else _truthy(env.get("APP_DEMO", ""))
    return Settings(
        db_path=db_path,
        database_url=database_url,
        secret_key=load_secret_key(key_file, env),
        host=str(values["--host"]),
        port=port,
        api_key=None if api_key is None else str(api_key),
        log_level=log_level,
        https=https,
        currency=currency,
        argon2=Argon2Params(
            memory_kib=_as_int(values["--argon2-memory-kib"], "APP_ARGON2_MEMORY_KIB", 8),
            time_cost=_as_int(values["--argon2-time-cost"], "APP_ARGON2_TIME_COST", 1),
        ),
        session_idle_seconds=_as_int(
            values["--session-idle-seconds"], "APP_SESSION_IDLE_SECONDS", 60
        ),
        session_absolute_seconds=_as_int(
            values["--session-absolute-seconds"], "APP_SESSION_ABSOLUTE_SECONDS", 60
        ),
        demo=demo,
        allowed_origins=parse_origins(str(values["--allowed-origins"])),
        ws_heartbeat_seconds=_as_float(values["--ws-heartbeat"], "APP_WS_HEARTBEAT", 0.05),
        ws_heartbeat_timeout_seconds=_as_float(
            values["--ws-heartbeat-timeout"], "APP_WS_HEARTBEAT_TIMEOUT", 0.05
        ),
        ws_max_per_user=_as_int(values["--ws-max-per-user"], "APP_WS_MAX_PER_USER", 1),
        ws_replay_limit=_as_int(values["--ws-replay-limit"], "APP_WS_REPLAY_LIMIT", 1),
        ws_queue_size=_as_int(values["--ws-queue-size"], "APP_WS_QUEUE_SIZE", 1),
        vapid_private_key=_vapid_key(key_file.parent / "vapid.pem", env),
        vapid_subject=parse_vapid_subject(str(values["--vapid-subject"])),
        push_delay_seconds=_as_float(values["--push-delay"], "APP_PUSH_DELAY"),
        smtp_url=_smtp_url(values["--smtp-url"]),
        email_delay_seconds=_as_float(values["--email-delay"], "APP_EMAIL_DELAY"),
        email_from=str(values["--email-from"]),
        public_url=_public_url(values["--public-url"]),
        messages_per_minute=_as_int(values["--messages-per-minute"], "APP_MESSAGES_PER_MINUTE", 1),
        shutdown_spread_seconds=_as_float(values["--shutdown-spread"], "APP_SHUTDOWN_SPREAD"),
        header_timeout_seconds=_as_float(values["--header-timeout"], "APP_HEADER_TIMEOUT", 0.1),
        max_connections_per_address=_as_int(
            values["--max-connections-per-address"], "APP_MAX_CONNECTIONS_PER_ADDRESS"
        ),
        redis_url=redis_url,
        workers=workers,
    )
