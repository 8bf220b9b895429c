"""The composition root: the one place that wires settings, database, router, services and channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib.resources import files

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy import text

from helpline import console
from helpline.appkeys import DB, INBOX, JOBS, METRICS, OUTBOX, SETTINGS
from helpline.booking.jobs import booking_jobs
from helpline.booking.routing import BookingClassifier
from helpline.cases import dialogue as case_dialogue
from helpline.cases.gauges import refresh_case_metrics
from helpline.cases.timers import escalate as escalate_cases
from helpline.classify import RuleClassifier
from helpline.config import Settings
from helpline.db import Database
from helpline.handlers import booking, emergency, grid, knowledge, menu, operator
from helpline.handlers.status import StatusDesk
from helpline.http import edge_middleware, json_response
from helpline.inbound import Inbox
from helpline.jobs import Job, JobRunner
from helpline.metrics import CONTENT_TYPE, Metrics
from helpline.outbox_worker import OutboxWorker, Sender, default_instance_id, refresh_outbox_metrics
from helpline.request import Intent
from helpline.router import Router

# Big enough for a form with a few photos (the portal), small enough to refuse abuse early.
MAX_BODY = 8 * 1024 * 1024


def build_router() -> Router:
    """Every intent handler the line knows, registered explicitly."""
    # Booking words (providers' "Y B1234567", "取消 B1234567") are heard before the general lists;
    # a bare "1".."5" nothing else understood may be the answer to a follow-up survey.
    router = Router(BookingClassifier(RuleClassifier.shipped()), fallback=booking.with_late_ratings(menu.fallback))
    router.register(Intent.EMERGENCY, emergency.emergency)
    status = StatusDesk()
    status.register(booking.booking_status)
    status.register(case_dialogue.lookup)  # CX 100001 (and "CX 100001 4", a rating)
    router.register(Intent.CASE_STATUS, status)
    router.register(Intent.OPERATOR, operator.operator)
    router.register(Intent.GRID_CASE, grid.grid_case)
    router.register(Intent.BOOKING, booking.booking)
    router.register(Intent.KNOWLEDGE, knowledge.knowledge)
    router.register(Intent.MENU, menu.menu)
    return router


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application; no I/O happens until it starts."""
    from channels import booking_api, cases_api, grid_api, open311, openapi, twilio_sms, twilio_voice
    from channels import web as web_channel
    from channels.twilio_common import warn_if_unsigned

    app = web.Application(middlewares=[edge_middleware], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_outbox)
    app.cleanup_ctx.append(_jobs)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(files("templates"))),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    web_channel.setup(app)
    twilio_sms.setup(app)
    twilio_voice.setup(app)
    grid_api.setup(app)  # GET /api/v1/grid/cells
    open311.setup(app)  # /open311/v2/: GeoReport v2 services and requests
    cases_api.setup(app)  # /console/api/cases: the staff's case API; dashboard panel and map layer
    booking_api.setup(app)  # /api/v1/services, /api/v1/bookings
    openapi.setup(app)  # GET /api/v1/openapi.json: the public JSON API described (OpenAPI 3.1)
    console.setup(app)  # /console/: sign-in, queue, conversations, knowledge editor, dashboard, users
    if settings.telegram_token:  # aiogram is imported only when Telegram is configured
        from channels import telegram

        telegram.setup(app)  # POST /telegram/webhook, and a cleanup_ctx entry for the bot's session
    warn_if_unsigned(settings)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = Database.from_url(settings.database_url)
    app[DB] = db
    inbox = Inbox(db, build_router(), settings, app[METRICS])
    app[INBOX] = inbox
    try:
        yield
    finally:
        await inbox.close()
        await db.dispose()


async def _outbox(app: web.Application) -> AsyncIterator[None]:
    """The outbox worker runs in every instance; claims and leases keep them from sending twice."""
    from channels.twilio_sender import build_sms_sender
    from helpline.cases.forwarding import ForwardSender

    settings = app[SETTINGS]
    sms = build_sms_sender(settings)  # None without Twilio credentials: SMS rows are skipped, with the reason
    senders: dict[str, Sender] = {"sms": sms} if sms else {}
    telegram = None
    if settings.telegram_token:
        from channels.telegram_sender import TelegramSender

        telegram = senders["telegram"] = TelegramSender(settings, db=app[DB])
    forward = senders["forward"] = ForwardSender(app[DB], settings)  # cases to departments' own platforms
    from channels.portal.sender import PortalSender

    senders["web"] = PortalSender()  # web residents read their replies on the portal's /talk page
    worker = OutboxWorker(app[DB], settings, app[METRICS], senders, default_instance_id(),
                          lease=timedelta(seconds=settings.outbox_lease_seconds))
    app[OUTBOX] = worker
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()  # finish the batch in hand, then release what is still claimed
        try:
            await asyncio.wait_for(task, 30)
        except TimeoutError:
            pass
        if sms is not None:
            await sms.close()
        if telegram is not None:
            await telegram.close()
        await forward.close()


def build_jobs(settings: Settings) -> list[Job]:
    """Every scheduled job the line runs (reminders, surveys, escalations), registered explicitly."""
    return [
        Job("case_escalation", escalate_cases),  # yellow and red case timers, once each
        *booking_jobs(settings),  # slots ahead, reminders, unanswered dispatches, follow-up surveys
    ]


async def _jobs(app: web.Application) -> AsyncIterator[None]:
    """Scheduled jobs run in every instance; a lease per job keeps two instances from running it at once."""
    runner = JobRunner(app[DB], default_instance_id(), build_jobs(app[SETTINGS]))
    app[JOBS] = runner
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        except TimeoutError:
            task.cancel()


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[DB].read() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return json_response({"status": "unavailable", "error": "database does not answer"}, status=503)
    return json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    await refresh_outbox_metrics(request.app[DB], request.app[METRICS])
    await refresh_case_metrics(request.app[DB], request.app[METRICS])  # open cases by traffic light
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
