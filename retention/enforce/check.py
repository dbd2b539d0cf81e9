"""``retention check``: prove every policy fits the live source it names.

Static validation happens when the catalog loads; this adds what only the source can tell:
the table and every named column exist, the key is unique, the trigger is a date, and each
anonymisation strategy can be written into its column. Every problem is collected and
reported together; nothing is changed.

``retention check`` also lists the records a source would refuse for what they are (on a file
share: links, hard links, pipes, names that are not UTF-8), by reference. The commands that
run policies check without them: such a record is a problem of its own policy at run time
(that policy ends ``partial``, exit 4), never a reason to stop every other register.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial

import sqlalchemy as sa

from retention.catalog.loading import BoundPolicy, destroying_pairs, may_overlap, overlap_problem
from retention.connectors.base import Column, Connector, Selection, TableInfo
from retention.enforce.anonymise import REDACTED
from retention.errors import CatalogError, MissingSecret, Problem, RetentionError, did_you_mean
from retention.pseudonym import Secret, key_json
from retention.workspace import Workspace

PSEUDONYM_LENGTH = 64


def check(ws: Workspace, static: Sequence[Problem] = (), *, records: bool = False) -> list[str]:
    """Raise CatalogError listing every problem; return notes on what was checked.

    ``static`` are the problems found loading the catalog, reported together with these.
    With ``records`` (``retention check``), also every record a source would refuse.
    """
    problems: list[Problem] = list(static)
    unreachable: set[str] = set()
    for source_id in ws.catalog.sources:
        try:
            ws.connector(source_id).ping()
        except (RetentionError, LookupError) as exc:
            unreachable.add(source_id)
            problems.append(
                Problem(ws.catalog.files.get(source_id, "connectors/"), str(exc), key="url")
            )
    notes = []
    for bound in ws.catalog.policies:
        if (
            bound.policy.connector in unreachable
            or bound.policy.connector not in ws.catalog.sources
        ):
            continue
        found = list(_policy_problems(ws, bound, records=records))
        if records and not found:
            found = list(_record_problems(ws, bound))
        problems.extend(found)
        if not found:
            notes.append(f"{bound.name}: {bound.policy.describe_rule()}")
    problems.extend(_collation_overlaps(ws, unreachable))
    if problems:
        raise CatalogError(problems)
    return notes


def _collation_overlaps(ws: Workspace, unreachable: set[str]) -> Iterable[Problem]:
    """Destroying policies whose match values differ as written but not to the source.

    ``{contract_type: asiakassopimus}`` and ``{contract_type: ASIAKASSOPIMUS}`` are disjoint
    in Python and one filter under a case-insensitive collation (MariaDB's default), as are
    ``e`` and ``é`` under an accent-insensitive one or ``'1'`` and ``'01'`` on a number column.
    The source is asked; pairs already refused as written are not reported twice.
    """
    for first, second in destroying_pairs(ws.catalog.policies, ws.catalog.source_identities()):
        a, b = first.policy, second.policy
        if a.connector in unreachable or a.connector not in ws.catalog.sources:
            continue
        if may_overlap(a, b):
            continue  # refused when the catalog loaded
        equal = partial(ws.connector(a.connector).equal, a.location)
        try:
            overlapping = may_overlap(a, b, equal)
        except (RetentionError, LookupError, KeyError, sa.exc.SQLAlchemyError) as exc:
            message = f"cannot compare its match: values with {first.name}'s in the source: {exc}"
            yield Problem(second.file, message, second.line, b.id, "match")
            continue
        if overlapping:
            yield overlap_problem(
                first, second, " (the source compares their match: values as equal)"
            )


def _article(kind: str) -> str:
    """ "a sidecar field", "TEXT": a type's name stands alone, a description takes "a"."""
    return f"a {kind}" if kind.islower() and " " in kind else kind


def _policy_problems(ws: Workspace, bound: BoundPolicy, *, records: bool) -> Iterable[Problem]:
    policy = bound.policy

    def problem(key: str, message: str) -> Problem:
        return Problem(bound.file, message, policy=policy.id, key=key)

    connector = ws.connector(policy.connector)
    try:
        info = connector.describe(policy.location)
    except LookupError as exc:
        yield problem("table", str(exc).strip("'\""))
        return
    except (RetentionError, sa.exc.SQLAlchemyError) as exc:
        yield problem("table", f"cannot read the table: {exc}")
        return

    named = [("key", c) for c in policy.key]
    named += [("subject", policy.subject)] if policy.subject else []
    named += [("secret", c) for c in policy.secret]
    named += [("trigger", c) for c in policy.trigger]
    named += [(f"unless[{i}].column", u.column) for i, u in enumerate(policy.unless)]
    named += [(f"match.{c}", c) for c in policy.match]
    named += [(f"anonymise.{c}", c) for c in policy.anonymise]
    if policy.attachments is not None:
        named += [("attachments.column", policy.attachments.column)]
    missing = False
    where = "table" if policy.table is not None else "path"
    for key, column in named:
        if info.column(column) is None:
            missing = True
            yield problem(
                key,
                f"column {column!r} does not exist in {where} {policy.location!r} "
                f"({did_you_mean(column, info.columns)}it has: {', '.join(info.columns)})",
            )
    if missing:
        return
    yield from _key_problems(connector, info, bound)
    if policy.anonymise and not connector.capabilities.anonymise:
        yield problem(
            "action",
            f"connector {policy.connector} cannot anonymise in place; use delete or archive",
        )
    for name in policy.trigger:
        trigger = info.column(name)
        assert trigger is not None
        if trigger.sql_type and trigger.sql_type.startswith("sidecar") and not records:
            # A sidecar field's kind is read from what users wrote: one "see attached" must
            # not stop every register before a run. Such a record has no trigger date and is
            # kept; `retention check` lists the field.
            continue
        if trigger.kind not in ("date", "datetime"):
            yield problem(
                "trigger",
                f"column {trigger.name!r} is {_article(trigger.sql_type or trigger.kind)}; "
                "a trigger must be a DATE or DATETIME column",
            )
    for column_name, strategy in policy.anonymise.items():
        target = info.column(column_name)
        assert target is not None
        message = _strategy_problem(strategy, target)
        if message:
            yield problem(f"anonymise.{column_name}", message)


def _record_problems(ws: Workspace, bound: BoundPolicy) -> Iterable[Problem]:
    """Records the policy reaches that its source would refuse (a file share's links, hard
    links, pipes, undecodable names), each named by its record reference, never its key."""
    policy = bound.policy
    connector = ws.connector(policy.connector)
    if not connector.capabilities.record_problems:
        return
    where = "table" if policy.table is not None else "path"
    connector.problems()  # what earlier reads found is reported with its own policy
    try:
        connector.count(Selection(table=policy.location, key=policy.key), candidates_only=False)
    except RetentionError as exc:
        yield Problem(bound.file, f"cannot read the records: {exc}", policy=policy.id, key=where)
        return
    secret: Secret | None
    try:
        secret = ws.secret
    except MissingSecret:
        secret = None  # `check` may run without it; the problem is still reported
    for found in connector.problems():
        ref = (
            f"record {secret.record_ref_of(policy.connector, policy.location, key_json(found.key))}"
            if secret is not None
            else "a record (set RETENTION_SECRET to see its reference)"
        )
        yield Problem(bound.file, f"{ref} {found.problem}", policy=policy.id, key=where)


def _key_problems(connector: Connector, info: TableInfo, bound: BoundPolicy) -> Iterable[Problem]:
    policy = bound.policy
    nullable = [
        c for c in policy.key
        if c not in info.primary_key and (col := info.column(c)) is not None and col.nullable
    ]  # fmt: skip
    if nullable:
        yield Problem(bound.file, f"key column(s) {', '.join(nullable)} may be NULL: a record "
                      "without a key cannot be named, paged or certified", policy=policy.id,
                      key="key")  # fmt: skip
    if info.is_unique(policy.key):
        return
    duplicates = connector.duplicate_keys(policy.location, policy.key)
    if duplicates:
        yield Problem(
            bound.file,
            f"key {list(policy.key)} is not unique in {policy.location!r}: "
            f"{duplicates} key values occur more than once",
            policy=policy.id,
            key="key",
        )


def _strategy_problem(strategy: str, column: Column) -> str | None:
    if strategy == "erase" and not column.nullable:
        return f"erase writes NULL but column {column.name!r} is NOT NULL"
    if strategy == "redact":
        if column.kind != "string":
            return f"redact writes text but column {column.name!r} is {column.sql_type}"
        if column.length is not None and column.length < len(REDACTED):
            return f"redact writes {REDACTED!r} but column {column.name!r} holds {column.length}"
    if strategy == "year" and column.kind not in ("date", "datetime"):
        return f"year needs a DATE or DATETIME column; {column.name!r} is {column.sql_type}"
    if strategy == "pseudonym":
        if column.kind != "string":
            return f"pseudonym writes text but column {column.name!r} is {column.sql_type}"
        if column.length is not None and column.length < PSEUDONYM_LENGTH:
            return (
                f"pseudonym writes {PSEUDONYM_LENGTH} characters but column "
                f"{column.name!r} holds {column.length}"
            )
    return None
