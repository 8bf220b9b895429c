"""The Twilio voice channel: a bilingual phone menu (IVR) in front of the same router as every channel.

Twilio posts ``/twilio/voice`` when a call comes in, then the ``action`` URLs of the TwiML we
return. Whatever a caller *tells* the line (a question, a place, a case number) goes through
``Inbox.handle`` like an SMS or a chat message, so it is stored, routed and deduplicated the same
way; only the navigation (menus, recordings, the operator queue) lives here, and what the line
says lives in ``channels/voice_prompts.py``.

The URLs carry the call's state: the language, a step number ``s`` that grows along the call and
a silence count ``r``. So ``CallSid:<step name>.<s>`` names one webhook of one call: a webhook
Twilio re-sends (it retries when it got no answer) has the same name and is stored once, while a
caller who comes back to the same menu later gets a new one. Every call is kept as a ``Call`` row:
its path through the menu, recordings, and status and duration from the status callback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, time
from functools import partial
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from twilio.twiml.voice_response import VoiceResponse

from channels import voice_prompts as vp
from channels.twilio_common import signed_form
from helpline.appkeys import DB, INBOX, SETTINGS
from helpline.contacts import contact_for, current_conversation
from helpline.http import BadRequest
from helpline.inbound import Handled, HandlingFailed
from helpline.logs import mask_urn
from helpline.models import Call, Conversation, Event, Message, utcnow
from helpline.outbox import enqueue
from helpline.phones import tel_urn
from helpline.request import Channel, Intent, Reply, Request

log = logging.getLogger("helpline.voice")

# Operators' hours in settings.timezone, and the Twilio queue callers wait in. (The voice, its
# language codes and the recording limits are at the top of channels/voice_prompts.py.)
OPEN_FROM, OPEN_UNTIL = time(8, 0), time(20, 0)
QUEUE_NAME = "helpline"

PREFIX = vp.PREFIX
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
MODES = ("ask", "book", "number", "place", "report")
TOPICS = (None, "farm", "community", "any")
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_STEP = re.compile(r"^[a-z]+\.\d{1,5}p?$")

Clock = Callable[[], datetime]
CLOCK: web.AppKey[Clock] = web.AppKey("voice_clock")


def setup(app: web.Application, clock: Clock | None = None) -> None:
    """Register the voice webhooks; ``clock`` (UTC now) decides opening hours. Calling it again on
    the same app only swaps the clock, so tests can fix the time of an app that already has it."""
    if CLOCK in app:
        if clock is not None:
            app[CLOCK] = clock
        return
    app[CLOCK] = clock or utcnow
    for path, handler in ROUTES.items():
        app.router.add_post(PREFIX + path, _twiml(handler))


def is_open(now: datetime, zone: Any) -> bool:
    """Whether operators answer now (local time in the centre's zone)."""
    return OPEN_FROM <= now.astimezone(zone).time() < OPEN_UNTIL


@dataclass(frozen=True)
class Turn:
    """One webhook of one call: who calls, which step, in which language, what they pressed or said."""

    request: web.Request
    form: MultiDictProxy[str]
    sid: str
    urn: str
    lang: str
    name: str
    s: int
    r: int
    digits: str
    speech: str
    conversation_id: str | None = None

    @property
    def step(self) -> str:
        return f"{self.name}.{self.s}"

    @property
    def heard(self) -> str:
        return self.digits or self.speech

    @property
    def key(self) -> str:
        return self.digits[:1]

    def t(self, key: str, **fields: object) -> str:
        return vp.text(key, self.lang, **fields)

    def url(self, path: str, *, r: int = 0, lang: str | None = None, **extra: str | None) -> str:
        """A follow-up URL: relative (Twilio resolves it), carrying the next step number."""
        query = {"lang": lang or self.lang, "s": self.s + 1, "r": r, **{k: v for k, v in extra.items() if v}}
        return f"{PREFIX}{path}?{urlencode(query)}"


Webhook = Callable[[web.Request], Awaitable[VoiceResponse]]


def _twiml(handler: Webhook) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def respond(request: web.Request) -> web.Response:
        return web.Response(text=str(await handler(request)), content_type="application/xml")

    respond.__name__ = handler.__name__
    return respond


# --- the webhook edge: signature, fields, the call record -------------------------------------------

def _field(form: MultiDictProxy[str], name: str) -> str:
    value = str(form.get(name, "")).strip()
    if not value:
        raise BadRequest(f"missing field {name!r}")
    return value


def _query_int(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "0")
    if not raw.isdigit() or len(raw) > 5:
        raise BadRequest(f"query parameter {name!r} must be a small whole number")
    return int(raw)


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang") or request.app[SETTINGS].default_lang
    if lang not in vp.SAY_LANGUAGE:
        raise BadRequest("query parameter 'lang' must be 'zh' or 'en'")
    return lang


def _q(request: web.Request) -> str:
    q = request.query.get("q", "")
    if not _STEP.match(q):
        raise BadRequest("query parameter 'q' must name a step of the call")
    return q


async def _begin(request: web.Request, name: str) -> Turn:
    """Check the signature and fields, then store the call (once) and this step of its path."""
    form = await signed_form(request)
    sid = _field(form, "CallSid")
    if not _SID.match(sid):
        raise BadRequest("'CallSid' must be 1-64 letters, digits, '_' or '-'")
    caller = _field(form, "From")
    turn = Turn(
        request=request, form=form, sid=sid, lang=_lang(request), name=name,
        urn=tel_urn(caller, request.app[SETTINGS].default_region) or f"voice:{sid}",  # a withheld number
        s=_query_int(request, "s"), r=_query_int(request, "r"),
        digits=str(form.get("Digits", "")).strip(), speech=str(form.get("SpeechResult", "")).strip()[:500],
    )
    for attempt in range(3):
        try:
            async with request.app[DB].write() as session:
                call = await _call(session, turn)
                if not any(entry.get("step") == turn.step for entry in call.path[-20:]):  # else a re-send
                    via = "dtmf" if turn.digits else "speech" if turn.speech else None
                    call.path = [*call.path, {"at": utcnow().isoformat(), "menu": name, "input": turn.heard or None,
                                              "via": via, "step": turn.step}]
                call.lang = turn.lang
                conversation_id = call.conversation_id
            return replace(turn, conversation_id=conversation_id)
        except IntegrityError:  # a call's first webhooks (or a new caller's two calls) raced: read theirs
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _call(session: AsyncSession, turn: Turn) -> Call:
    """The call's row, locked; created with its contact and conversation on the first webhook."""
    call = await session.scalar(select(Call).where(Call.call_sid == turn.sid).with_for_update())
    if call is not None:
        return call
    now = utcnow()
    contact = await contact_for(session, turn.urn)
    conv = await current_conversation(session, contact, Channel.VOICE.value, now)
    call = Call(
        call_sid=turn.sid, contact_id=contact.id, conversation_id=conv.id, urn=turn.urn,
        to_number=str(turn.form.get("To", ""))[:32] or None, lang=turn.lang,
        status=str(turn.form.get("CallStatus", ""))[:24] or "in-progress", path=[], recordings=[], started_at=now,
    )
    session.add(call)
    await session.flush()
    log.info("event=call.started call=%s contact=%s", turn.sid, mask_urn(turn.urn))
    return call


async def _waiting(session: AsyncSession, call: Call, action: str, data: dict[str, Any]) -> Conversation:
    """Put the call's conversation in the operators' queue, with an audit event saying why."""
    conv = await _locked_conversation(session, call)
    if conv is None or conv.status == "closed":
        contact = await contact_for(session, call.urn)
        conv = await current_conversation(session, contact, Channel.VOICE.value, utcnow())
        call.conversation_id = conv.id
    conv.status = "waiting"
    conv.updated_at = utcnow()
    session.add(Event(actor=f"contact:{call.contact_id}", action=action, subject_type="conversation",
                      subject_id=conv.id, data={"call_sid": call.call_sid, "urn": call.urn, **data}))
    return conv


async def _locked_conversation(session: AsyncSession, call: Call) -> Conversation | None:
    if call.conversation_id is None:
        return None
    return await session.get(Conversation, call.conversation_id, with_for_update=True)


def _keep(call: Call, entry: dict[str, Any]) -> dict[str, Any]:
    """Add or update a recording of the call (matched by its URL or SID); returns the stored entry."""
    recordings = [dict(r) for r in call.recordings]
    for rec in recordings:
        if any(entry.get(k) and rec.get(k) == entry[k] for k in ("url", "sid")):
            rec.update({k: v for k, v in entry.items() if v is not None})
            break
    else:
        rec = {k: v for k, v in entry.items() if v is not None}
        recordings.append(rec)
    call.recordings = recordings
    return rec


def _recording(turn: Turn, kind: str) -> dict[str, Any]:
    """A recording Twilio posted (Record action), as the call keeps it."""
    duration = str(turn.form.get("RecordingDuration", ""))
    return {
        "url": str(turn.form.get("RecordingUrl", "")).strip(), "sid": str(turn.form.get("RecordingSid", "")) or None,
        "duration_s": int(duration) if duration.isdigit() and len(duration) < 7 else None, "kind": kind,
        "step": turn.step, "at": utcnow().isoformat(),
    }


# --- talking to the router ----------------------------------------------------------------------------

async def _route(turn: Turn, text: str, suffix: str = "") -> Handled | None:
    """The caller's words through the one door every channel uses; None when it could not answer now."""
    limit = turn.request.app[SETTINGS].max_text_length
    request = Request(channel=Channel.VOICE, address=turn.urn, text=text[:limit], lang=turn.lang,
                      provider_id=f"{turn.sid}:{turn.step}{suffix}")
    try:
        return await turn.request.app[INBOX].handle(request)
    except HandlingFailed:
        return None


async def _flow(turn: Turn, handled: Handled | None) -> str | None:
    """The dialogue the router is in after a reply (e.g. a case waiting for its place)."""
    if handled is None:
        return None
    async with turn.request.app[DB].read() as session:
        conv = await session.get(Conversation, handled.conversation_id)
    return (conv.state or {}).get("flow") if conv is not None else None


async def _stored_reply(turn: Turn, q: str) -> Reply | None:
    """The reply given at step ``q`` of this call, read back to repeat or text it."""
    inbound = aliased(Message)
    async with turn.request.app[DB].read() as session:
        out = await session.scalar(
            select(Message).join(inbound, Message.reply_to_id == inbound.id).where(
                inbound.channel == Channel.VOICE.value, inbound.provider_id == f"{turn.sid}:{q}",
                inbound.direction == "in", Message.direction == "out",
            )
        )
    return Reply.from_dict(out.meta["response"]) if out is not None else None


async def _text_me(turn: Turn, q: str, body: str) -> bool:
    """Queue ``body`` by SMS to the caller, once per answer; False when the number is unknown."""
    if not turn.urn.startswith("tel:"):
        return False
    async with turn.request.app[DB].write() as session:
        await enqueue(session, turn.urn, body, kind="voice_answer", key=f"{turn.sid}:{q}:sms")
    return True


async def _converse(turn: Turn, text: str, mode: str) -> VoiceResponse:
    handled = await _route(turn, text)
    if handled is None:
        return vp.menu(turn, intro=(turn.t("busy"),))
    return await _render(turn, handled, mode, q=turn.step)


async def _render(turn: Turn, handled: Handled, mode: str, *, q: str) -> VoiceResponse:
    """Speak the router's reply and choose what the caller can do next."""
    reply = handled.reply
    flow = await _flow(turn, handled)
    if reply.intent is Intent.OPERATOR:
        return await _operator(turn, routed=True)
    if flow == Intent.GRID_CASE.value:
        return vp.listen(turn, "place", intro=(reply.text,))  # the case waits for its place
    if flow == Intent.CASE_STATUS.value:
        return vp.listen(turn, "number")
    if reply.intent is Intent.MENU:
        return vp.menu(turn)
    if reply.article is None and reply.intent in (Intent.UNKNOWN, Intent.KNOWLEDGE):
        if flow == Intent.KNOWLEDGE.value and any(o.key != "0" for o in reply.options):  # closest topics
            return vp.topics(turn, q, [(o.key, o.label) for o in reply.options])
        if turn.r >= 1:  # twice not understood: a person will
            return await _operator(turn, intro=(turn.t("not_understood"),))
        return vp.listen(turn, mode if mode in ("ask", "book") else "ask", r=1, intro=(turn.t("not_understood"),))
    if reply.intent is Intent.GRID_CASE:  # a case taken with its place: confirm by SMS too
        await _text_me(turn, q, reply.text)
    return vp.options(turn, q, intro=(reply.text,))


async def _operator(turn: Turn, *, routed: bool = False, intro: Iterable[str] = ()) -> VoiceResponse:
    """Queue the conversation for operators (through the router, as "0" on every channel) and put the
    call in Twilio's queue; out of hours offer a message or a call-back instead."""
    if not routed:
        await _route(turn, "0", ":op")
    if not is_open(turn.request.app[CLOCK](), turn.request.app[SETTINGS].zone):
        closed = turn.t("closed", open=OPEN_FROM.strftime("%H:%M"), close=OPEN_UNTIL.strftime("%H:%M"))
        return vp.offline(turn, intro=(*intro, closed))
    resp = VoiceResponse()
    for words in (*intro, turn.t("connecting")):
        vp.speak(resp, turn.lang, words)
    resp.enqueue(QUEUE_NAME, action=turn.url("/queue"), method="POST",
                 wait_url=f"{PREFIX}/hold?lang={turn.lang}", wait_url_method="POST")
    return resp


# --- webhooks -------------------------------------------------------------------------------------------

async def incoming(request: web.Request) -> VoiceResponse:
    turn = await _begin(request, "call")
    return vp.menu(turn, intro=(turn.t("welcome"),))


async def menu(request: web.Request) -> VoiceResponse:
    turn = await _begin(request, "menu")
    return vp.menu(turn, r=turn.r, intro=(turn.t("more"),))


async def menu_choice(request: web.Request) -> VoiceResponse:
    turn = await _begin(request, "main")
    if not turn.heard:
        return vp.silent(turn, turn.r, partial(vp.menu, turn))
    key = turn.key or vp.spoken_choice(turn.speech)
    if key is None:  # a whole sentence: the caller asked straight away
        return await _converse(turn, turn.speech, "ask")
    if key == "9":
        return vp.menu(replace(turn, lang="en" if turn.lang == "zh" else "zh"))
    if key in ("1", "2"):
        return vp.listen(turn, "ask", topic="farm" if key == "1" else "community")
    if key in ("3", "5"):
        return vp.listen(turn, "book" if key == "3" else "number")
    if key == "4":
        return vp.report(turn)
    if key == "0":
        return await _operator(turn)
    return vp.menu(turn, r=turn.r, intro=(turn.t("not_option"),))


async def heard(request: web.Request) -> VoiceResponse:
    """What the caller said or keyed in when asked for a question, a service, a number or a place."""
    mode, topic = request.query.get("mode", ""), request.query.get("topic") or None
    if mode not in MODES or topic not in TOPICS:
        raise BadRequest("unknown 'mode' or 'topic'")
    turn = await _begin(request, mode)
    again = partial(vp.listen, turn, mode, topic=topic)
    if mode == "report":
        return await _report_place(turn)
    if not turn.heard:
        return vp.silent(turn, turn.r, again)
    if mode == "ask" and turn.digits:  # keys while asked to speak: navigation
        if turn.key == "1":
            return again(r=turn.r)
        if turn.key in ("*", "9"):
            return vp.menu(turn)
        if turn.key == "0":
            return await _operator(turn)
        return again(r=turn.r, intro=(turn.t("not_option"),))
    if mode == "number" or (mode == "book" and turn.digits):
        digits = "".join(ch for ch in turn.heard if ch.isdigit())
        if len(digits) < 3:
            return vp.listen(turn, "number", r=turn.r, intro=(turn.t("number_short"),))
        return await _converse(turn, f"CX {digits}", mode)
    return await _converse(turn, turn.heard, mode)


async def answer(request: web.Request) -> VoiceResponse:
    """After an answer: 1 repeat, 2 by SMS, 3 another question, 0 operator, * menu."""
    turn = await _begin(request, "answer")
    q = _q(request)
    if not turn.key:
        return vp.silent(turn, turn.r, partial(vp.options, turn, q))
    if turn.key in ("1", "2"):
        reply = await _stored_reply(turn, q)
        if reply is None:
            return vp.menu(turn)
        if turn.key == "1":
            return vp.options(turn, q, intro=(reply.text,))
        sent = await _text_me(turn, q, reply.text)
        return vp.options(turn, q, intro=(turn.t("sms_queued" if sent else "sms_unavailable"),))
    if turn.key == "3":
        return vp.listen(turn, "ask", topic="any")
    if turn.key == "0":
        return await _operator(turn)
    if turn.key in ("*", "9"):
        return vp.menu(turn)
    return vp.options(turn, q, r=turn.r, intro=(turn.t("not_option"),))


async def pick(request: web.Request) -> VoiceResponse:
    """A topic chosen by key: the router's own dialogue knows which topic each number was."""
    turn = await _begin(request, "pick")
    q = _q(request)
    if turn.key == "*":
        return vp.listen(turn, "ask", topic="any")
    if turn.key == "0":
        return await _operator(turn)
    reply = await _stored_reply(turn, q)
    if reply is None:
        return vp.menu(turn)
    choices = [(o.key, o.label) for o in reply.options]
    if not turn.key:
        return vp.silent(turn, turn.r, partial(vp.topics, turn, q, choices))
    if turn.key not in {key for key, _ in choices}:
        return vp.topics(turn, q, choices, r=turn.r, intro=(turn.t("not_option"),))
    return await _converse(turn, turn.key, "ask")


async def report(request: web.Request) -> VoiceResponse:
    """Reached when the first recording came back empty: ask once more."""
    turn = await _begin(request, "record")
    return vp.report(turn, r=turn.r, intro=(turn.t("no_recording"),) if turn.r else ())


async def report_recorded(request: web.Request) -> VoiceResponse:
    """The description is recorded: keep it on the call and in the conversation's report draft, ask where."""
    turn = await _begin(request, "recorded")
    rec = _recording(turn, "report")
    if not rec["url"]:
        return vp.report(turn, r=1, intro=(turn.t("no_recording"),))
    async with request.app[DB].write() as session:
        call = await _call(session, turn)
        _keep(call, rec)
        conv = await _locked_conversation(session, call)
        if conv is not None:  # the grid handler keeps its own keys beside ours
            draft = (conv.state or {}).get("report")
            conv.state = {**(conv.state or {}), "report": {**(draft if isinstance(draft, dict) else {}),
                                                           "recording_url": rec["url"], "call_sid": turn.sid}}
    return vp.listen(turn, "report")


async def report_transcript(request: web.Request) -> VoiceResponse:
    """Twilio's transcription of a recording: kept beside it, and used to code the report."""
    form = await signed_form(request)
    sid = _field(form, "CallSid")
    words = str(form.get("TranscriptionText", "")).strip()
    if form.get("TranscriptionStatus", "completed") == "completed" and words:
        async with request.app[DB].write() as session:
            call = await session.scalar(select(Call).where(Call.call_sid == sid).with_for_update())
            if call is not None:
                _keep(call, {"url": str(form.get("RecordingUrl", "")) or None,
                             "sid": str(form.get("RecordingSid", "")) or None, "kind": "report",
                             "transcript": words[:2000]})
    return VoiceResponse()


async def _report_place(turn: Turn) -> VoiceResponse:
    """The place of a recorded report: route description and place, file the recording for operators."""
    async with turn.request.app[DB].read() as session:
        call = await session.scalar(select(Call).where(Call.call_sid == turn.sid))
    recs = [r for r in (call.recordings if call else []) if r.get("kind") == "report" and r.get("url")]
    rec = recs[-1] if recs else None
    place = turn.heard
    if not place and turn.r == 0:
        return vp.listen(turn, "report", r=1, intro=(turn.t("not_heard"),))
    transcript = str((rec or {}).get("transcript", ""))
    words = ("，" if turn.lang == "zh" else ". ").join(t for t in (transcript, place) if t)
    handled, q = (await _route(turn, words) if words else None), turn.step
    flow = await _flow(turn, handled)
    if flow == Intent.GRID_CASE.value and transcript and place:
        # Coded from the description, the router asks where: the caller has said it already.
        handled, q = await _route(turn, place, "p"), turn.step + "p"
        flow = await _flow(turn, handled)
    intent = handled.reply.intent if handled is not None else None
    if rec is not None:
        coded = handled if intent is Intent.GRID_CASE else None
        await _file_report(turn, rec, place, transcript, coded, awaiting=flow == Intent.GRID_CASE.value)
    if handled is not None and (intent in (Intent.GRID_CASE, Intent.EMERGENCY) or rec is None):
        return await _render(turn, handled, "place", q=q)
    if rec is None:
        return vp.menu(turn, intro=(turn.t("busy"),))
    # Not coded (or not answerable now): an operator listens to the recording and registers it.
    await _text_me(turn, turn.step, turn.t("report_sms", place=place or "-"))
    return vp.menu(turn, intro=(turn.t("report_received"), turn.t("more")))


async def _file_report(
    turn: Turn, rec: dict[str, Any], place: str, transcript: str, coded: Handled | None, *, awaiting: bool
) -> None:
    """Once per report: the recording goes to the operators' queue with what the router made of it.
    The conversation's ``report`` draft keeps the recording while the router still waits for the
    place; otherwise the event is where operators find it."""
    async with turn.request.app[DB].write() as session:
        call = await _call(session, turn)
        if _keep(call, {"url": rec["url"]}).get("filed"):
            return  # a re-sent webhook
        grid = coded.reply.grid if coded is not None else None
        _keep(call, {"url": rec["url"], "filed": turn.step, "place": place or None, "grid": grid})
        conv = await _waiting(session, call, "report.recorded", {
            "recording_url": rec["url"], "transcript": transcript or None, "place": place or None, "grid": grid,
            "message_id": coded.message_id if coded is not None else None,
        })
        state = dict(conv.state or {})
        draft = state.pop("report", None)
        if awaiting and isinstance(draft, dict) and "code" in draft:
            state["report"] = {**draft, "recording_url": rec["url"]}
        conv.state = state


async def hold(request: web.Request) -> VoiceResponse:
    """Twilio's waitUrl while the caller waits (it posts no From): the place in the queue, music."""
    form = await signed_form(request)
    _field(form, "CallSid")
    position = str(form.get("QueuePosition", ""))
    return vp.hold(_lang(request), int(position) if position.isdigit() and len(position) < 6 else 1)


async def hold_leave(request: web.Request) -> VoiceResponse:
    form = await signed_form(request)
    _field(form, "CallSid")
    resp = VoiceResponse()
    if str(form.get("Digits", "")) == "*":
        resp.leave()  # the call goes on at the Enqueue action with QueueResult=leave
    else:
        vp.speak(resp, _lang(request), vp.text("not_option", _lang(request)))
    return resp


async def queue_done(request: web.Request) -> VoiceResponse:
    """The caller left the queue: after an operator, or without one (then offer a message or a call-back)."""
    turn = await _begin(request, "queue")
    result = str(turn.form.get("QueueResult", ""))
    if result == "hangup":
        return VoiceResponse()
    if result in ("bridged", "bridging-in-process"):
        return vp.goodbye(turn)
    return vp.offline(turn, intro=() if result == "leave" else (turn.t("all_busy"),))


async def offline(request: web.Request) -> VoiceResponse:
    """No operator now: 1 leave a message, 2 ask for a call-back, * the menu."""
    turn = await _begin(request, "offline")
    if not turn.key:
        return vp.silent(turn, turn.r, partial(vp.offline, turn))
    if turn.key == "1":
        return vp.voicemail(turn)
    if turn.key in ("*", "9"):
        return vp.menu(turn)
    if turn.key != "2":
        return vp.offline(turn, r=turn.r, intro=(turn.t("not_option"),))
    if not turn.urn.startswith("tel:"):
        return vp.voicemail(turn, intro=(turn.t("callback_hidden"),))
    async with request.app[DB].write() as session:
        call = await _call(session, turn)
        if not any(e.get("menu") == "callback" for e in call.path):  # once per call
            call.path = [*call.path, {"at": utcnow().isoformat(), "menu": "callback", "step": turn.step}]
            await _waiting(session, call, "callback.requested", {"lang": turn.lang})
    return vp.goodbye(turn, turn.t("callback", last4=turn.urn[-4:]))


async def voicemail(request: web.Request) -> VoiceResponse:
    """Reached when the first voicemail came back empty: ask once more."""
    turn = await _begin(request, "voicemail")
    return vp.voicemail(turn, r=turn.r, intro=(turn.t("no_voicemail"),) if turn.r else ())


async def voicemail_saved(request: web.Request) -> VoiceResponse:
    turn = await _begin(request, "saved")
    rec = _recording(turn, "voicemail")
    if not rec["url"]:
        return vp.voicemail(turn, r=1, intro=(turn.t("no_voicemail"),))
    async with request.app[DB].write() as session:
        call = await _call(session, turn)
        if not any(r.get("url") == rec["url"] for r in call.recordings):  # else a re-sent webhook
            _keep(call, rec)
            await _waiting(session, call, "voicemail.left",
                           {"recording_url": rec["url"], "duration_s": rec["duration_s"], "lang": turn.lang})
    resp = VoiceResponse()
    vp.speak(resp, turn.lang, turn.t("voicemail_saved"))
    resp.hangup()
    return resp


async def call_status(request: web.Request) -> VoiceResponse:
    """Twilio's status callback: the call's status, and its duration once it is over."""
    form = await signed_form(request)
    sid, status = _field(form, "CallSid"), _field(form, "CallStatus")
    raw = str(form.get("CallDuration", "")).strip()
    if raw and not (raw.isdigit() and len(raw) < 9):
        raise BadRequest("'CallDuration' must be a whole number of seconds")
    async with request.app[DB].write() as session:
        call = await session.scalar(select(Call).where(Call.call_sid == sid).with_for_update())
        if call is None:
            log.warning("event=call.status_unknown call=%s status=%s", sid, status)
            return VoiceResponse()
        call.status = status[:24]
        if raw:
            call.duration_s = int(raw)
        if status in FINAL_STATUSES and call.ended_at is None:
            call.ended_at = utcnow()
    log.info("event=call.status call=%s status=%s duration=%s", sid, status, raw or "-")
    return VoiceResponse()


ROUTES: dict[str, Webhook] = {
    "": incoming,
    "/menu": menu,
    "/menu/choice": menu_choice,
    "/heard": heard,
    "/answer": answer,
    "/pick": pick,
    "/report": report,
    "/report/recorded": report_recorded,
    "/report/transcript": report_transcript,
    "/hold": hold,
    "/hold/leave": hold_leave,
    "/queue": queue_done,
    "/offline": offline,
    "/voicemail": voicemail,
    "/voicemail/saved": voicemail_saved,
    "/status": call_status,
}
