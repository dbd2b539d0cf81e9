"""What an action changes in its source, said per policy to the people who approve and sign.

A records manager approving a plan, and an auditor reading a certificate of destruction, need
to see more than "anonymise": which columns are rewritten and how, which columns stay as they
were (so a name left beside an erased e-mail is seen before approval, not after), what an
archive package holds, and whose register it is. This module works that out from the policy
and from the table's columns as the connector describes them; when the source cannot be
described, from the columns the policy itself names, and says so. Column names only: no value
of any record is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from retention.catalog.loading import BoundPolicy
from retention.catalog.model import Register
from retention.i18n import Messages
from retention.logs import get_logger
from retention.workspace import Workspace

#: The format of every archive package (see :mod:`retention.enforce.archive`).
ARCHIVE_FORMAT = "BagIt (RFC 8493)"

_log = get_logger("retention")


@dataclass(frozen=True)
class Effect:
    """What one policy's action does to a record, in column names."""

    register: str
    policy: str
    action: str
    then: str | None
    kind: Literal["table", "files"]
    location: str
    key: tuple[str, ...]
    rewritten: tuple[tuple[str, str], ...]
    """(column, strategy) in the policy's order: what anonymisation rewrites."""
    untouched: tuple[str, ...]
    """Columns left as they were: the table's columns minus the key and the rewritten ones;
    nothing for a deletion (the whole record goes)."""
    columns_from: Literal["source", "policy"]
    """Where the columns came from: the connector's description, or (the source could not be
    described) the columns the policy names."""
    archived: tuple[str, ...]
    """The columns an archive package holds per record (empty unless the action archives)."""
    attachments: tuple[str, str] | None
    """(column, file-share connector) of the files that go with each row."""
    fingerprint: str = ""
    """The policy's fingerprint: the effect is of that exact rule (a plan's, a certificate's)."""

    @property
    def anonymises(self) -> bool:
        return self.action == "anonymise" or self.then == "anonymise"

    @property
    def deletes(self) -> bool:
        return self.action == "delete" or self.then == "delete"

    def as_json(self) -> dict[str, Any]:
        """The JSON report's ``changes`` of a policy."""
        return {
            "action": self.action,
            "then": self.then,
            "location": {"kind": self.kind, "name": self.location},
            "key": list(self.key),
            "anonymise": [{"column": c, "strategy": s} for c, s in self.rewritten],
            "deletes_record": self.deletes,
            "untouched": list(self.untouched),
            "columns_from": self.columns_from,
            "archive": (
                {"format": ARCHIVE_FORMAT, "columns": list(self.archived),
                 "contents": ["records/REF.json", *(["files/REF/"] if self.attachments
                              or self.kind == "files" else []), "bag-info.txt",
                              "manifest-sha256.txt", "manifest-sha512.txt"]}
                if self.action == "archive" else None
            ),
            "attachments": (
                {"column": self.attachments[0], "connector": self.attachments[1]}
                if self.attachments else None
            ),
        }  # fmt: skip

    def sentences(self, t: Messages) -> list[str]:
        """The effect said in ``t``'s language, one sentence per line."""
        columns = ", ".join
        rewritten = "; ".join(f"{c} ({t.word('strategy', s)})" for c, s in self.rewritten)
        out: list[str] = []
        if self.action == "review":
            return [t("change_review")]
        if self.action == "archive":
            held = columns(self.archived) or t("change_archive_all")
            if self.kind == "files":
                held = t("change_archive_file")
            out.append(t("change_archive", format=ARCHIVE_FORMAT, columns=held))
            if self.then == "delete":
                out.append(t("change_then_delete"))
            elif self.then == "anonymise":
                out.append(t("change_then_anonymise", columns=rewritten))
            else:
                out.append(t("change_then_keep"))
        elif self.action == "delete":
            out.append(t("change_delete_files" if self.kind == "files" else "change_delete"))
        elif self.action == "anonymise":
            out.append(t("change_anonymise", columns=rewritten))
        if self.attachments is not None:
            column, share = self.attachments
            out.append(t("change_attachments", column=column, share=share))
        if self.anonymises:
            out.append(t("change_kept_key", columns=columns(self.key)))
            if not self.untouched:
                out.append(t("change_untouched_none"))
            elif self.columns_from == "source":
                out.append(t("change_untouched", columns=columns(self.untouched)))
            else:
                out.append(t("change_untouched_named", columns=columns(self.untouched)))
        return out

    def compact(self) -> str:
        """The effect in one short line of keywords and column names: the CSV report's
        ``changes`` cell, repeated on every row of the policy, so kept short."""
        whole = "whole file" if self.kind == "files" else "whole row"
        rewritten = ", ".join(f"{c}={s}" for c, s in self.rewritten)
        parts: list[str] = []
        if self.action == "review":
            parts.append("review: nothing changed")
        elif self.action == "delete":
            parts.append(f"delete: {whole}")
        elif self.action == "anonymise":
            parts.append(f"anonymise: {rewritten}")
        elif self.action == "archive":
            held = ", ".join(self.archived) or "every column"
            parts.append(f"archive: {ARCHIVE_FORMAT} package, columns {held}")
            then = {"delete": f"delete: {whole}", "anonymise": f"anonymise: {rewritten}"}
            parts.append(f"then {then.get(self.then or '', 'keep')}")
        if self.anonymises:
            parts.append(f"key kept: {', '.join(self.key)}")
            named = "" if self.columns_from == "source" else " (named by the policy)"
            parts.append(f"untouched{named}: {', '.join(self.untouched) or 'none'}")
        if self.attachments is not None:
            parts.append(f"attachments: column {self.attachments[0]} on {self.attachments[1]}")
        return "; ".join(parts)


def named_columns(bound: BoundPolicy) -> tuple[str, ...]:
    """Every column the policy names, in a stable order: what is known without the source."""
    p = bound.policy
    named = (*p.key, *p.trigger, p.subject, *p.secret, *p.match, *(u.column for u in p.unless),
             *p.anonymise, p.attachments.column if p.attachments else None)  # fmt: skip
    return tuple(dict.fromkeys(c for c in named if c))


def effect_of(bound: BoundPolicy, described: Sequence[str] | None) -> Effect:
    """The effect of ``bound``'s action; ``described`` is the table's columns as the connector
    describes them, or None when it could not be described."""
    p = bound.policy
    columns = tuple(described) if described is not None else named_columns(bound)
    rewritten = tuple(p.anonymise.items())
    gone = {*p.key, *p.anonymise}
    anonymises = p.action == "anonymise" or p.then == "anonymise"
    untouched = tuple(c for c in columns if c not in gone) if anonymises else ()
    return Effect(
        register=bound.register.id, policy=p.id, action=p.action, then=p.then,
        kind="table" if p.table is not None else "files", location=p.location,
        key=p.key, rewritten=rewritten, untouched=untouched,
        columns_from="source" if described is not None else "policy",
        archived=columns if p.action == "archive" and described is not None else (),
        attachments=(p.attachments.column, p.attachments.connector) if p.attachments else None,
        fingerprint=p.fingerprint(),
    )  # fmt: skip


def effects(ws: Workspace, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Effect]:
    """The effects of the catalog's policies among ``wanted`` (register, policy) pairs.

    Each table is described once; a source that cannot be reached leaves the policy's own
    columns (logged by the kind of failure only, never a driver's message).
    """
    chosen = set(wanted)
    described: dict[tuple[str, str], tuple[str, ...] | None] = {}
    out: dict[tuple[str, str], Effect] = {}
    for bound in ws.catalog.policies:
        pair = (bound.register.id, bound.policy.id)
        if pair not in chosen:
            continue
        where = (bound.policy.connector, bound.policy.location)
        if where not in described:
            described[where] = _describe(ws, *where)
        out[pair] = effect_of(bound, described[where])
    return out


def register_json(register: Register | None) -> dict[str, Any] | None:
    """Whose register it is, for the JSON report: name, controller, records plan."""
    if register is None:
        return None
    return {"name": register.name, "controller": register.controller,
            "records_plan": register.source, "statutory": register.statutory}  # fmt: skip


def _describe(ws: Workspace, connector: str, location: str) -> tuple[str, ...] | None:
    try:
        return tuple(ws.connector(connector).describe(location).columns)
    except Exception as exc:  # noqa: BLE001 - the report is written with the policy's columns
        _log.warning("SourceNotDescribed", connector=connector, error=type(exc).__name__)
        return None
