"""The resident portal at ``/``: ask, browse, book, report and track from any phone browser.

Server-rendered, small pages in Chinese and English that work without JavaScript (a small
script makes them nicer: the map tap, the browser's location, photo shrinking, live replies).
Every route below is the portal's; ``channels.web`` keeps the JSON API and calls ``setup``.

    GET  /                      home: the question box and the four paths
    POST /ask                   a question, through the Inbox; the answer page
    POST /ask/feedback          "this helped" / "it did not"
    POST /talk                  not helped: the conversation joins the operators' queue
    GET  /talk                  the web conversation with the operator (POST /talk/send adds to it)
    GET  /kb, /kb/{category}, /kb/a/{slug}   the knowledge base by category, and its articles
    GET  /book, /book/{code}    services; a service's free times and the booking form (POST)
    GET  /booking/{id}          a booking: confirmation, cancel, change the time (the id is unguessable)
    GET  /report, POST /report  report a street problem (class, place, up to 3 photos) -> case number
    GET  /track, POST /track    a case or booking by number + phone; POST /track/rate rates it
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from channels.portal import ask, book, kb, report, track
from channels.portal.common import KEYS, STATIC, PortalKeys, load_static, portal_middleware, setup_limits, static_file
from helpline.appkeys import SETTINGS


async def _start(app: web.Application) -> AsyncIterator[None]:
    """At start, not in create_app: the secret key may have to be generated and written first,
    and the static files are read once (no I/O while the app is only being built)."""
    app[KEYS] = PortalKeys.derive(app[SETTINGS].resolved_secret_key())
    app[STATIC] = load_static()
    yield


def setup(app: web.Application) -> None:
    app.middlewares.append(portal_middleware)
    app.cleanup_ctx.append(_start)
    setup_limits(app)  # reports and bookings per browser and address
    track.setup_limits(app)  # look-ups per browser and address
    r = app.router
    r.add_get("/portal/static/{name}", static_file)
    r.add_get("/", ask.home)
    r.add_post("/", ask.ask)  # pages rendered by the earlier portal posted their question here
    r.add_get("/ask", ask.ask_get)
    r.add_post("/ask", ask.ask)
    r.add_post("/ask/feedback", ask.feedback)
    r.add_get("/talk", ask.talk)
    r.add_post("/talk", ask.talk_start)
    r.add_post("/talk/send", ask.talk_send)
    r.add_get("/talk/messages", ask.talk_messages)
    r.add_get("/kb", kb.index)
    r.add_get("/kb/a/{slug}", kb.article)
    r.add_get("/kb/{category}", kb.category)
    r.add_get("/book", book.services)
    r.add_get("/book/{code}", book.service_page)
    r.add_post("/book/{code}", book.book_submit)
    r.add_get("/booking/{id}", book.manage)
    r.add_post("/booking/{id}/cancel", book.cancel_submit)
    r.add_get("/booking/{id}/reschedule", book.reschedule_page)
    r.add_post("/booking/{id}/reschedule", book.reschedule_submit)
    r.add_get("/report", report.form)
    r.add_post("/report", report.submit)
    r.add_get("/report/done", report.done)
    r.add_get("/report/suggest", report.suggest)
    r.add_get("/track", track.form)
    r.add_post("/track", track.lookup)
    r.add_post("/track/rate", track.rate)
