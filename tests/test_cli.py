"""The ``helpline`` command, run as a user runs it: in a subprocess, in an empty directory."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpline.config import Settings
from helpline.db import Database
from helpline.inbound import Inbox
from helpline.app import build_router
from helpline.metrics import Metrics
from helpline.request import Channel, Request


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "helpline", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def test_serve_in_an_empty_directory_just_works(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpline", "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                    assert json.load(resp) == {"status": "ok"}
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
        zh = post_json(f"{base}/api/v1/messages", {"from": "web:cli", "text": "你好"})
        en = post_json(f"{base}/api/v1/messages", {"from": "web:cli2", "text": "hello"})
        assert (zh["intent"], zh["lang"]) == ("menu", "zh")
        assert (en["intent"], en["lang"]) == ("menu", "en")
        assert (tmp_path / "var" / "helpline.db").exists()
        assert (tmp_path / "var" / "secret_key").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "/api/v1/messages" in out


def test_serve_reports_a_bad_setting_clearly(tmp_path: Path) -> None:
    result = run(["serve"], tmp_path, {"HELPLINE_TIMEZONE": "Nowhere/Land"})
    assert result.returncode == 2
    assert "HELPLINE_TIMEZONE" in result.stderr and "Traceback" not in result.stderr


def test_serve_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        result = run(["serve", "--port", str(s.getsockname()[1])], tmp_path)
    assert result.returncode == 1 and "already in use" in result.stderr


def test_user_add(clean_db: str, tmp_path: Path) -> None:
    env = {"HELPLINE_DATABASE_URL": clean_db}
    ok = run(["user", "add", "wang.li", "--role", "operator", "--password", "s3cret-pass"], tmp_path, env)
    assert ok.returncode == 0, ok.stderr
    assert "created operator 'wang.li'" in ok.stdout
    again = run(["user", "add", "wang.li", "--role", "operator", "--password", "s3cret-pass"], tmp_path, env)
    assert again.returncode == 1 and "already exists" in again.stderr
    short = run(["user", "add", "zhao", "--role", "admin", "--password", "short"], tmp_path, env)
    assert short.returncode == 1 and "at least 8" in short.stderr
    dept = run(["user", "add", "sanitation1", "--role", "department", "--password", "longenough"], tmp_path, env)
    assert dept.returncode == 1 and "--department" in dept.stderr
    dept = run(
        ["user", "add", "sanitation1", "--role", "department", "--department", "SAN", "--password", "longenough"],
        tmp_path, env,
    )
    assert dept.returncode == 0, dept.stderr


async def test_user_password_is_an_argon2_hash(db: Database) -> None:
    from helpline.users import add_user, verify_password

    async with db.write() as s:
        user = await add_user(s, "li.ming", "supervisor", "correct horse")
    assert user.password_hash.startswith("$argon2")
    assert verify_password(user.password_hash, "correct horse")
    assert not verify_password(user.password_hash, "wrong horse")


async def test_export_messages_as_jsonl_and_csv(settings: Settings, db: Database, tmp_path: Path) -> None:
    inbox = Inbox(db, build_router(), settings, Metrics())
    await inbox.handle(Request(Channel.WEB, "web:exp", "你好", provider_id="k1"))
    await inbox.handle(Request(Channel.WEB, "web:exp", "hello, \"quoted\", with comma", provider_id="k2"))
    await inbox.close()
    env = {"HELPLINE_DATABASE_URL": settings.database_url}

    jsonl = run(["export", "messages"], tmp_path, env)
    assert jsonl.returncode == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [(r["direction"], r["provider_id"]) for r in rows] == [("in", "k1"), ("out", None), ("in", "k2"), ("out", None)]
    assert rows[0]["text"] == "你好" and rows[0]["intent"] == "menu" and rows[0]["created_at"].endswith("+00:00")

    as_csv = run(["export", "messages", "--format", "csv"], tmp_path, env)
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(table) == 4 and table[2]["text"] == 'hello, "quoted", with comma'


def test_db_upgrade_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], tmp_path, {"HELPLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x/h.db"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x" / "h.db").exists()


@pytest.mark.parametrize("args", [["export", "bogus"], ["user", "add", "x", "--role", "king", "--password", "12345678"]])
def test_bad_arguments_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    result = run(args, tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_kb_search_prints_ranked_hits(tmp_path: Path) -> None:
    result = run(["kb", "search", "井盖"], tmp_path)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("1. 1.00  helpline-report-city-problem")
    english = run(["kb", "search", "my", "cow", "is", "bloated"], tmp_path)
    assert "cattle-bloat" in english.stdout.splitlines()[0]


def test_kb_import_reports_problems_and_loads_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "ok-article.yaml").write_text(
        "id: ok-article\ncategory: soil\ntitle: {zh: 测试, en: Test}\nkeywords: {zh: [测], en: [zzqtest]}\n"
        "short: {zh: 短, en: Short}\nfull: {zh: 全, en: Full}\nsource: test\nreviewed: 2026-11-01\n",
        encoding="utf-8",
    )
    (folder / "broken.yaml").write_text("id: broken\ncategory: soil\n", encoding="utf-8")
    bad = run(["kb", "import", str(folder)], tmp_path)
    assert bad.returncode == 1 and "nothing imported" in bad.stderr and "broken.yaml:1: missing field" in bad.stderr
    assert "ok-article" not in run(["kb", "search", "zzqtest"], tmp_path).stdout
    (folder / "broken.yaml").unlink()
    good = run(["kb", "import", str(folder)], tmp_path)
    assert good.returncode == 0 and "1 new" in good.stdout
    assert "ok-article" in run(["kb", "search", "zzqtest"], tmp_path).stdout


async def test_export_outbox_shows_dead_letters(settings: Settings, db: Database, tmp_path: Path) -> None:
    from sqlalchemy import update

    from helpline.models import OutboxItem
    from helpline.outbox import enqueue

    async with db.write() as s:
        item = await enqueue(s, "tel:+8613800000009", "您的案件已办结。", "case_update", key="case-1-closed")
    async with db.write() as s:
        await s.execute(update(OutboxItem).where(OutboxItem.id == item.id).values(status="dead", attempts=8,
                                                                             last_error="HTTP 500"))
    result = run(["export", "outbox", "--format", "csv"], tmp_path, {"HELPLINE_DATABASE_URL": settings.database_url})
    assert result.returncode == 0, result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["status"], row["attempts"], row["last_error"], row["kind"]) == ("dead", "8", "HTTP 500", "case_update")
