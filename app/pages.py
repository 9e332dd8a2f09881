"""Pages that belong to no feature: the front door and the health check."""

from __future__ import annotations

from aiohttp import web

from app import keys


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(request.app.router["services"].url_for())


async def healthz(request: web.Request) -> web.StreamResponse:
    await request.config_dict[keys.DB].fetch_value("SELECT 1")
    return web.json_response({"status": "ok"})
