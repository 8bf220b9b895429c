"""``helpline booking …``: import the catalogue, list providers with their scores, suspend or
reinstate a provider (until the console does it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """Add the ``booking`` command to the CLI's subparsers."""
    bk = sub.add_parser("booking", help="bookings: the service catalogue and partner providers")
    bk_sub = bk.add_subparsers(dest="booking_command", required=True)
    imp = bk_sub.add_parser("import", help="upsert categories, services, providers, holidays from YAML or CSV; all or nothing")
    imp.add_argument("path")
    bk_sub.add_parser("providers", help="list providers with their scores, flags and status")
    sus = bk_sub.add_parser("suspend", help="a provider takes no new bookings")
    sus.add_argument("code")
    sus.add_argument("--reason", default="")
    rei = bk_sub.add_parser("reinstate", help="a suspended or flagged provider takes bookings again")
    rei.add_argument("code")


async def run(settings: Any, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from helpline.booking.catalogue import CatalogueError, import_file
    from helpline.booking.models import Provider
    from helpline.booking.service import reinstate_provider, suspend_provider
    from helpline.bootstrap import prepare_database
    from helpline.db import Database
    from helpline.models import utcnow

    await prepare_database(settings)
    db = Database.from_url(settings.database_url)
    try:
        if args.booking_command == "import":
            try:
                result = await import_file(db, Path(args.path), utcnow(), settings.zone, settings.default_region)
            except CatalogueError as exc:
                print(f"helpline: nothing imported; {len(exc.problems)} problem(s):", file=sys.stderr)
                for problem in exc.problems:
                    print(f"  {problem}", file=sys.stderr)
                return 1
            print(f"imported: {result}")
            return 0
        if args.booking_command == "providers":
            async with db.read() as session:
                providers = list(await session.scalars(select(Provider).order_by(Provider.code)))
            for p in providers:
                score = f"{p.score:.2f}" if p.score is not None else "-"
                flag = " FLAGGED for review" if p.flagged_at else ""
                print(f"{p.code:<24} {p.status:<10} score {score:>5} ({p.rating_count} ratings){flag}  {p.name_zh}")
            return 0
        async with db.write() as session:
            provider = await session.scalar(select(Provider).where(Provider.code == args.code))
            if provider is None:
                print(f"helpline: no provider {args.code!r}", file=sys.stderr)
                return 1
            if args.booking_command == "suspend":
                await suspend_provider(session, provider, now=utcnow(), actor="cli", reason=args.reason)
            else:
                await reinstate_provider(session, provider, now=utcnow(), actor="cli")
            print(f"{provider.code}: {provider.status}")
        return 0
    finally:
        await db.dispose()
