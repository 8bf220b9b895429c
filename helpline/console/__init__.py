"""The operator console at ``/console/``: the web workplace of operators, supervisors,
departments and admins.

``setup(app)`` is called once by the composition root. Other packages add their pages with
``register_page`` (and dashboard figures with ``register_dashboard_panel`` /
``register_map_layer``), render them with ``render`` inside the console's shell
(``templates/console/base.html``), and guard them with ``require`` / ``require_permission``; the
console's middleware gives every page under ``/console`` the session, CSRF check and security
headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.resources import files

from aiohttp import web

from helpline.appkeys import SETTINGS
from helpline.console import (
    bookings_pages,
    candidates,
    cases_pages,
    conversations,
    dashboard,
    kb,
    live,
    queue,
    signin,
    users_admin,
)
from helpline.console.auth import PERMISSIONS, can, check_department, department_scope, require, require_permission
from helpline.console.live import console_write
from helpline.console.middleware import console_middleware
from helpline.console.pages import register_dashboard_panel, register_map_layer, register_page
from helpline.console.render import Viewer, flash, redirect, render
from helpline.console.sessions import CODEC, SessionCodec

__all__ = [
    "PERMISSIONS",
    "Viewer",
    "can",
    "check_department",
    "console_write",
    "department_scope",
    "flash",
    "redirect",
    "register_dashboard_panel",
    "register_map_layer",
    "register_page",
    "render",
    "require",
    "require_permission",
    "setup",
]


async def _session_keys(app: web.Application) -> AsyncIterator[None]:
    """At start, not in create_app: the secret key may have to be generated and written first."""
    app[CODEC] = SessionCodec(app[SETTINGS].resolved_secret_key())
    yield


def setup(app: web.Application) -> None:
    """Routes, middleware, the live hub and the console's own pages."""
    app.middlewares.append(console_middleware)
    app.cleanup_ctx.append(_session_keys)
    app.cleanup_ctx.append(live.live_ctx)
    app.on_shutdown.append(live.close_sockets)
    r = app.router
    r.add_static("/console/static/", str(files("templates") / "console" / "static"), name="console_static")
    r.add_get("/console", signin.home)
    r.add_get("/console/", signin.home)
    r.add_get("/console/login", signin.login_page)
    r.add_post("/console/login", signin.login_submit)
    r.add_post("/console/logout", signin.logout)
    r.add_get("/console/ws", live.websocket)

    r.add_get("/console/queue", queue.queue_page)
    r.add_get("/console/queue/items", queue.queue_items)
    r.add_get("/console/queue/count", queue.queue_count)
    r.add_post("/console/queue/{id}/claim", queue.claim_action)
    r.add_post("/console/conversations/{id}/release", queue.release_action)

    r.add_get("/console/conversations", conversations.conversations_page)
    r.add_get("/console/conversations/{id}", conversations.conversation_page)
    r.add_get("/console/conversations/{id}/thread", conversations.thread_fragment)
    r.add_post("/console/conversations/{id}/reply", conversations.reply_action)
    r.add_post("/console/conversations/{id}/close", conversations.close_action)

    r.add_get("/console/kb", kb.kb_list)
    r.add_get("/console/kb/candidates", candidates.kb_candidates)
    r.add_get("/console/kb/new", kb.kb_new)
    r.add_post("/console/kb/new", kb.kb_create)
    r.add_get("/console/kb/{id:\\d+}", kb.kb_edit)
    r.add_post("/console/kb/{id:\\d+}", kb.kb_save)
    r.add_post("/console/kb/{id:\\d+}/publish", kb.kb_publish)
    r.add_post("/console/kb/{id:\\d+}/retire", kb.kb_retire)
    r.add_post("/console/kb/{id:\\d+}/reviewed", kb.kb_reviewed)

    r.add_get("/console/dashboard", dashboard.dashboard_page)

    r.add_get("/console/users", users_admin.users_page)
    r.add_post("/console/users", users_admin.user_add)
    r.add_post("/console/users/{id}/deactivate", users_admin.user_deactivate)
    r.add_post("/console/users/{id}/activate", users_admin.user_activate)
    r.add_post("/console/users/{id}/unlock", users_admin.user_unlock)

    register_page(app, "queue", "接待队列", "Queue", PERMISSIONS["queue.view"], "/console/queue")
    register_page(
        app, "conversations", "会话记录", "Conversations", PERMISSIONS["conversation.view"], "/console/conversations"
    )
    register_page(app, "knowledge", "知识库", "Knowledge", PERMISSIONS["kb.view"], "/console/kb")
    register_page(app, "dashboard", "数据看板", "Dashboard", PERMISSIONS["dashboard.view"], "/console/dashboard")
    register_page(app, "users", "账号管理", "Users", PERMISSIONS["users.manage"], "/console/users")
    cases_pages.setup(app)  # /console/cases: the grid cases, their timelines and actions
    bookings_pages.setup(app)  # /console/bookings, /console/providers
