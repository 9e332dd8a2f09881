"""Run the marketplace: `python run.py --help` lists every flag and its environment variable."""

from __future__ import annotations

import asyncio
import sys

from app import create_app
from app.config import ConfigError, settings_from_args
from app.db import DatabaseError
from app.migrate import MigrationError
from app.serving import raise_fd_limit, serve
from app.workers import Supervisor, configure_logging, prepare_database, serving_line


def main() -> int:
    try:
        settings = settings_from_args()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    raise_fd_limit()  # inherited by worker processes
    if settings.workers > 1:
        asyncio.run(prepare_database(settings))
        return Supervisor(settings).run()
    app = create_app(settings)
    # Not web.run_app: its listening site has no place for the per-address connection cap.
    try:
        asyncio.run(serve(app, lambda: print(serving_line(settings), flush=True)))
    except (DatabaseError, MigrationError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
