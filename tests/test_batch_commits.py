"""Two commits a batch: the certifying transaction carries the next batch's intents.

A batch used to cost three committed transactions (its intents; the source change; its
certificates). The certificates of one batch and the intents of the next now share one
state transaction, so B batches cost 2B + 1. Crash safety holds at the new boundary: a
run killed after that commit leaves the one batch certified and the next one's intents,
and the next run drops those (nothing was changed) and disposes of the records itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from retention import api
from retention.state.database import intent_batches
from retention.workspace import Workspace
from tests.conftest import AS_OF
from tests.test_crash import disposed_and_surviving, kill_at, lease_runs_out

ALUMNI = "xamk-alumni/alumni-membership"
DISPOSAL = re.compile(r"\b(intent_batches|certificates|alumni)\b", re.IGNORECASE)
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@contextmanager
def disposal_commits() -> Iterator[list[int]]:
    """Count the committed transactions, on any engine, that wrote intents, certificates
    or the alumni table (lock renewals and run bookkeeping are not a batch's cost)."""
    counted = [0]

    def wrote(conn: sa.Connection, cursor: Any, statement: str, *_: Any) -> None:
        if WRITE.match(statement) and DISPOSAL.search(statement):
            conn.info["disposal"] = True

    def committed(conn: sa.Connection) -> None:
        if conn.info.pop("disposal", False):
            counted[0] += 1

    def rolled_back(conn: sa.Connection) -> None:
        conn.info.pop("disposal", None)

    sa.event.listen(sa.Engine, "before_cursor_execute", wrote)
    sa.event.listen(sa.Engine, "commit", committed)
    sa.event.listen(sa.Engine, "rollback", rolled_back)
    try:
        yield counted
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", wrote)
        sa.event.remove(sa.Engine, "commit", committed)
        sa.event.remove(sa.Engine, "rollback", rolled_back)


def fixed_batches(catalog: Path, size: int) -> None:
    settings = catalog / "retention.yaml"
    text = settings.read_text(encoding="utf-8").replace("batch_size: 2", f"batch_size: {size}")
    settings.write_text(text + "batches: {target_seconds: null}\n", encoding="utf-8")


def test_b_batches_cost_two_b_plus_one_commits(catalog: Path, environ: dict[str, str]) -> None:
    """The alumni policy's three due records one to a batch: three source transactions
    and four state ones (intents; certificates + next intents, twice; certificates),
    where each batch had three before."""
    fixed_batches(catalog, 1)
    with Workspace.open(catalog, environ) as ws, disposal_commits() as commits:
        outcome = api.run(ws, policies=[ALUMNI], as_of=AS_OF)
    assert outcome.exit_code == 0
    assert outcome.disposed == 3
    assert commits[0] == 2 * 3 + 1


def test_killed_after_the_commit_that_carries_the_next_intents(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Killed before the second batch's change, after the commit that certified the first
    and wrote the second's intents: the first batch has its certificates, the second only
    its intents; the next run drops those intents, disposes of the rest and every
    disposed record has exactly one certificate."""
    fixed_batches(catalog, 2)
    kill_at(catalog, "before-source-commit", 2)
    with Workspace.open(catalog, environ) as ws:
        lease_runs_out(ws)
        certified = {c["record_ref"] for c in ws.ledger.iter_certificates()}
        with ws.state.connect() as conn:
            waiting = conn.execute(sa.select(intent_batches.c.records)).scalars().all()
        disposed_midway, _ = disposed_and_surviving(ws)
        assert len(certified) == 2 and certified == disposed_midway
        assert waiting == [1]  # the second batch's one record, not yet changed
        outcome = api.run(ws, as_of=AS_OF)
        refs = [c["record_ref"] for c in ws.ledger.iter_certificates()]
        disposed, surviving = disposed_and_surviving(ws)
        with ws.state.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(intent_batches)).scalar()
        report = api.verify_ledger(ws)
    assert outcome.exit_code == 0
    assert outcome.reconciled == 0  # the intent's record was not changed: no certificate
    assert sorted(refs) == sorted(disposed) and len(disposed) == 9
    assert not set(refs) & surviving
    assert left == 0
    assert report.ok, report.faults
