"""The ``helpline`` command: serve, db upgrade, user add, export, telegram."""

from __future__ import annotations

import argparse
import asyncio
import errno
import sys
from collections.abc import Sequence

from helpline.config import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="helpline", description="Multichannel community help-line service.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="prepare the database and run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--reuse-port", action="store_true",
                       help="let several serve processes listen on the same port (SO_REUSEPORT; Linux spreads connections)")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply Alembic migrations to HELPLINE_DATABASE_URL")

    user = sub.add_parser("user", help="console accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a console account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["operator", "supervisor", "department", "admin"])
    add.add_argument("--password", required=True)
    add.add_argument("--department", help="department code (department users only)")

    kb = sub.add_parser("kb", help="knowledge base")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    kb_import = kb_sub.add_parser("import", help="load article files (a file or a folder); all or nothing")
    kb_import.add_argument("path")
    kb_search = kb_sub.add_parser("search", help="print the ranked articles for a question")
    kb_search.add_argument("query", nargs="+")
    kb_search.add_argument("--limit", type=int, default=5)

    phone = sub.add_parser("phone", help="a phone in the terminal: call (or text) a running server as Twilio would")
    phone.add_argument("--url", default="http://127.0.0.1:8080", help="the server to call")
    phone.add_argument("--from", dest="caller", default="+8613800000000", help="the caller's number")
    phone.add_argument("--to", default="+8657181890", help="the help-line's number")
    phone.add_argument("--sms", action="store_true", help="send text messages instead of calling")

    tg = sub.add_parser("telegram", help="the Telegram bot (needs HELPLINE_TELEGRAM_TOKEN)")
    tg_sub = tg.add_subparsers(dest="telegram_command", required=True)
    tg_sub.add_parser("poll", help="long-poll the Bot API instead of a webhook (no public URL needed)")
    tg_sub.add_parser("set-webhook", help="point Telegram at HELPLINE_PUBLIC_URL/telegram/webhook with the secret")

    from helpline.booking.cli import add_parser as add_booking_parser

    add_booking_parser(sub)  # helpline booking import|providers|suspend|reinstate

    from helpline.cases.cli import add_parsers as add_case_parsers

    add_case_parsers(sub)  # helpline cases import-taxonomy|import-calendar|import-departments|figures; open311 key

    exp = sub.add_parser("export", help="write all records to stdout")
    exp.add_argument("kind", choices=["messages", "outbox", "bookings", "cases"])
    exp.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"helpline: configuration error: {exc}", file=sys.stderr)
        return 2
    from helpline import logs

    logs.configure(settings.log_level)
    if args.command == "serve":
        return _serve(settings, args.host, args.port, reuse_port=args.reuse_port)
    if args.command == "db":
        from helpline.bootstrap import prepare_database

        asyncio.run(prepare_database(settings))
        print("database is at the latest schema")
        return 0
    if args.command == "user":
        return asyncio.run(_user_add(settings, args))
    if args.command == "kb":
        return asyncio.run(_kb(settings, args))
    if args.command == "export":
        return asyncio.run(_export(settings, args.kind, args.format))
    if args.command == "booking":
        from helpline.booking.cli import run as run_booking

        return asyncio.run(run_booking(settings, args))
    if args.command in ("cases", "open311"):
        from helpline.cases.cli import run as run_cases

        return asyncio.run(run_cases(settings, args))
    if args.command == "telegram":
        if not settings.telegram_token:
            print("helpline: set HELPLINE_TELEGRAM_TOKEN (the bot's token from @BotFather) first", file=sys.stderr)
            return 2
        from channels.telegram import run_cli

        try:
            return asyncio.run(run_cli(settings, args.telegram_command))
        except KeyboardInterrupt:
            return 0
    if args.command == "phone":
        from helpline import phone_sim

        # Signed as Twilio signs: with the auth token, over the public URL the server checks against.
        return phone_sim.main(args.url, args.caller, args.to, args.sms, settings.twilio_auth_token, settings.public_url)
    return 2  # pragma: no cover - argparse enforces the choices


def _serve(settings: Settings, host: str, port: int, *, reuse_port: bool = False) -> int:
    from aiohttp import web

    from helpline.app import create_app
    from helpline.bootstrap import prepare

    asyncio.run(prepare(settings))
    base = f"http://{host}:{port}"
    print(f"Helpline is serving on {base}")
    print(f"  resident portal  {base}/")
    print(f"  messages API     {base}/api/v1/messages")
    print(f"  health           {base}/healthz")
    print(f"  metrics          {base}/metrics")
    print(f"  database         {settings.database_url}", flush=True)
    try:
        # keepalive_timeout also bounds how long a client may take to send a request's headers (a
        # slow client is cut off); the edge middleware bounds the body the same way.
        web.run_app(create_app(settings), host=host, port=port, print=None, shutdown_timeout=10,
                    keepalive_timeout=settings.client_timeout_seconds, reuse_port=reuse_port or None)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"helpline: port {port} on {host} is already in use; choose another with --port", file=sys.stderr)
            return 1
        raise
    return 0


async def _user_add(settings: Settings, args: argparse.Namespace) -> int:
    from helpline.bootstrap import prepare_database
    from helpline.db import Database
    from helpline.users import UserError, add_user

    await prepare_database(settings)
    db = Database.from_url(settings.database_url)
    try:
        async with db.write() as session:
            user = await add_user(session, args.username, args.role, args.password, args.department)
        print(f"created {user.role} {user.username!r}")
        return 0
    except UserError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()


async def _kb(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from helpline.bootstrap import prepare
    from helpline.db import Database
    from knowledge.loader import KnowledgeError
    from knowledge.search import search
    from knowledge.store import import_path

    await prepare(settings)
    db = Database.from_url(settings.database_url)
    try:
        if args.kb_command == "import":
            try:
                result = await import_path(db, Path(args.path))
            except KnowledgeError as exc:
                print(f"helpline: nothing imported; {len(exc.problems)} problem(s):", file=sys.stderr)
                for problem in exc.problems:
                    print(f"  {problem}", file=sys.stderr)
                return 1
            print(f"imported: {result.created} new, {result.updated} updated, {result.unchanged} unchanged")
            return 0
        query = " ".join(args.query)
        async with db.read() as session:
            hits = await search(session, query, limit=args.limit)
        if not hits:
            print(f"no articles match {query!r}")
            return 0
        lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in query) else "en"
        for i, hit in enumerate(hits, 1):
            a = hit.article
            print(f"{i}. {hit.confidence:.2f}  {a.slug}  [{a.category}]  {a.title(lang)}")
        return 0
    finally:
        await db.dispose()


async def _export(settings: Settings, kind: str, fmt: str) -> int:
    from helpline.db import Database
    from helpline.export import export

    from sqlalchemy.exc import DBAPIError

    db = Database.from_url(settings.database_url)
    try:
        await export(db, kind, fmt, sys.stdout)
    except DBAPIError as exc:
        print(f"helpline: cannot read {settings.database_url}: {exc.orig!r}; run 'helpline db upgrade' first?",
              file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
