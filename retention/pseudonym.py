"""Keyed pseudonyms: record references, subject references, ``pseudonym`` values and the
fingerprints of planned records.

All are HMAC-SHA256 under the installation's ``RETENTION_SECRET`` with a distinct
domain prefix, so a record reference can never be confused with a pseudonymised column
value. They are stable (the same input always gives the same output, which is what lets a
later run recognise a record it already disposed of) and irreversible without the secret.
The secret comes only from the environment, never from a catalog file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from retention.errors import MissingSecret

SECRET_VARIABLE = "RETENTION_SECRET"  # noqa: S105 - the variable name only
MIN_SECRET_LENGTH = 32


class Secret:
    """The installation's HMAC key, pre-keyed once so each use only copies the state."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_SECRET_LENGTH:
            raise MissingSecret(
                f"{SECRET_VARIABLE} must be at least {MIN_SECRET_LENGTH} characters long"
            )
        self._record = hmac.new(key, b"record\x00", hashlib.sha256)
        self._subject = hmac.new(key, b"subject\x00", hashlib.sha256)
        self._pseudonym = hmac.new(key, b"pseudonym\x00", hashlib.sha256)
        self._fingerprint = hmac.new(key, b"fingerprint\x00", hashlib.sha256)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Secret:
        value = (os.environ if environ is None else environ).get(SECRET_VARIABLE, "")
        if not value:
            raise MissingSecret(
                f"{SECRET_VARIABLE} is not set: commands that write need the installation's "
                "HMAC secret (record references and pseudonyms depend on it)"
            )
        return cls(value.encode())

    def record_ref(self, connector: str, table: str, key: Iterable[Any]) -> str:
        """Reference to one record: HMAC of ``connector/table/key`` (SPEC §7)."""
        return self.record_ref_of(connector, table, key_json(key))

    def record_ref_of(self, connector: str, table: str, key_text_json: str) -> str:
        """:meth:`record_ref` of a key already in its :func:`key_json` form."""
        message = f"{connector}/{table}/{key_text_json}".encode()
        h = self._record.copy()
        h.update(message)
        return h.hexdigest()

    def record_refs_of(self, connector: str, table: str, keys_json: Iterable[str]) -> list[str]:
        """:meth:`record_ref_of` of many keys of one table: the HMAC state after the shared
        ``connector/table/`` prefix is computed once and copied per key."""
        prefix = self._record.copy()
        prefix.update(f"{connector}/{table}/".encode())
        out = []
        for key in keys_json:
            h = prefix.copy()
            h.update(key.encode())
            out.append(h.hexdigest())
        return out

    def subject_ref(self, subject: Any) -> str:
        """Reference to a data subject, so holds never store a person's identifier."""
        h = self._subject.copy()
        h.update(key_text(subject).encode())
        return h.hexdigest()

    def fingerprint(self, canonical: str) -> str:
        """Keyed digest of a record's values as a plan read them, so a later run can tell
        whether they changed without the plan storing the values themselves."""
        return self.fingerprint_of(canonical.encode())

    def fingerprint_of(self, canonical: bytes) -> str:
        """:meth:`fingerprint` of the canonical text already encoded as UTF-8."""
        h = self._fingerprint.copy()
        h.update(canonical)
        return h.hexdigest()

    def pseudonym(self, value: Any) -> str | None:
        """The ``pseudonym`` anonymisation strategy: 64 lowercase hex characters."""
        if value is None:
            return None
        h = self._pseudonym.copy()
        h.update(key_text(value).encode())
        return h.hexdigest()


def key_text(value: Any) -> str:
    """The text form of one key value, stable across databases and drivers."""
    if type(value) is str:  # the common cases first: a text or integer key
        return value
    if type(value) is int:
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


#: One encoder for every key: ``json.dumps`` with options builds a new encoder per call.
_KEY_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def key_json(key: Iterable[Any]) -> str:
    """A record key as a JSON list of strings in key-column order.

    orjson writes exactly what ``_KEY_ENCODER`` does for a list of strings (the same escapes,
    a test pins it), several times faster; a string it refuses (a lone surrogate) takes the
    reference encoder.
    """
    texts = [key_text(v) for v in key]
    try:
        return orjson.dumps(texts).decode()
    except TypeError:
        return _KEY_ENCODER.encode(texts)


def key_display(key: Iterable[Any]) -> str | list[str]:
    """SPEC §6: a string for a single-column key, a list of strings for a composite one."""
    texts = [key_text(v) for v in key]
    return texts[0] if len(texts) == 1 else texts
