"""What the phone line says and asks, in Mandarin and English: the texts, the TwiML prompts that
speak them, and the words that pick a menu item by voice.

Kept apart from the call flow (channels/twilio_voice.py, the webhooks and what they store) so
the wording and the voice can be reviewed and changed without reading the flow.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from twilio.twiml.voice_response import Gather, VoiceResponse

# --- what a deployment may want to change -------------------------------------------------------
SAY_LANGUAGE = {"zh": "zh-CN", "en": "en-US"}
# None: Twilio's default voice for the language. Polly/Google voices need their own language code
# (Twilio lists Polly.Zhiyu under cmn-CN): change SAY_LANGUAGE with them.
SAY_VOICE: dict[str, str | None] = {"zh": None, "en": "Polly.Joanna"}
SPEECH_LANGUAGE = {"zh": "zh-CN", "en": "en-US"}
GATHER_TIMEOUT_S = 6
REPORT_MAX_S = 60
VOICEMAIL_MAX_S = 120
HOLD_MUSIC_URL: str | None = None  # an audio file to play while waiting; None: a pause
HOLD_PAUSE_S = 15
# -------------------------------------------------------------------------------------------------
PREFIX = "/twilio/voice"

# key -> (zh, en). Texts with {fields} are filled by ``say``.
PROMPTS: dict[str, tuple[str, str]] = {
    "welcome": ("您好，这里是便民服务热线。", "Hello, this is the community help-line."),
    "menu": (
        "农业技术咨询请按1，社区服务和政策咨询请按2，预约上门服务请按3，反映城市管理问题请按4，"
        "查询办理进度请按5，人工服务请按0。您也可以直接说出您的问题。",
        "For farming advice press 1. For community services and benefits press 2. To book a service press 3. "
        "To report a street problem press 4. To check a case or booking press 5. To talk to an operator press 0. "
        "You can also just say your question.",
    ),
    # Said in the *other* language's voice, so a caller who does not understand the menu still can.
    "switch": ("中文服务请按9。", "For English, press 9."),
    "more": ("还需要其他帮助吗？", "Is there anything else we can help with?"),
    "ask_farm": (
        "请说出您的农业问题，比如：小麦赤霉病怎么防治？说完请稍等。重听请按1，返回主菜单请按星号键。",
        "Please say your farming question, for example: how do I control wheat scab? "
        "To hear this again press 1, for the main menu press star.",
    ),
    "ask_community": (
        "请说出您想了解的事情，比如：低保怎么申请？说完请稍等。重听请按1，返回主菜单请按星号键。",
        "Please say what you want to know, for example: how do I apply for the minimum living allowance? "
        "To hear this again press 1, for the main menu press star.",
    ),
    "ask_any": ("请说出您的问题。", "Please say your question."),
    "options": (
        "重听请按1，把答案用短信发给您请按2，问其他问题请按3，人工服务请按0，返回主菜单请按星号键。",
        "To hear it again press 1. To get this answer by text message press 2. To ask another question press 3. "
        "To talk to an operator press 0. For the main menu press star.",
    ),
    "sms_queued": ("好的，答案会用短信发到您的手机。", "Done: the answer will be sent to your phone by text message."),
    "sms_unavailable": (
        "抱歉，看不到您的号码，不能发送短信。", "Sorry, we cannot see your number, so we cannot send a text."
    ),
    "not_heard": ("抱歉，没有听到您的回答。", "Sorry, I did not hear anything."),
    "not_option": ("抱歉，没有这个选项。", "Sorry, that is not one of the options."),
    "not_understood": ("抱歉，没能听懂，请换个说法再说一次。", "Sorry, I did not catch that. Please say it another way."),
    "goodbye": ("感谢您的来电，再见。", "Thank you for calling. Goodbye."),
    "busy": ("抱歉，系统繁忙，请稍后再试。", "Sorry, we are busy right now. Please try again in a moment."),
    "topics": ("我不太确定您问的是哪一个。", "I am not sure which of these you mean."),
    "topic": ("了解{label}，请按{key}。", "For {label}, press {key}."),
    "topics_tail": ("请专家解答请按0，重新提问请按星号键。", "To ask an expert press 0. To ask again press star."),
    "book": (
        "请说出您需要的服务和时间，比如：水管漏了，明天上午找个师傅。查询已有的预约，请输入预约号，以井号键结束。",
        "Please say what service you need and when, for example: a plumber tomorrow morning. "
        "To check a booking, key in its number and press hash.",
    ),
    "number": ("请输入您的案件号或预约号，以井号键结束。", "Please key in your case or booking number, then press hash."),
    "number_short": ("号码太短了。", "That number is too short."),
    "report": (
        "请在提示音后说明您要反映的问题，比如什么东西坏了、有多严重。说完请按井号键。",
        "After the tone, please describe the problem: what is wrong and how bad it is. "
        "Press hash when you have finished.",
    ),
    "no_recording": ("没有录到您的声音。", "We did not get a recording."),
    "place": (
        "谢谢。请说出问题所在的地点，比如路名和门牌号、附近的标志性建筑；也可以输入门牌号，以井号键结束。",
        "Thank you. Now please say where it is: the street and number, or a landmark nearby. "
        "You can also key in a house number and press hash.",
    ),
    "place_again": ("请说出具体地点。", "Please say where exactly it is."),
    "report_received": (
        "已收到您的录音和地点，话务员会听取录音后为您登记立案，确认短信稍后发给您。",
        "We have your recording and the place. An operator will listen to it and register the case; "
        "a confirmation text will follow.",
    ),
    "report_sms": (
        "您反映的问题已收到，录音已保存，地点：{place}。我们会尽快登记立案，并把案件号发给您。",
        "We have your report and its recording; place: {place}. We will register it and send you the case number.",
    ),
    "connecting": ("正在为您转接人工服务，请稍候。", "Connecting you to an operator. Please hold."),
    "hold_ahead": ("您前面还有{ahead}位，请稍候。", "There are {ahead} callers ahead of you. Please hold."),
    "hold_next": ("您是下一位，请稍候。", "You are next in line. Please hold."),
    "hold": (
        "话务员马上为您服务。如果不想等待，按星号键可以留言或预约回电。",
        "An operator will be with you shortly. If you would rather not wait, press star to leave a message "
        "or ask us to call you back.",
    ),
    "closed": (
        "现在是非工作时间，人工服务时间为每天{open}到{close}。",
        "Our operators are available every day from {open} to {close}.",
    ),
    "all_busy": ("抱歉，话务员暂时都在忙。", "Sorry, all our operators are busy."),
    "offline": (
        "留言请按1，请我们在工作时间给您回电请按2，返回主菜单请按星号键。",
        "To leave a voice message press 1. To have us call you back in opening hours press 2. "
        "For the main menu press star.",
    ),
    "voicemail": ("请在提示音后留言，说完请按井号键或直接挂机。", "Please leave your message after the tone, then press hash or hang up."),
    "no_voicemail": ("没有录到您的留言。", "We did not get your message."),
    "voicemail_saved": (
        "留言已收到，话务员会尽快处理并给您回电。再见。",
        "Thank you, your message is saved. An operator will deal with it and call you back. Goodbye.",
    ),
    "callback": (
        "好的，我们会在工作时间给尾号{last4}的电话回电。",
        "All right: we will call you back on the number ending {last4} during opening hours.",
    ),
    "callback_hidden": (
        "抱歉，看不到您的号码，无法回电。请留言并说出您的电话号码。",
        "Sorry, we cannot see your number, so we cannot call you back. Please leave a message with your number.",
    ),
    "emergency_tail": ("如需人工请按0。", "To talk to an operator press 0."),
    "after_call": ("通话结束，感谢您的耐心，再见。", "The call has ended. Thank you for your patience. Goodbye."),
}


def text(key: str, lang: str, **fields: object) -> str:
    zh, en = PROMPTS[key]
    text = zh if lang == "zh" else en
    return text.format(**fields) if fields else text


# Spoken menu choices. A short answer with one of these words picks the item; anything longer is
# taken as a question and routed like any message.
MENU_WORDS: dict[str, tuple[str, ...]] = {
    "1": ("农业", "农技", "种植", "种地", "庄稼", "病虫害", "养殖", "farming", "farm", "agriculture", "crops"),
    "2": ("社区", "政策", "社保", "福利", "低保", "community", "benefits", "benefit"),
    "3": ("预约", "预定", "上门服务", "book", "booking", "appointment"),
    "4": ("反映", "举报", "投诉", "城市管理", "城管", "report", "problem", "complaint"),
    "5": ("查询", "进度", "查进度", "check", "status", "progress"),
    "0": ("人工", "话务员", "客服", "接线员", "operator", "human", "person", "agent"),
    "9": ("english", "英语", "英文", "中文", "普通话", "chinese", "mandarin"),
}
NUMBER_WORDS = {
    "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "零": "0", "九": "9",
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "zero": "0", "nine": "9",
}
HINTS = {
    "zh": "农业,政策,预约,反映问题,查询,人工,English,赤霉病,低保,路灯",
    "en": "farming,benefits,book,report,check,operator,Chinese",
}
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def spoken_choice(speech: str) -> str | None:
    """The menu key a short spoken answer names ("English", "二", "转人工"), or None."""
    folded = unicodedata.normalize("NFKC", speech).lower()
    bare = _PUNCT.sub("", folded)
    if bare in NUMBER_WORDS:
        return NUMBER_WORDS[bare]
    if len(bare) == 1 and bare in "0123459":
        return bare
    words = folded.split()
    if len(bare) > 8 and len(words) > 3:
        return None  # a sentence: a question, not a menu choice
    if not bare.isascii() and len(bare) > 6:
        return None
    for key, terms in MENU_WORDS.items():
        for term in terms:
            if (term.isascii() and term in _PUNCT.sub(" ", folded).split()) or (not term.isascii() and term in bare):
                return key
    return None


# --- TwiML prompts ----------------------------------------------------------------------------------

class Step(Protocol):
    """Where the call is: its language, and how to build the next step's URL."""

    @property
    def lang(self) -> str: ...

    def url(self, path: str, *, r: int = 0, lang: str | None = None, **extra: str | None) -> str: ...


Prompt = Callable[..., VoiceResponse]


def speak(node: VoiceResponse | Gather, lang: str, words: str) -> None:
    node.say(words, voice=SAY_VOICE[lang], language=SAY_LANGUAGE[lang])


def _gather(resp: VoiceResponse, lang: str, action: str, *, speech: bool, **kw: Any) -> Gather:
    if speech:
        kw.update(speech_timeout="auto", language=SPEECH_LANGUAGE[lang], hints=HINTS[lang])
    return resp.gather(input="dtmf speech" if speech else "dtmf", action=action, method="POST",
                       timeout=GATHER_TIMEOUT_S, **kw)


def ask(step: Step, action: str, texts: Iterable[str], *, speech: bool, **kw: Any) -> VoiceResponse:
    """Say ``texts`` while listening; silence falls through to the same action without input, so
    each action handles silence in one place."""
    resp = VoiceResponse()
    gather = _gather(resp, step.lang, action, speech=speech, **kw)
    for words in texts:
        speak(gather, step.lang, words)
    resp.redirect(action, method="POST")
    return resp


def goodbye(step: Step, *intro: str) -> VoiceResponse:
    resp = VoiceResponse()
    for words in (*intro, text("goodbye", step.lang)):
        speak(resp, step.lang, words)
    resp.hangup()
    return resp


def silent(step: Step, r: int, again: Prompt) -> VoiceResponse:
    """Nothing heard: ask once more, then say goodbye politely."""
    if r >= 1:
        return goodbye(step, text("not_heard", step.lang))
    return again(r=1, intro=(text("not_heard", step.lang),))


def menu(step: Step, *, r: int = 0, intro: Iterable[str] = ()) -> VoiceResponse:
    """The main menu, by key or by voice; the language switch is said in the other language's voice."""
    other = "en" if step.lang == "zh" else "zh"
    action = step.url("/menu/choice", r=r)
    resp = VoiceResponse()
    gather = _gather(resp, step.lang, action, speech=True, num_digits=1)
    for words in (*intro, text("menu", step.lang)):
        speak(gather, step.lang, words)
    speak(gather, other, text("switch", other))
    resp.redirect(action, method="POST")
    return resp


LISTEN_PROMPTS = {"book": "book", "number": "number", "place": "place_again", "report": "place"}


def listen(
    step: Step, mode: str, *, r: int = 0, intro: Iterable[str] = (), topic: str | None = None
) -> VoiceResponse:
    """Ask for something the router will hear: a question, a service, a case number, a place."""
    key = f"ask_{topic or 'any'}" if mode == "ask" else LISTEN_PROMPTS[mode]
    action = step.url("/heard", r=r, mode=mode, topic=topic)
    texts = (*intro, text(key, step.lang))
    if mode == "number":
        return ask(step, action, texts, speech=False, finish_on_key="#")
    return ask(step, action, texts, speech=True, **({"num_digits": 1} if mode == "ask" else {"finish_on_key": "#"}))


def options(step: Step, q: str, *, r: int = 0, intro: Iterable[str] = ()) -> VoiceResponse:
    """After an answer: repeat, by SMS, another question, an operator, the menu."""
    return ask(step, step.url("/answer", r=r, q=q), (*intro, text("options", step.lang)), speech=False, num_digits=1)


def topics(
    step: Step, q: str, choices: Iterable[tuple[str, str]], *, r: int = 0, intro: Iterable[str] = ()
) -> VoiceResponse:
    """The router was unsure: offer its closest topics, by key."""
    items = [text("topic", step.lang, key=key, label=label) for key, label in choices if key != "0"]
    texts = (*intro, text("topics", step.lang), *items, text("topics_tail", step.lang))
    return ask(step, step.url("/pick", r=r, q=q), texts, speech=False, num_digits=1)


def offline(step: Step, *, r: int = 0, intro: Iterable[str] = ()) -> VoiceResponse:
    return ask(step, step.url("/offline", r=r), (*intro, text("offline", step.lang)), speech=False, num_digits=1)


def _record(
    step: Step, path: str, done: str, max_s: int, *, r: int, texts: Iterable[str], **kw: Any
) -> VoiceResponse:
    """Say, record, and when nothing was recorded (Twilio then skips the action) try once more."""
    resp = VoiceResponse()
    for words in texts:
        speak(resp, step.lang, words)
    resp.record(action=step.url(done), method="POST", max_length=max_s, finish_on_key="#", play_beep=True,
                timeout=5, **kw)
    if r == 0:
        resp.redirect(step.url(path, r=1), method="POST")
    else:
        speak(resp, step.lang, text("goodbye", step.lang))
        resp.hangup()
    return resp


def report(step: Step, *, r: int = 0, intro: Iterable[str] = ()) -> VoiceResponse:
    # Twilio's transcription (English only) comes later to the callback; when it arrives in time
    # its text helps the router code the problem.
    return _record(step, "/report", "/report/recorded", REPORT_MAX_S, r=r, texts=(*intro, text("report", step.lang)),
                   transcribe=True, transcribe_callback=f"{PREFIX}/report/transcript")


def voicemail(step: Step, *, r: int = 0, intro: Iterable[str] = ()) -> VoiceResponse:
    return _record(step, "/voicemail", "/voicemail/saved", VOICEMAIL_MAX_S, r=r,
                   texts=(*intro, text("voicemail", step.lang)))


def hold(lang: str, position: int) -> VoiceResponse:
    """The waitUrl's document, fetched again and again: place in the queue, a way out, then music."""
    resp = VoiceResponse()
    gather = resp.gather(input="dtmf", num_digits=1, timeout=2, action=f"{PREFIX}/hold/leave?lang={lang}",
                         method="POST")
    ahead = position - 1
    speak(gather, lang, text("hold_ahead", lang, ahead=ahead) if ahead > 0 else text("hold_next", lang))
    speak(gather, lang, text("hold", lang))
    if HOLD_MUSIC_URL:
        resp.play(HOLD_MUSIC_URL)
    else:
        resp.pause(length=HOLD_PAUSE_S)
    return resp
