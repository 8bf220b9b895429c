"""``helpline cases …`` (city data, figures) and ``helpline open311 key …`` (API keys).

    helpline cases import-taxonomy PATH      a city's class list (CSV, see helpline/data/grid_taxonomy.csv)
    helpline cases import-calendar PATH      working hours and holidays (YAML, see helpline/data/worktime.yaml)
    helpline cases import-departments PATH   departments and routing rules (YAML, see helpline/data/departments.yaml)
    helpline cases figures [--from DATE] [--to DATE] [--by department|class|major|period] [--period month]
    helpline open311 key add NAME | list | revoke NAME
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from helpline.config import Settings

if TYPE_CHECKING:
    from helpline.db import Database


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cases = sub.add_parser("cases", help="grid cases: city data and figures")
    cs = cases.add_subparsers(dest="cases_command", required=True)
    for name, what in (("import-taxonomy", "a class list (CSV)"), ("import-calendar", "a work calendar (YAML)"),
                       ("import-departments", "departments and routes (YAML)")):
        p = cs.add_parser(name, help=f"load {what}; all or nothing")
        p.add_argument("path")
    fig = cs.add_parser("figures", help="print the centre's figures as JSON")
    fig.add_argument("--from", dest="start", help="first day (YYYY-MM-DD, local); default: the 1st of this month")
    fig.add_argument("--to", dest="end", help="day after the last (YYYY-MM-DD, local); default: now")
    fig.add_argument("--by", choices=["department", "class", "major", "period"])
    fig.add_argument("--period", choices=["day", "week", "month"], default="month")
    fig.add_argument("--department")

    o311 = sub.add_parser("open311", help="Open311 API keys")
    osub = o311.add_subparsers(dest="open311_command", required=True)
    key = osub.add_parser("key", help="add, list or revoke API keys")
    ksub = key.add_subparsers(dest="key_command", required=True)
    ksub.add_parser("add", help="make a key for a client (shown once)").add_argument("name")
    ksub.add_parser("list", help="list keys (names and hints, never the keys)")
    ksub.add_parser("revoke", help="revoke a client's key").add_argument("name")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from helpline.bootstrap import prepare_database
    from helpline.db import Database

    await prepare_database(settings)
    db = Database.from_url(settings.database_url)
    try:
        if args.command == "open311":
            return await _keys(db, args)
        return await _cases(db, settings, args)
    finally:
        await db.dispose()


async def _cases(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    from helpline.cases.data import CaseDataError, import_document, load_shipped, read_departments_text, store_departments

    if args.cases_command == "figures":
        return await _figures(db, settings, args)
    path = Path(args.path)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"helpline: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    await load_shipped(db)  # departments first: a taxonomy refers to them
    try:
        async with db.write() as session:
            if args.cases_command == "import-departments":
                rows, routes = read_departments_text(content, str(path))
                await store_departments(session, rows, routes, "imported", "cli")
                print(f"loaded {len(rows)} departments and {len(routes)} routes")
            else:
                kind = "taxonomy" if args.cases_command == "import-taxonomy" else "calendar"
                count = await import_document(session, kind, str(path), content, "cli")
                what = "classes" if kind == "taxonomy" else "holidays and make-up working days"
                print(f"loaded {kind} from {path}: {count} {what}; in force from now on")
    except CaseDataError as exc:
        print(f"helpline: nothing loaded: {exc}", file=sys.stderr)
        return 1
    return 0


def _day(value: str | None, zone: ZoneInfo, default: datetime) -> datetime:
    if not value:
        return default
    return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(0), zone)


async def _figures(db: Database, settings: Settings, args: argparse.Namespace) -> int:
    from helpline.cases.figures import figures
    from helpline.models import utcnow

    zone = settings.zone
    now = utcnow().astimezone(zone)
    try:
        start = _day(args.start, zone, datetime.combine(now.date().replace(day=1), time(0), zone))
        end = _day(args.end, zone, now + timedelta(seconds=1))
    except ValueError:
        print("helpline: --from and --to are dates such as 2026-11-01", file=sys.stderr)
        return 2
    async with db.read() as session:
        try:
            data = await figures(session, start, end, args.by, args.period, args.department)
        except ValueError as exc:
            print(f"helpline: {exc}", file=sys.stderr)
            return 2
    print(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


async def _keys(db: Database, args: argparse.Namespace) -> int:
    from helpline.cases.keys import KeyProblem, add_key, list_keys, revoke_key

    try:
        async with db.write() as session:
            if args.key_command == "add":
                row, key = await add_key(session, args.name, "cli")
                print(f"key for {row.name}: {key}")
                print("keep it now: it is not shown again (only its hash is stored)")
            elif args.key_command == "revoke":
                row = await revoke_key(session, args.name, "cli")
                print(f"revoked the key of {row.name}")
            else:
                for row in await list_keys(session):
                    state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                    used = f"last used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
                    print(f"{row.name}\t{row.hint}…\t{state}\t{used}")
    except KeyProblem as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 1
    return 0
