"""Operator commands on the database: `python -m genvid_api.admin budget ...`.

    budget set USER USD    give USER (email, username or id) a budget of USD per period
    budget clear USER      back to GENVID_USER_DAILY_BUDGET_USD
    budget show USER       the override, if any

An override changes the limit at once, for the current period too; what is spent and reserved
stays. Only DATABASE_URL (or GENVID_DATABASE_URL) is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from genvid_api.config import asyncpg_url
from genvid_contracts.pricing import to_micros, usd_text


class AdminError(Exception):
    """Something the operator typed is wrong: printed, exit status 1."""


def _usd(text: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError("the amount must be 0 or more")
    return amount


async def _find_user(connection: AsyncConnection, who: str) -> uuid.UUID:
    try:
        return uuid.UUID(who)
    except ValueError:
        pass
    found = (
        await connection.execute(
            sa.text(
                "SELECT id FROM users WHERE lower(email) = lower(:who) "
                "OR lower(username) = lower(:who)"
            ),
            {"who": who},
        )
    ).scalar_one_or_none()
    if found is None:
        raise AdminError(f"no user {who!r}")
    return uuid.UUID(str(found))


async def run(database_url: str, args: argparse.Namespace) -> str:
    engine = create_async_engine(asyncpg_url(database_url))
    try:
        async with engine.begin() as connection:
            user_id = await _find_user(connection, args.user)
            if args.action == "set":
                await connection.execute(
                    sa.text(
                        "INSERT INTO user_budget_overrides (user_id, limit_micros) "
                        "VALUES (:user, :limit) ON CONFLICT (user_id) DO UPDATE "
                        "SET limit_micros = excluded.limit_micros, updated_at = now()"
                    ),
                    {"user": user_id, "limit": to_micros(args.usd)},
                )
                return f"{user_id}: budget {usd_text(to_micros(args.usd))} USD per period"
            if args.action == "clear":
                await connection.execute(
                    sa.text("DELETE FROM user_budget_overrides WHERE user_id = :user"),
                    {"user": user_id},
                )
                return f"{user_id}: default budget"
            limit = (
                await connection.execute(
                    sa.text("SELECT limit_micros FROM user_budget_overrides WHERE user_id = :u"),
                    {"u": user_id},
                )
            ).scalar_one_or_none()
            if limit is None:
                return f"{user_id}: default budget"
            return f"{user_id}: budget {usd_text(int(limit))} USD per period"
    finally:
        await engine.dispose()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m genvid_api.admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    topics = root.add_subparsers(dest="topic", required=True)
    budget = topics.add_parser("budget", help="per-user budget overrides")
    actions = budget.add_subparsers(dest="action", required=True)
    set_ = actions.add_parser("set", help="set USER's budget per period")
    set_.add_argument("user")
    set_.add_argument("usd", type=_usd)
    for name in ("clear", "show"):
        actions.add_parser(name).add_argument("user")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    database_url = os.environ.get("GENVID_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not database_url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 1
    try:
        print(asyncio.run(run(database_url, args)))
    except AdminError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
