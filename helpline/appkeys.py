"""Typed keys for the application's shared state (set by the composition root, read by handlers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from helpline.config import Settings
    from helpline.db import Database
    from helpline.inbound import Inbox
    from helpline.jobs import JobRunner
    from helpline.metrics import Metrics
    from helpline.outbox_worker import OutboxWorker

SETTINGS: web.AppKey["Settings"] = web.AppKey("settings")
DB: web.AppKey["Database"] = web.AppKey("db")
INBOX: web.AppKey["Inbox"] = web.AppKey("inbox")
METRICS: web.AppKey["Metrics"] = web.AppKey("metrics")
OUTBOX: web.AppKey["OutboxWorker"] = web.AppKey("outbox_worker")
JOBS: web.AppKey["JobRunner"] = web.AppKey("jobs")
