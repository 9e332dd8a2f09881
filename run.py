"""Run the marketplace: `python run.py --help` lists every flag and its environment variable."""

from __future__ import annotations

import asyncio
import logging
import sys

from app import create_app
from app.config import ConfigError, settings_from_args
from app.db import DatabaseError
from app.migrate import MigrationError
from app.serving import raise_fd_limit, serve


def main() -> int:
    try:
        settings = settings_from_args()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    raise_fd_limit()
    app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}/"
    # Not web.run_app: its listening site has no place for the per-address connection cap.
    try:
        asyncio.run(serve(app, lambda: print(f"Serving the marketplace on {url}", flush=True)))
    except (DatabaseError, MigrationError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
