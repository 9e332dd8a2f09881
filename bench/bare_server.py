"""The floor for our stack: a bare aiohttp WebSocket server, a dict of user to sockets, nothing
else (no auth, no storage, no queues). Same workloads as the real server:

    GET  /ws?user=ID            open a socket for user ID
    POST /publish               {"user_ids": [...], "type": "...", "data": {...}} -> 202

Run: python bench/bare_server.py PORT
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

SOCKETS = web.AppKey("sockets", dict)


async def ws_handler(request: web.Request) -> web.StreamResponse:
    user_id = int(request.query["user"])
    ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024)
    await ws.prepare(request)
    sockets: dict[int, set[web.WebSocketResponse]] = request.app[SOCKETS]
    sockets.setdefault(user_id, set()).add(ws)
    await ws.send_str(json.dumps({"type": "welcome", "user_id": user_id}))
    try:
        async for _message in ws:
            pass
    finally:
        sockets[user_id].discard(ws)
    return ws


async def publish(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    text = json.dumps({"type": body.get("type", "notification"), "data": body["data"]})
    sockets: dict[int, set[web.WebSocketResponse]] = request.app[SOCKETS]
    for user_id in body["user_ids"]:
        for ws in tuple(sockets.get(user_id, ())):
            await ws.send_str(text)
    return web.json_response({"ok": True}, status=202)


def main() -> None:
    app = web.Application()
    app[SOCKETS] = {}
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/publish", publish)
    port = int(sys.argv[1])
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        backlog=1024,
        access_log=None,
        print=lambda _t: print(f"Serving bare on http://127.0.0.1:{port}/", flush=True),
    )


if __name__ == "__main__":
    main()
