"""The resident portal: home, asking (through the real Inbox and router), the operator hand-off
and the web conversation, browsing the knowledge base, language, CSRF, errors and page weight."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select
from test_portal_support import count, csrf_of, errors_of, post_form, token

from helpline.models import Conversation, Event, Message, OutboxItem
from helpline.outbox import enqueue

PAGES = ["/", "/kb", "/kb/farming", "/kb/a/rice-blast", "/book", "/report", "/track", "/talk"]


async def test_home_has_the_question_box_the_four_paths_and_emergency_numbers(client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    html = await resp.text()
    assert '<html lang="zh-CN">' in html
    assert '<label for="text">' in html and 'id="text"' in html and 'action="/ask"' in html
    for path in ("/kb", "/book", "/report", "/track"):
        assert f'href="{path}"' in html
    assert 'href="tel:110"' in html and 'href="tel:119"' in html and 'href="tel:120"' in html
    assert resp.cookies.get("hl_sid") is not None
    assert "SameSite=Lax" in resp.headers.getall("Set-Cookie")[0] and "HttpOnly" in resp.headers.getall("Set-Cookie")[0]
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_english_is_chosen_once_and_remembered(client) -> None:
    html = await (await client.get("/?lang=en")).text()
    assert '<html lang="en">' in html and "How can we help you?" in html
    again = await (await client.get("/book")).text()  # no ?lang: the cookie remembers it
    assert '<html lang="en">' in again and "Book a service" in again
    back = await (await client.get("/track?lang=zh")).text()
    assert '<html lang="zh-CN">' in back and "查询进度" in back


async def test_asking_shows_the_short_and_full_answer_its_source_and_related_articles(client, db) -> None:
    resp = await post_form(client, "/ask", {"text": "小麦赤霉病怎么防"})
    assert resp.status == 200
    html = await resp.text()
    assert "赤霉病" in html
    assert 'class="short"' in html and "<details>" in html and "来源：" in html
    assert "相关内容" in html and re.search(r'href="/kb/a/[a-z0-9-]+"', html)
    assert 'action="/talk"' in html  # "not helped: talk to an operator"
    async with db.read() as s:
        inbound = (await s.scalars(select(Message).where(Message.direction == "in"))).all()
    assert len(inbound) == 1 and inbound[0].channel == "web" and inbound[0].urn.startswith("web:")
    assert inbound[0].intent == "knowledge"


async def test_the_same_form_sent_twice_is_one_question(client, db) -> None:
    csrf = await token(client)
    form = {"text": "hello", "csrf": csrf}
    first = await (await client.post("/ask", data=form)).text()
    second = await (await client.post("/ask", data=form)).text()
    assert "您好！" in first and "您好！" in second  # the menu, on the page in its language
    assert await count(db, Message, Message.direction == "in") == 1


async def test_an_empty_question_is_refused_politely_and_nothing_is_stored(client, db) -> None:
    resp = await post_form(client, "/ask", {"text": "  "})
    assert resp.status == 400
    html = await resp.text()
    assert errors_of(html) == [("text", "请输入您的问题。")]
    assert 'aria-invalid="true"' in html
    assert await count(db, Message) == 0


async def test_a_form_without_this_browsers_token_is_refused(client, db) -> None:
    await client.get("/")
    forged = await client.post("/ask", data={"text": "你好", "csrf": "lz1.abcdefghijkl.abcdefghijklmnopqrstuvwxyz0123"})
    assert forged.status == 403
    assert "你好" in await forged.text()  # the question is kept for the resident to send again
    page = await (await client.get("/")).text()
    client.session.cookie_jar.clear()  # another browser: the token is not its own
    stolen = await client.post("/ask", data={"text": "你好", "csrf": csrf_of(page)})
    assert stolen.status == 403
    assert await count(db, Message) == 0


async def test_a_street_problem_question_leads_to_the_report_form(client) -> None:
    html = await (await post_form(client, "/ask", {"text": "路口的路灯坏了"})).text()
    assert 'href="/report?text=' in html and "class=C0118" in html


async def test_not_helped_puts_the_conversation_in_the_operators_queue_and_replies_show_on_talk(client, db) -> None:
    await post_form(client, "/ask", {"text": "小麦赤霉病怎么防"})
    resp = await post_form(client, "/talk", {"question": "小麦赤霉病怎么防", "note": "试过了还是不行"})
    assert resp.status == 303 and resp.headers["Location"].startswith("/talk")
    async with db.read() as s:
        conv = await s.scalar(select(Conversation).where(Conversation.channel == "web"))
        assert conv is not None and conv.status == "waiting"
        last = await s.scalar(select(Message).where(Message.direction == "in").order_by(Message.id.desc()).limit(1))
        assert last is not None and "试过了还是不行" in last.text and last.intent == "operator"
        urn = last.urn
    page = await (await client.get("/talk")).text()
    assert "已为您转人工" in page and 'action="/talk/send"' in page
    # The operator answers (as the console does: through the outbox, to the web address).
    async with db.write() as s:
        await enqueue(s, urn, "您好，建议抽穗期喷药。", "operator_reply", key="portal-test-reply")
    thread = await (await client.get("/talk/messages")).text()
    assert "您好，建议抽穗期喷药。" in thread and "话务员" in thread
    # The outbox's web sender marks it sent: it is on the resident's page.
    for _ in range(100):
        async with db.read() as s:
            item = await s.scalar(select(OutboxItem).where(OutboxItem.idempotency_key == "portal-test-reply"))
        if item is not None and item.status == "sent":
            break
        await asyncio.sleep(0.05)
    assert item is not None and item.status == "sent"
    # The resident writes again in the same conversation.
    resp = await post_form(client, "/talk/send", {"text": "好的，谢谢"}, page="/talk")
    assert resp.status == 303
    assert "好的，谢谢" in await (await client.get("/talk")).text()


async def test_this_helped_is_recorded_beside_the_article(client, db) -> None:
    resp = await post_form(client, "/ask/feedback", {"article": "rice-blast"})
    assert resp.status == 303 and resp.headers["Location"] == "/?thanks=1"
    async with db.read() as s:
        event = await s.scalar(select(Event).where(Event.action == "portal.helpful"))
    assert event is not None and event.subject_id == "rice-blast"


async def test_browsing_the_knowledge_base_by_category(client) -> None:
    index = await (await client.get("/kb")).text()
    for group in ("farming", "livestock", "weather", "social", "documents", "safety"):
        assert f'href="/kb/{group}"' in index
    farming = await (await client.get("/kb/farming")).text()
    assert 'href="/kb/a/rice-blast"' in farming and "水稻稻瘟病" in farming
    article = await (await client.get("/kb/a/rice-blast?lang=en")).text()
    assert "<h1 id=\"a-title\">Rice blast</h1>" in article
    assert "<ul><li>" in article  # the answer's list is a real list
    assert "Source:" in article and 'href="/kb/farming"' in article


async def test_unknown_pages_are_friendly_html_not_json_or_tracebacks(client) -> None:
    for path in ("/kb/nothing-here", "/kb/a/no-such-article", "/booking/" + "0" * 32, "/book/no-such-service"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "text/html"
        html = await resp.text()
        assert "找不到这个页面" in html and "Traceback" not in html


async def test_pages_are_small_and_compressed(client) -> None:
    for path in PAGES:
        resp = await client.get(path, headers={"Accept-Encoding": "identity"})
        body = await resp.read()
        assert resp.status == 200, path
        assert len(body) < 30_000, (path, len(body))
    resp = await client.get("/report", headers={"Accept-Encoding": "gzip"})
    assert resp.headers.get("Content-Encoding") == "gzip"
    css = await client.get(re.search(r'href="(/portal/static/portal\.css\?v=\w+)"', await (await client.get("/")).text())
                           .group(1))
    assert css.status == 200 and "immutable" in css.headers["Cache-Control"]
    assert len(await css.read()) < 12_000
