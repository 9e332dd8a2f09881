"""Run the marketplace: `python run.py --help` lists every flag and its environment variable."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from app import create_app
from app.config import ConfigError, settings_from_args


def main() -> int:
    try:
        settings = settings_from_args()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}/"
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=lambda _text: print(f"Serving the marketplace on {url}", flush=True),
        access_log=None,
        backlog=1024,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
