"""Local accounts for an installation without an identity provider: a name, a role and an
argon2 hash of the password in the state database (``web_accounts``), never the password.

An unknown name costs the same hash as a wrong password, so the time a sign-in takes does not
tell which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from retention.catalog.model import ROLES, Role
from retention.decide.identity import os_user
from retention.errors import UsageError
from retention.state.database import utcnow, web_accounts

#: Issuer recorded for a person signed in with a local account.
LOCAL_ISSUER = "urn:retention:local-account"
MIN_PASSWORD = 12
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("not the password of any account")


@dataclass(frozen=True)
class Account:
    name: str
    role: Role


def add(engine: Engine, name: str, role: str, password: str, *, replace: bool = False) -> Account:
    """Create (or with ``replace`` reset) a local account; refuse a weak or empty input."""
    name = name.strip()
    if not name or len(name) > 200 or any(c.isspace() for c in name):
        raise UsageError("NAME must be 1-200 characters without spaces")
    if role not in ROLES:
        raise UsageError(f"--role {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password is shorter than {MIN_PASSWORD} characters")
    row = {
        "name": name,
        "role": role,
        "password_hash": _HASHER.hash(password),
        "created_at": utcnow(),
        "created_by": os_user()[:200],
        "disabled_at": None,
    }
    with engine.begin() as conn:
        exists = conn.scalar(sa.select(web_accounts.c.name).where(web_accounts.c.name == name))
        alike = conn.scalars(
            sa.select(web_accounts.c.name).where(sa.func.lower(web_accounts.c.name) == name.lower())
        ).all()
        if not exists and alike:
            # Two accounts one letter-case apart would let one person give two approvals.
            raise UsageError(f"account {alike[0]!r} exists: names differing only in case are one")
        if exists and not replace:
            raise UsageError(f"account {name!r} exists: give --replace to reset it")
        if exists:
            conn.execute(sa.update(web_accounts).where(web_accounts.c.name == name).values(row))
        else:
            conn.execute(sa.insert(web_accounts).values(row))
    return Account(name, next(r for r in ROLES if r == role))


def disable(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        changed = conn.execute(
            sa.update(web_accounts)
            .where(web_accounts.c.name == name, web_accounts.c.disabled_at.is_(None))
            .values(disabled_at=utcnow())
        ).rowcount
    if changed != 1:
        raise UsageError(f"no enabled account {name!r}")


def listed(engine: Engine) -> list[dict[str, object]]:
    query = sa.select(
        web_accounts.c.name,
        web_accounts.c.role,
        web_accounts.c.created_at,
        web_accounts.c.disabled_at,
    ).order_by(web_accounts.c.name)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def role_of(engine: Engine, name: str) -> Role | None:
    """The role of the enabled account ``name`` now; None when it is disabled or gone."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(web_accounts.c.role, web_accounts.c.disabled_at).where(
                web_accounts.c.name == name[:200]
            )
        ).first()
    if row is None or row.disabled_at is not None:
        return None
    return next((r for r in ROLES if r == row.role), None)


def check(engine: Engine, name: str, password: str) -> Account | None:
    """The account if the password is its own and it is enabled; None otherwise.

    The name must be the account's exactly: MariaDB's collation would also find ``rm1`` for
    ``RM1 `` or ``rm1  ``, names the sign-in throttle counts apart, so a guesser could spread
    their tries over them."""
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(web_accounts).where(web_accounts.c.name == name[:200]))
            .mappings()
            .first()
        )
    if row is not None and row["name"] != name:
        row = None  # the password is still hashed: the answer takes as long either way
    stored = row["password_hash"] if row is not None else _DUMMY
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled_at"] is not None or row["role"] not in ROLES:
        return None
    return Account(row["name"], next(r for r in ROLES if r == row["role"]))
