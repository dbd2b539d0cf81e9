"""The dry run's per-record shortcuts give exactly what the rules and encoders they stand in
for give: a page decided at once, keys written by orjson, JSON report lines put together
from their values' texts."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from retention import api
from retention.decide.plan import Decider
from retention.pseudonym import Secret, key_json, key_text
from retention.reports import report
from retention.workspace import Workspace
from tests.conftest import AS_OF

_EVERY_CHARACTER = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)


def test_key_json_is_the_reference_encoders_text() -> None:
    reference = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    keys = [
        (_EVERY_CHARACTER,),
        *((chr(c),) for c in range(0x80)),
        ('a "quoted" \\ key', "ä€𝄞\u2028"),
        ("lone \ud800 surrogate",),
        (1,),
        (-7, "x"),
        (True,),
        (date(2020, 1, 2), Decimal("1.50")),
        (b"\x00\xff",),
    ]
    for key in keys:
        assert key_json(key) == reference.encode([key_text(v) for v in key])
    assert key_json(("HQ", "C-1")) == '["HQ","C-1"]'


def test_record_refs_of_a_page_are_each_records_reference() -> None:
    secret = Secret(b"k" * 40)
    keys = [key_json((i,)) for i in range(5)] + [key_json(("ä", "b"))]
    refs = secret.record_refs_of("crm", "alumni", keys)
    assert refs == [secret.record_ref_of("crm", "alumni", k) for k in keys]
    assert len(set(refs)) == len(keys)
    assert secret.record_refs_of("crm", "other", keys[:1]) != refs[:1]


def test_report_value_text_is_the_report_encoders() -> None:
    for value in (_EVERY_CHARACTER, *map(chr, range(0x80)), None, ["a", "b"], "2020-01-01"):
        assert report._json_text(value) == report._ENCODER.encode(value)


def test_a_page_is_decided_as_each_record_would_be_alone(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Held, done, expire and secret records across single and composite keys."""
    with Workspace.open(catalog, environ) as ws:
        hold = ws.holds.place(
            reason="audit", placed_by="rm", secret=ws.secret,
            register="xamk-alumni", policy="alumni-membership", record=["1"],
        )  # fmt: skip
        api.run(ws, as_of=AS_OF, policies=["xamk-alumni/alumni-membership"])
        seen = decide_every_page(ws)  # a hold in force: the pages take _decide for due records
        ws.holds.release(hold.hold_id, "rm")
        seen |= decide_every_page(ws)  # none: done and expire are decided inline
    assert {("held", False, True), ("done", False, True), ("done", True, True)} <= seen
    assert {("expire", False, False), ("done", False, False), ("done", True, False)} <= seen


def decide_every_page(ws: Workspace) -> set[tuple[str, bool, bool]]:
    """Each page's decisions checked against :meth:`Decider._decide` of the record alone."""
    seen = set()
    for bound in ws.catalog.policies:
        connector = ws.connector(bound.policy.connector)
        decider = Decider(bound, connector, ws.secret, ws.ledger, ws.holds.active(AS_OF),
                          AS_OF, 2)  # fmt: skip
        for page in decider.batches():
            refs = [d.ref for d in page]
            done = ws.ledger.done(bound.register.id, bound.policy.id, refs)
            for decided in page:
                assert decided == decider._decide(decided.record, decided.ref, decided.key, done)
                seen.add((decided.decision, decided.secret, bool(decider.holds)))
    return seen


def test_json_report_lines_are_the_encoded_report_rows(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    with Workspace.open(catalog, environ) as ws:
        hold = ws.holds.place(
            reason="audit", placed_by="rm", secret=ws.secret,
            register="xamk-alumni", policy="alumni-membership", record=["2"],
        )  # fmt: skip
        plan, path = api.plan(ws, as_of=AS_OF, report=tmp_path / "plan.json")
        lines = []
        for p in plan.policies:
            pages = report._pages(ws, plan.plan_id, p.register, p.policy)
            mine = [line for page in pages for line in report._json_lines(page)]
            rows = report.records(ws, plan.plan_id, p.register, p.policy)
            assert mine == [report._ENCODER.encode(r) for r in rows]
            lines += mine
    assert path is not None
    text = path.read_text(encoding="utf-8")
    assert all(f"\n  {line}" in text for line in lines)
    assert f'"hold": "{hold.hold_id}"' in text  # a held record
    assert '"key": "6", "decision": "expire", "trigger_date": null' in text  # a secret person
    assert '"key": ["B", "C-1"]' in text  # a composite key


def test_the_collector_is_back_on_after_a_plan_and_left_off_when_it_was_off() -> None:
    import gc

    from retention.decide.plan import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused() as page_done:
        assert not gc.isenabled()
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert page_done() >= 1  # the page's cycle is collected all the same
        raise RuntimeError("a failing page")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
