"""HTTP edge shared by every channel: request ids, JSON errors, no stack trace ever reaches a client."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from helpline.appkeys import METRICS, SETTINGS
from helpline.logs import request_id

log = logging.getLogger("helpline.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    """Input we refuse, with a message that names the problem; becomes 400 (or ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with readable (and shorter) Chinese: UTF-8, not \\u escapes."""
    return web.json_response(data, status=status, dumps=_dumps)


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status=status)


class SlowBody(asyncio.TimeoutError):
    """The client did not finish sending the request body in time (a TimeoutError, so that
    aiohttp's lingering read after the response ends quietly)."""


def _too_big(request: web.Request) -> web.Response | None:
    """A body announced larger than the limit is refused before a byte of it is read."""
    length = request.content_length
    if length is not None and length > request.client_max_size:
        response = json_error(413, "request body too large")
        response.force_close()  # the rest of the body is not read: the connection cannot be reused
        return response
    return None


def _body_deadline(request: web.Request) -> asyncio.TimerHandle | None:
    """Cut off a client that trickles its body: after the client timeout, reading it fails."""
    content = request.content
    if not request.body_exists or content.is_eof():
        return None
    seconds = request.app[SETTINGS].client_timeout_seconds

    def expire() -> None:
        if not content.is_eof():
            content.set_exception(SlowBody(f"request body not received within {seconds:g} s"))

    return asyncio.get_running_loop().call_later(seconds, expire)


def _wants_json(request: web.Request) -> bool:
    path = request.path
    return not (path == "/" or path.startswith("/console") or path.startswith("/static"))


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tag the request with an id, time it, and turn every failure into a clean response."""
    rid = request.headers.get("X-Request-Id", "")[:64] or secrets.token_hex(8)
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        deadline = None
        try:
            response = _too_big(request)
            if response is None:
                deadline = _body_deadline(request)
                response = await handler(request)
        except BadRequest as exc:
            response = json_error(exc.status, exc.message)
        except SlowBody:
            log.warning("event=http.slow_body method=%s path=%s", request.method, request.path)
            response = json_error(408, "the request body came too slowly")
            response.force_close()
        except web.HTTPException as exc:
            # A body over the limit is refused as JSON everywhere (the portal and console included).
            if exc.status >= 400 and (_wants_json(request) or exc.status == 413):
                message = "request body too large" if exc.status == 413 else exc.reason.lower()
                response = json_error(exc.status, message)
                if "Allow" in exc.headers:
                    response.headers["Allow"] = exc.headers["Allow"]
            else:
                raise
        except Exception:
            log.exception("event=http.error method=%s path=%s", request.method, request.path)
            response = json_error(500, "internal error; the request id identifies it in our logs", request_id=rid)
        finally:
            if deadline is not None:
                deadline.cancel()
        status = response.status
        response.headers["X-Request-Id"] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        request.app[METRICS].http.labels(route, request.method, str(status)).observe(time.perf_counter() - started)
        request_id.reset(token)
