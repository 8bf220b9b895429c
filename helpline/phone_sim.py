"""A phone in the terminal: plays a caller (or an SMS sender) against a running Helpline server.

It speaks Twilio's side of the wire, so what it exercises is exactly what Twilio would: webhooks
signed with the auth token over ``HELPLINE_PUBLIC_URL`` + path, TwiML answers followed verb by
verb (``<Say>`` is printed, ``<Gather>`` reads keys or words, ``action`` and ``<Redirect>`` URLs are
followed, ``<Record>`` asks what you would say, ``<Enqueue>`` waits in the queue). Lines come from
stdin, so a script or tmux can drive it as well as a person: a line starting with a digit, ``*``
or ``#`` is keypad input, anything else is speech, an empty line is silence, end of input hangs up.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from twilio.request_validator import RequestValidator

Reader = Callable[[str], Awaitable[str | None]]  # prompt -> a line, or None at the end of input
Writer = Callable[[str], None]

VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/voice/status"
SMS_PATH = "/twilio/sms"
QUEUE_WAITS = 3  # hold messages heard before the simulated caller gives up (no operator answers here)


@dataclass(frozen=True)
class Line:
    """Where to call and as whom."""

    base_url: str = "http://127.0.0.1:8080"
    caller: str = "+8613800000000"
    to: str = "+8657181890"
    auth_token: str | None = None
    public_url: str | None = None  # the base URL the server checks signatures against

    def path_qs(self, url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class Next:
    """What a TwiML document led to: another URL to fetch, or the end of the call (or queue)."""

    url: str | None = None
    fields: dict[str, str] | None = None
    hangup: bool = False
    leave: bool = False


class Phone:
    """One simulated phone; ``call()`` plays a voice call, ``texts()`` an SMS conversation."""

    def __init__(self, line: Line, read: Reader, write: Writer, session: aiohttp.ClientSession) -> None:
        self.line = line
        self.read = read
        self.write = write
        self.session = session
        self.account = "AC" + secrets.token_hex(16)
        self.sid = "CA" + secrets.token_hex(16)
        self.hung_up = False  # the person ended the input
        self.current = VOICE_PATH  # the URL of the TwiML being played

    async def listen(self, prompt: str) -> str | None:
        line = await self.read(prompt)
        if line is None:
            self.hung_up = True
        return line

    async def post(self, url: str, fields: dict[str, str]) -> ET.Element | None:
        """POST a webhook signed as Twilio signs it; the TwiML answer, or None (and why) on failure."""
        path_qs = self.line.path_qs(urljoin(self.line.base_url + self.current, url))
        headers = {}
        if self.line.auth_token:
            signed_url = (self.line.public_url or self.line.base_url).rstrip("/") + path_qs
            validator = RequestValidator(self.line.auth_token)
            headers["X-Twilio-Signature"] = validator.compute_signature(signed_url, fields)
        try:
            target = self.line.base_url.rstrip("/") + path_qs
            async with self.session.post(target, data=fields, headers=headers) as resp:
                body = await resp.text()
                if resp.status != 200:
                    self.write(f"(the server answered {resp.status}: {body[:300]})")
                    return None
        except aiohttp.ClientError as exc:
            self.write(f"(cannot reach {self.line.base_url}: {exc})")
            return None
        try:
            return ET.fromstring(body)
        except ET.ParseError:
            self.write(f"(not TwiML: {body[:300]})")
            return None

    def _call_fields(self, status: str = "in-progress") -> dict[str, str]:
        return {
            "CallSid": self.sid, "AccountSid": self.account, "From": self.line.caller, "To": self.line.to,
            "Caller": self.line.caller, "Called": self.line.to, "CallStatus": status, "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }

    def _queue_fields(self) -> dict[str, str]:
        """What Twilio posts to a queue's waitUrl: no From or To there."""
        return {"CallSid": self.sid, "AccountSid": self.account}

    async def call(self) -> None:
        """Ring the line and follow its TwiML until someone hangs up; then send the status callback."""
        started = time.monotonic()
        self.write(f"(calling {self.line.to} from {self.line.caller}, call {self.sid})")
        url: str | None = VOICE_PATH
        fields = self._call_fields("ringing")
        while url is not None:
            twiml = await self.post(url, fields)
            if twiml is None:
                break
            self.current = self.line.path_qs(urljoin(self.line.base_url + self.current, url))
            step = await self.play(twiml)
            if step.hangup or step.url is None or self.hung_up:
                break
            url, fields = step.url, {**self._call_fields(), **(step.fields or {})}
        duration = max(1, round(time.monotonic() - started))
        await self.post(STATUS_PATH, {**self._call_fields("completed"), "CallDuration": str(duration)})
        self.write(f"(call ended after {duration} s)")

    async def play(self, twiml: ET.Element) -> Next:
        """Perform a TwiML document's verbs in order, as Twilio would."""
        for verb in twiml:
            tag = verb.tag
            if tag in ("Say", "Play", "Pause"):
                self._show(verb)
            elif tag == "Gather":
                step = await self._gather(verb)
                if step is not None:
                    return step
            elif tag == "Record":
                step = await self._record(verb)
                if step is not None:
                    return step
            elif tag == "Enqueue":
                return await self._enqueue(verb)
            elif tag == "Redirect":
                return Next(url=(verb.text or "").strip())
            elif tag in ("Hangup", "Reject"):
                return Next(hangup=True)
            elif tag == "Leave":
                return Next(leave=True)
            else:
                self.write(f"(the simulator does not play <{tag}>)")
        return Next(hangup=True)  # Twilio hangs up when the document ends

    def _show(self, verb: ET.Element) -> None:
        if verb.tag == "Say":
            self.write(f"[{verb.get('language', '')}] {(verb.text or '').strip()}")
        elif verb.tag == "Play":
            self.write(f"(music: {(verb.text or '').strip()})")
        else:
            self.write(f"(pause {verb.get('length', '1')} s)")

    async def _gather(self, verb: ET.Element) -> Next | None:
        for inner in verb:
            self._show(inner)
        inputs = verb.get("input", "dtmf")
        answer = await self.listen("keys" + (" or words" if "speech" in inputs else "") + "> ")
        if answer is None:
            return Next(hangup=True)
        answer = answer.strip()
        if not answer:
            return None  # silence: Twilio goes on with the next verb
        action = verb.get("action") or self.current  # Twilio's default: the document's own URL
        if answer[0].isdigit() or answer[0] in "*#":
            if "dtmf" not in inputs:
                self.write("(this prompt does not take keys)")
                return None
            digits = answer.replace(" ", "")
            finish = verb.get("finishOnKey", "#")
            if finish and finish in digits[1:]:
                digits = digits.split(finish, 1)[0]  # the finishing key itself is not sent
            if verb.get("numDigits", "").isdigit():
                digits = digits[: int(verb.get("numDigits", "1"))]
            return Next(url=action, fields={"Digits": digits})
        if "speech" not in inputs:
            self.write("(this prompt only takes keys)")
            return None
        return Next(url=action, fields={"SpeechResult": answer, "Confidence": "0.92"})

    async def _record(self, verb: ET.Element) -> Next | None:
        said = await self.listen("(recording after the beep; type what you would say, empty for silence) > ")
        if said is None:
            return Next(hangup=True)
        said = said.strip()
        if not said:
            return None  # Twilio skips the action when nothing was recorded
        rec_sid = "RE" + secrets.token_hex(16)
        url = f"https://api.twilio.com/2010-04-01/Accounts/{self.account}/Recordings/{rec_sid}"
        recording = {"RecordingUrl": url, "RecordingSid": rec_sid, "RecordingDuration": str(max(1, len(said) // 3))}
        callback = verb.get("transcribeCallback")
        if callback:  # real Twilio transcribes later; here at once, so the text can be used
            transcription = {"TranscriptionText": said, "TranscriptionStatus": "completed",
                             "TranscriptionSid": "TR" + secrets.token_hex(16)}
            await self.post(callback, {**self._call_fields(), **recording, **transcription})
        self.write(f"(recorded: {url})")
        return Next(url=verb.get("action") or self.current, fields={**recording, "Digits": "#"})

    async def _enqueue(self, verb: ET.Element) -> Next:
        """Wait in the queue: hold messages from the waitUrl; '*' (if offered) leaves, else hang up."""
        queue = (verb.text or "").strip()
        self.write(f"(waiting in queue {queue!r}; no operator answers in the simulator)")
        queue_fields = {"QueueSid": "QU" + secrets.token_hex(16), "QueueTime": "0"}
        result = "hangup"
        for position in range(QUEUE_WAITS, 0, -1):
            wait_url = verb.get("waitUrl")
            if not wait_url:
                break
            waiting = {"QueuePosition": str(position), "CurrentQueueSize": str(position), "AvgQueueTime": "30"}
            hold = await self.post(wait_url, {**self._queue_fields(), **waiting, **queue_fields})
            if hold is None:
                break
            step = await self.play(hold)
            while step.url is not None and not step.leave:  # a Gather in the hold music
                answer = await self.post(step.url, {**self._queue_fields(), **(step.fields or {})})
                step = await self.play(answer) if answer is not None else Next()
            if step.leave:
                result = "leave"
                break
            if self.hung_up or "Hangup" in {v.tag for v in hold}:
                break
        if result == "hangup":
            self.write("(nobody answered; hanging up)")
        action = verb.get("action")
        if not action:
            return Next(hangup=True)
        fields = {"QueueResult": result, **queue_fields}
        if result == "hangup":
            await self.post(action, {**self._call_fields("completed"), **fields})
            return Next(hangup=True)
        return Next(url=action, fields=fields)

    async def texts(self) -> None:
        """An SMS conversation: each line is a text message; prints the line's <Message> replies."""
        self.write(f"(texting {self.line.to} from {self.line.caller}; end of input stops)")
        while (body := await self.read("sms> ")) is not None:
            if not body.strip():
                continue
            fields = {
                "MessageSid": "SM" + secrets.token_hex(16), "AccountSid": self.account, "From": self.line.caller,
                "To": self.line.to, "Body": body.strip(), "NumMedia": "0", "NumSegments": "1",
                "SmsStatus": "received", "ApiVersion": "2010-04-01",
            }
            twiml = await self.post(SMS_PATH, fields)
            for message in twiml.iter("Message") if twiml is not None else ():
                text = message.findtext("Body") if message.find("Body") is not None else message.text
                self.write(f"< {(text or '').strip()}")


async def run(line: Line, read: Reader, write: Writer, *, sms: bool = False) -> None:
    """Play one call (or an SMS conversation) with ``read``/``write``; tests pass scripted ones."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        phone = Phone(line, read, write, session)
        await (phone.texts() if sms else phone.call())


def stdin_reader() -> Reader:
    """Read lines from stdin without blocking the event loop; echo them when piped, for a readable log."""
    interactive = sys.stdin.isatty()

    async def read(prompt: str) -> str | None:
        if interactive:
            try:
                return await asyncio.to_thread(input, prompt)
            except EOFError:
                return None
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return None
        print(f"{prompt}{line.rstrip()}", flush=True)
        return line.rstrip("\n")

    return read


def main(base_url: str, caller: str, to: str, sms: bool, auth_token: str | None, public_url: str | None) -> int:
    """``helpline phone``: the terminal phone against ``base_url``."""

    def write(text: str) -> None:
        print(text, flush=True)

    line = Line(base_url=base_url.rstrip("/"), caller=caller, to=to, auth_token=auth_token, public_url=public_url)
    try:
        asyncio.run(run(line, stdin_reader(), write, sms=sms))
    except KeyboardInterrupt:
        print("\n(hung up)")
    return 0
