"""The state database remembers which ``RETENTION_SECRET`` its references were made with.

Record references, subject references and plan fingerprints are HMACs under the secret: a
command run with another secret makes references that no hold, plan or certificate knows,
so a held record looks unheld and a certified one undone. The state database therefore keeps
a fingerprint of the secret — a salted scrypt digest, which cannot give the secret back and
makes guessing one expensive — and every command that uses the secret compares it first.

``retention init`` records it when the secret is set; otherwise the first command that uses
the secret records it (and says so). Changing the secret is ``retention secret rotate``
(:mod:`retention.enforce.rotation`), never a different environment variable.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from retention.errors import UsageError
from retention.logs import get_logger
from retention.pseudonym import SECRET_VARIABLE
from retention.state.database import as_utc, secret_fingerprint, utcnow

#: scrypt's cost: 16 MiB and about 50 ms a check, so a guess costs as much.
SCHEME = "scrypt:n=16384,r=8,p=1"
_PARAMETERS = {"n": 16384, "r": 8, "p": 1}

_log = get_logger("retention.installation")


class SecretMismatch(UsageError):
    """``RETENTION_SECRET`` is not the secret the state database's references were made with."""


@dataclass(frozen=True)
class Fingerprint:
    """The stored fingerprint of the installation's secret."""

    scheme: str
    salt: str
    digest: str
    recorded_at: datetime
    rotated_at: datetime | None

    def matches(self, secret: bytes) -> bool:
        if self.scheme != SCHEME:
            raise UsageError(
                f"the state database's secret fingerprint uses {self.scheme!r}, which this "
                "version of retention does not know: it was written by a newer retention"
            )
        return hmac.compare_digest(_digest(secret, self.salt), self.digest)


@functools.lru_cache(maxsize=8)
def _digest(secret: bytes, salt: str) -> str:
    """scrypt of the secret under the salt (cached: one derivation per process and salt)."""
    derived = hashlib.scrypt(secret, salt=bytes.fromhex(salt), dklen=32, **_PARAMETERS)
    return derived.hex()


def new_fingerprint_row(secret: bytes) -> dict[str, object]:
    """The columns of a fresh fingerprint of ``secret``, with a new random salt."""
    salt = os.urandom(16).hex()
    return {"scheme": SCHEME, "salt": salt, "digest": _digest(secret, salt)}


def stored(conn: sa.Connection) -> Fingerprint | None:
    row = conn.execute(sa.select(secret_fingerprint).where(secret_fingerprint.c.id == 1)).first()
    if row is None:
        return None
    return Fingerprint(
        scheme=row.scheme, salt=row.salt, digest=row.digest, recorded_at=as_utc(row.recorded_at),
        rotated_at=as_utc(row.rotated_at) if row.rotated_at else None,
    )  # fmt: skip


def rotated_at(engine: Engine) -> datetime | None:
    """When the secret was last rotated: plans made before then used the previous one."""
    with engine.connect() as conn:
        found = stored(conn)
    return found.rotated_at if found else None


def check_secret(engine: Engine, secret: bytes) -> bool:
    """Refuse (:class:`SecretMismatch`) a secret that is not the recorded one; record it when
    none is. Returns True when this call recorded it."""
    with engine.connect() as conn:
        found = stored(conn)
    if found is None:
        row = {"id": 1, **new_fingerprint_row(secret), "recorded_at": utcnow()}
        try:
            with engine.begin() as conn:
                conn.execute(secret_fingerprint.insert().values(row))
        except sa_exc.IntegrityError:  # another process recorded one first: compare with it
            return check_secret(engine, secret)
        _log.warning(
            "SecretFingerprintRecorded",
            message=f"the state database had no fingerprint of {SECRET_VARIABLE}: this "
            "secret's is now recorded, and every later command must use the same secret",
        )
        return True
    if not found.matches(secret):
        raise SecretMismatch(mismatch_message(found))
    return False


def mismatch_message(found: Fingerprint) -> str:
    since = found.rotated_at or found.recorded_at
    return (
        f"{SECRET_VARIABLE} is not the secret this state database was initialised with (its "
        f"fingerprint was recorded {since:%Y-%m-%d %H:%M} UTC): record and subject references "
        "made with it would match no hold, plan or certificate, so nothing was done. Set "
        f"{SECRET_VARIABLE} to the installation's secret; to rotate it, run "
        "`retention secret rotate --new-from-env VARIABLE` with both secrets set"
    )
