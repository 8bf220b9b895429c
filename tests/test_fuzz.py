"""Fuzzing every public endpoint of a real ``helpline serve`` with hypothesis.

* the JSON API: every operation in the OpenAPI document (``GET /api/v1/openapi.json``), with
  path and query parameters, headers and bodies drawn from the schema and from anything at all;
* the Twilio webhooks (SMS, status, voice and its follow-ups) with valid signatures over fuzzed forms;
* the Telegram webhook with the right secret over fuzzed updates;
* the resident portal's form.

Nothing may answer 500 (or 503), no answer may carry a stack trace, JSON endpoints answer errors
in JSON, and a refused request writes nothing (row counts before and after). At the end every
stored inbound message has its one answer and the server logged no internal error. Bounded and
derandomised so CI is fast and repeatable; SQLite (the checks are at the HTTP edge).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from fakes.processes import AUTH_TOKEN, PUBLIC_URL, free_port, service_env
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from channels.openapi import document
from helpline.booking.models import Booking
from helpline.cases.models import Case
from helpline.db import Database
from helpline.models import Contact, Conversation, Message, OutboxItem

SECRET = "fuzz-secret-0123"


def FUZZ(examples: int) -> settings:  # noqa: N802 - reads like the decorator it makes
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
TABLES = (Message, Contact, Conversation, OutboxItem, Booking, Case)


class Line:
    """The server under test, and a way to count rows in its database from synchronous code."""

    def __init__(self, url: str, db: Database, log: Path) -> None:
        self.url = url
        self.db = db
        self.log = log
        self.http = requests.Session()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def counts(self) -> tuple[int, ...]:
        async def count() -> tuple[int, ...]:
            async with self.db.read() as session:
                return tuple([int(await session.scalar(select(func.count()).select_from(t)) or 0) for t in TABLES])

        return asyncio.run_coroutine_threadsafe(count(), self._loop).result(30)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def close(self) -> None:
        self.run(self.db.dispose())
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture(scope="module")
def line(_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    tmp = tmp_path_factory.mktemp("fuzz")
    env = service_env(_sqlite_url, tmp / "var", rate_limit_per_minute="0", telegram_token="1:" + "a" * 30,
                      telegram_secret=SECRET, telegram_api_url=f"http://127.0.0.1:{free_port()}")
    env["HELPLINE_LOG_LEVEL"] = "WARNING"
    port = free_port()
    (tmp / "var").mkdir(parents=True, exist_ok=True)
    log = tmp / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "helpline", "serve", "--port", str(port)], env=env,
                                cwd=tmp / "var", stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    served = Line(url, Database.from_url(_sqlite_url), log)
    try:
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        served.close()
        text = log.read_text(errors="replace")
        assert "event=http.error" not in text and "Traceback" not in text, text[-5000:]


def check(line: Line, resp: requests.Response, before: tuple[int, ...], *, json_errors: bool = True) -> None:
    """The rules every answer keeps."""
    body = resp.text
    assert resp.status_code < 500, (resp.status_code, body[:500])
    assert "Traceback" not in body and 'File "' not in body, body[:500]
    if resp.status_code >= 400:
        if json_errors:
            assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
            data = resp.json()
            assert (isinstance(data, dict) and isinstance(data.get("error"), str)) or (
                isinstance(data, list) and all("description" in e for e in data)), data
        assert line.counts() == before, f"a refused request ({resp.status_code}) wrote something: {body[:300]}"


# -- strategies --------------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
PLAUSIBLE = {
    "from": st.sampled_from(["web:fuzz", "web:a.b_c~d-e", "tel:+8613800000000", "telegram:42", "web:", "tel:x"]),
    "text": st.sampled_from(["你好", "路口路灯坏了", "CX 100001", "水管漏了帮我找个师傅", "0", "赤霉"]) | text,
    "lang": st.sampled_from(["zh", "en", None, "fr", ""]),
    "location": st.fixed_dictionaries({"lat": st.floats(-100, 100) | text, "lon": st.floats(-200, 200)}) | json_values,
    "service": st.sampled_from(["plumbing", "vet", "x"]) | text,
    "slot": text, "name": text, "address": text, "note": text, "reason": text,
    "service_code": st.sampled_from(["C0118", "E0102", "Z9999"]) | text,
    "api_key": st.sampled_from(["", "nope"]) | text,
    "lat": st.floats(allow_nan=True) | text, "long": st.floats(allow_nan=True) | text,
    "address_string": st.sampled_from(["中心小学", "人民公园"]) | text,
    "address_id": st.sampled_from(["330203002002007", "1" * 15]) | text,
}


def _value(name: str) -> st.SearchStrategy[Any]:
    return PLAUSIBLE.get(name, text) | json_values


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = list(schema.get("properties", {}))
    if not props:
        return st.dictionaries(text, json_values, max_size=3)
    return st.lists(st.sampled_from(props), unique=True, max_size=len(props)).flatmap(
        lambda names: st.fixed_dictionaries({n: _value(n) for n in names})
    )


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document()["paths"].items() for method, op in item.items()]


def _request(path: str, method: str, op: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    params = op.get("parameters", [])
    path_params = {p["name"]: st.sampled_from(["0" * 32, "C0118", "100001", "plumbing"]) | st.text(min_size=1, max_size=40)
                   for p in params if p["in"] == "path"}
    query = {p["name"]: st.none() | st.sampled_from(["zh", "en", "2026-12-03", "7", "-1"]) | text
             for p in params if p["in"] == "query"}
    headers = {p["name"]: st.none() | st.sampled_from(["k1", "same-key"]) | st.text(st.characters(
        min_codepoint=32, max_codepoint=126), max_size=120) for p in params if p["in"] == "header"}
    body: st.SearchStrategy[Any] = st.none()
    if "requestBody" in op:
        ((ctype, media),) = op["requestBody"]["content"].items()
        shaped = _object(media["schema"])
        if ctype == "application/json":
            body = st.one_of(
                shaped.map(lambda d: ("application/json", json.dumps(d, ensure_ascii=False).encode())),
                json_values.map(lambda v: ("application/json", json.dumps(v).encode())),
                st.tuples(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
                          st.binary(max_size=60)),
            )
        else:
            body = shaped.map(lambda d: ("form", {k: v if isinstance(v, str) else json.dumps(v) for k, v in d.items()}))
    return st.fixed_dictionaries({
        "path": st.fixed_dictionaries(path_params),
        "query": st.fixed_dictionaries(query),
        "headers": st.fixed_dictionaries(headers),
        "body": body,
    })


OPERATIONS = _operations()


def test_the_openapi_document_is_served_and_lists_the_public_api(line: Line) -> None:
    resp = line.http.get(line.url + "/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.json() == document()
    paths = set(resp.json()["paths"])
    assert {"/api/v1/messages", "/healthz", "/api/v1/grid/cells", "/api/v1/bookings", "/open311/v2/requests.json"} <= paths


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m, _ in OPERATIONS])
def test_json_api_operation_never_fails_on_any_input(line: Line, path: str, method: str, op: dict[str, Any]) -> None:
    @FUZZ(15)
    @given(req=_request(path, method, op))
    def run(req: dict[str, Any]) -> None:
        url = line.url + path
        for name, value in req["path"].items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        query = {k: v for k, v in req["query"].items() if v is not None}
        headers = {k: v for k, v in req["headers"].items() if v is not None}
        kwargs: dict[str, Any] = {"params": query, "headers": headers, "timeout": 30}
        if req["body"] is not None:
            ctype, payload = req["body"]
            if ctype == "form":
                kwargs["data"] = payload
            else:
                kwargs["data"] = payload
                headers["Content-Type"] = ctype
        before = line.counts()
        check(line, line.http.request(method.upper(), url, **kwargs), before)

    run()


# -- the webhooks and the portal ----------------------------------------------------------------

_validator = RequestValidator(AUTH_TOKEN)
TWILIO_PATHS = ["/twilio/sms", "/twilio/status", "/twilio/voice", "/twilio/voice/menu", "/twilio/voice/menu/choice",
                "/twilio/voice/heard", "/twilio/voice/report/recorded", "/twilio/voice/status", "/twilio/voice/queue"]
form_value = st.sampled_from(["", "1", "9", "#", "+8613800000000", "13800000000", "completed", "delivered",
                              "http://example.org/rec.wav", "小麦赤霉病", "STOP", "M"]) | st.text(max_size=30)
twilio_form = st.dictionaries(
    st.sampled_from(["MessageSid", "CallSid", "From", "To", "Body", "Digits", "SpeechResult", "CallStatus",
                     "MessageStatus", "RecordingUrl", "RecordingDuration", "TranscriptionText", "AccountSid",
                     "Latitude", "NumMedia"]) | st.text(min_size=1, max_size=8),
    form_value, max_size=8,
).map(lambda f: f | {"AccountSid": "AC" + "0" * 32}) | st.fixed_dictionaries({
    "MessageSid": st.text(min_size=1, max_size=40), "From": form_value, "Body": form_value})


@FUZZ(60)
@given(path=st.sampled_from(TWILIO_PATHS), form=twilio_form, query=st.sampled_from(["", "?lang=en", "?step=x&n=9"]))
def test_twilio_webhooks_with_valid_signatures_never_fail(line: Line, path: str, form: dict[str, str], query: str) -> None:
    signature = _validator.compute_signature(PUBLIC_URL + path + query, form)
    before = line.counts()
    resp = line.http.post(line.url + path + query, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)
    check(line, resp, before)


chat = st.fixed_dictionaries({"id": st.integers(-10**12, 10**12) | text, "type": st.sampled_from(
    ["private", "group", "channel", "x"])})
message = st.fixed_dictionaries(
    {"message_id": st.integers(0, 10**6), "date": st.integers(0, 2**31), "chat": chat},
    optional={"text": text, "from": st.fixed_dictionaries({"id": st.integers(1, 10**9), "is_bot": st.booleans(),
                                                            "first_name": text}),
              "location": st.fixed_dictionaries({"latitude": st.floats(-90, 90), "longitude": st.floats(-180, 180)}),
              "caption": text, "photo": json_values, "sticker": json_values},
)
update = st.fixed_dictionaries(
    {"update_id": st.integers(1, 2**31) | json_values},
    optional={"message": message | json_values, "edited_message": message,
              "callback_query": st.fixed_dictionaries({"id": text, "from": json_values, "data": text}),
              "my_chat_member": json_values},
)


@FUZZ(50)
@given(update=update | json_values)
def test_telegram_webhook_never_fails_on_any_update(line: Line, update: Any) -> None:
    before = line.counts()
    resp = line.http.post(line.url + "/telegram/webhook", data=json.dumps(update).encode(), timeout=30,
                          headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"})
    check(line, resp, before)


@FUZZ(25)
@given(form=st.fixed_dictionaries({}, optional={"text": text | st.sampled_from(["你好", "  "]), "nonce": text,
                                                "lang": st.sampled_from(["zh", "en", "x"])}),
       cookie=st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=";,"),
                                  max_size=80),
       from_page=st.booleans())
@example(form={"text": "稻瘟病怎么治", "lang": "zh"}, cookie=None, from_page=True)  # a real question, stored
def test_the_portal_form_never_fails(line: Line, form: dict[str, str], cookie: str | None, from_page: bool) -> None:
    """Fuzzed forms, some with the form token of a page really fetched first (as a browser sends)."""
    http = requests.Session()
    if cookie:
        http.cookies.set("hl_sid", cookie)
    cookies: dict[str, str] = {}
    if from_page:
        page = http.get(line.url + "/", timeout=30)
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if token:
            form = {**form, "csrf": token.group(1)}
        # The cookie is marked Secure (the public URL is https); this test speaks plain http.
        cookies = {k: v for k, v in page.cookies.items() if v}
    before = line.counts()
    resp = http.post(line.url + "/", data=form, cookies=cookies, timeout=30)
    check(line, resp, before, json_errors=False)


def test_after_the_fuzzing_every_stored_message_has_its_one_answer(line: Line) -> None:
    async def problems() -> tuple[int, int, int]:
        async with line.db.read() as session:
            inbound = await session.scalar(select(func.count()).select_from(Message).where(
                Message.direction == "in", Message.status.in_(("handled", "throttled"))))
            answered = await session.scalar(select(func.count(func.distinct(Message.reply_to_id))).where(
                Message.direction == "out", Message.reply_to_id.is_not(None)))
            failed = await session.scalar(select(func.count()).select_from(Message).where(Message.status == "failed",
                                                                                           Message.direction == "in"))
            return int(inbound or 0), int(answered or 0), int(failed or 0)

    inbound, answered, failed = line.run(problems())
    assert inbound > 0 and inbound == answered and failed == 0, (inbound, answered, failed)
    assert os.path.exists(line.log)
