"""Console accounts: creation with argon2 password hashes, and password checks."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from helpline.models import Event, User

ROLES = ("operator", "supervisor", "department", "admin")
_USERNAME = re.compile(r"^[A-Za-z0-9._-]{3,64}$")
_hasher = PasswordHasher()


class UserError(ValueError):
    """A user cannot be created as asked; the message says why."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def add_user(
    session: AsyncSession,
    username: str,
    role: str,
    password: str,
    department: str | None = None,
    actor: str = "cli",
) -> User:
    if not _USERNAME.match(username):
        raise UserError("username must be 3-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise UserError(f"role must be one of: {', '.join(ROLES)}")
    if len(password) < 8:
        raise UserError("password must be at least 8 characters")
    if role == "department" and not department:
        raise UserError("a department user needs --department CODE")
    if role != "department" and department:
        raise UserError("--department is only for department users")
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(username=username, role=role, department_code=department, password_hash=hash_password(password))
    session.add(user)
    await session.flush()
    session.add(
        Event(actor=actor, action="user.created", subject_type="user", subject_id=str(user.id),
              data={"username": username, "role": role, "department": department})
    )
    return user
