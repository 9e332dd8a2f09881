"""Pages that belong to no feature: the home page and the health check."""

from __future__ import annotations

import os

from aiohttp import web

from app import keys
from app.marketplace import categories, services
from app.rendering import render


async def index(request: web.Request) -> web.StreamResponse:
    """The front door: what the site is, a search, the categories, a few featured services."""
    featured = await services.featured_services(request.config_dict[keys.DB])
    return await render(
        request, "home.html", {"featured": featured, "categories": categories.CATEGORIES}
    )


async def healthz(request: web.Request) -> web.StreamResponse:
    """200 while the database answers (an error page, 500, when it does not). A broker that
    cannot reach the other processes makes the site degraded, not down: this process still
    stores and delivers to its own sockets, and the others catch up once it is back."""
    await request.config_dict[keys.DB].fetch_value("SELECT 1")
    broker_up = request.config_dict[keys.BROKER].up
    return web.json_response(
        {
            "status": "ok" if broker_up else "degraded",
            "database": "ok",
            "broker": "up" if broker_up else "down",
            # Which worker answered (several share the port with --workers).
            "pid": os.getpid(),
        }
    )
