"""Review with four eyes: identities, rules from retention.yaml, rejections, exclusions as
holds, and the signed decision journal that attributes every decision."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.decide import approval
from retention.decide.approval import FourEyes
from retention.decide.identity import CLI_ISSUER, Identity, NotPermitted, os_user
from retention.errors import EXIT_INVALID, EXIT_SUCCESS, UsageError
from retention.state.database import decisions, decisions_head, metadata
from retention.testing import ScratchDatabase
from retention.workspace import Workspace
from tests.conftest import AS_OF
from tests.test_approval import PLAN_DAY, alumni, plan_row
from tests.test_cli import make_catalog, on
from tests.test_engine import ledger

IDP = "https://idp.example.org/realms/records"


def person(subject: str, name: str, role: str = "records-manager") -> Identity:
    return Identity(IDP, subject, name, role, True)  # type: ignore[arg-type]


RIIKKA = person("u-riikka", "Riikka Records")
MATTI = person("u-matti", "Matti Manager")
AINO = person("u-aino", "Aino Archivist", "archivist")
VIEWER = person("u-ville", "Ville Viewer", "viewer")
BOB = person("u-bob", "Bob Another")
MEMBERSHIP = "xamk-alumni/alumni-membership"


def rules(catalog: Path, text: str) -> None:
    """Append an ``approvals:`` block to the catalog's retention.yaml."""
    settings = catalog / "retention.yaml"
    settings.write_text(settings.read_text(encoding="utf-8") + text, encoding="utf-8")


def make_plan(ws: Workspace, by: Identity | None = None) -> str:
    from retention.decide.plan import make_plan as made

    return made(ws, ws.catalog.select(["*"]), PLAN_DAY, made_by=by).plan_id


# --- identities --------------------------------------------------------------------------------


def test_a_command_line_identity_is_the_os_account_and_the_typed_name() -> None:
    typed = Identity.cli("Riikka Records")
    assert (typed.issuer, typed.subject, typed.name) == (CLI_ISSUER, os_user(), "Riikka Records")
    assert typed.authenticated is False and typed.role is None
    assert "unauthenticated" in typed.label
    with pytest.raises(UsageError, match="cannot be authenticated"):
        Identity(CLI_ISSUER, "root", "root", None, True)
    with pytest.raises(UsageError, match="role 'boss'"):
        Identity(IDP, "x", "X", "boss", True)  # type: ignore[arg-type]


# --- four eyes ---------------------------------------------------------------------------------


def test_the_maker_cannot_approve_and_a_plan_needs_no_more_by_default(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Without rules one approval completes a plan, but never its maker's."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        same = person("u-riikka", "R. Records (another display name)")
        with pytest.raises(FourEyes, match="made plan"):
            api.approve(ws, plan_id, identity=same)
        with pytest.raises(NotPermitted):
            api.approve(ws, plan_id, identity=VIEWER)
        assert api.approval_status(ws, plan_id).state == "pending"
        assert api.decision_journal(ws, plan_id) == []  # refusals change nothing
        done = api.approve(ws, plan_id, identity=MATTI, comment="checked")
    assert done.state == "approved" and done.review is not None and done.review.complete
    assert done.approved_by == "Matti Manager"
    assert done.made_by == RIIKKA


def test_the_cli_maker_cannot_approve_under_the_same_name(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A plan made at the command line is the OS account's: that name typed with --by is
    refused, another name is recorded unauthenticated (a typed name proves nobody)."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws)
        with pytest.raises(FourEyes, match="made plan"):
            api.approve(ws, plan_id, by=os_user().upper())
        done = api.approve(ws, plan_id, by="Riikka Records")
    assert done.state == "approved"
    assert done.review is not None
    (given,) = done.review.approvals
    assert given.by.authenticated is False and given.by.subject == os_user()


def test_the_last_changer_cannot_approve_after_an_exclusion(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Excluding records changes the plan: its excluder needs another person's approval."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.exclude(ws, plan_id, identity=MATTI, policy="xamk-alumni/alumni-membership",
                    keys=[["1"]], reason="complaint pending")  # fmt: skip
        with pytest.raises(FourEyes, match="changed plan"):
            api.approve(ws, plan_id, identity=MATTI)
        status = api.approval_status(ws, plan_id)
        assert status.changed_by == MATTI
        done = api.approve(ws, plan_id, identity=AINO)
    assert done.state == "approved"


def test_an_exclusion_that_brings_a_plan_under_two_people_above_completes_it(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A second approval was needed only for the plan's size: an exclusion that brings it to
    the threshold approves it with the approval it has, from another person than the
    excluder. Left pending, it would wait with nothing missing for a third person (the
    approver cannot approve twice, the excluder not at all)."""
    rules(catalog, "approvals:\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        first = api.approve(ws, plan_id, identity=AINO, comment="checked")
        assert first.state == "pending" and first.review is not None
        assert first.review.missing == ("1 more approval from another person",)
        done = api.exclude(ws, plan_id, identity=MATTI, policy="xamk-alumni/alumni-membership",
                           keys=[["1"]], reason="complaint pending")  # fmt: skip
        status = done.plan
        assert status.state == "approved" and status.approved_by == "Aino Archivist"
        assert status.review is not None and status.review.required.people == 1
        assert status.review.missing == () and status.comment == "checked"
        assert status.expire == 7
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        certs = ledger(ws)
    assert outcome.exit_code == EXIT_SUCCESS and len(certs) == 7
    assert {a["subject"] for cert in certs for a in cert["approvals"]} == {"u-aino"}


def test_an_exclusion_that_leaves_a_plan_over_the_threshold_completes_nothing(
    catalog: Path, environ: dict[str, str]
) -> None:
    rules(catalog, "approvals:\n  two_people_above: 6\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=AINO)
        done = api.exclude(ws, plan_id, identity=MATTI, policy="xamk-alumni/alumni-membership",
                           keys=[["1"]], reason="complaint pending")  # fmt: skip
    assert done.plan.state == "pending" and done.plan.approved_at is None
    assert done.plan.review is not None
    assert done.plan.review.missing == ("1 more approval from another person",)


def test_an_approval_by_the_person_who_then_changes_the_plan_no_longer_counts(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Approving, then excluding records, makes the approver the plan's last changer: the
    change needs another person's eyes, so their approval stops counting, whatever its
    order; the plan says so, and another person's approval completes it."""
    rules(catalog, "approvals:\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=AINO)
        done = api.exclude(ws, plan_id, identity=AINO, policy="xamk-alumni/alumni-membership",
                           keys=[["1"]], reason="complaint pending")  # fmt: skip
        status = done.plan
        assert status.state == "pending" and status.review is not None
        assert status.review.required.people == 1 and not status.review.counted
        assert status.review.missing == (
            "1 more approval from another person (an approval by a person who changed the plan "
            "does not count)",
        )
        with pytest.raises(FourEyes):
            api.approve(ws, plan_id, identity=AINO)
        with pytest.raises(UsageError, match="awaits approval"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        second = api.approve(ws, plan_id, identity=MATTI)
        assert second.state == "approved" and second.approved_by == "Matti Manager"
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        certs = ledger(ws)
    assert outcome.exit_code == EXIT_SUCCESS and certs
    assert {a["subject"] for cert in certs for a in cert["approvals"]} == {"u-matti"}


def test_two_distinct_approvals_for_a_register(catalog: Path, environ: dict[str, str]) -> None:
    """A register under ``two_people_registers`` needs two people; the same person twice,
    or an approval typed at the command line, does not count."""
    rules(catalog, "approvals:\n  two_people_registers: [xamk-alumni]\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, AINO)
        with pytest.raises(FourEyes, match="unauthenticated"):
            api.approve(ws, plan_id, by="Riikka Records")
        first = api.approve(ws, plan_id, identity=RIIKKA)
        assert first.state == "pending" and first.review is not None
        assert first.review.missing == ("1 more approval from another person",)
        with pytest.raises(UsageError, match="awaits approval"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        with pytest.raises(FourEyes, match=r"approved plan .* already"):
            api.approve(ws, plan_id, identity=person("u-riikka", "Riikka again"))
        second = api.approve(ws, plan_id, identity=MATTI)
        assert second.state == "approved" and second.review is not None
        assert second.review.complete and second.review.missing == ()
        assert second.approved_by == "Riikka Records, Matti Manager"
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        certs = ledger(ws)
    assert outcome.exit_code == EXIT_SUCCESS and certs
    for cert in certs:
        assert [(a["subject"], a["authenticated"], a["role"]) for a in cert["approvals"]] == [
            ("u-riikka", True, "records-manager"), ("u-matti", True, "records-manager")
        ]  # fmt: skip
        assert {a["issuer"] for a in cert["approvals"]} == {IDP}


def test_two_approvals_above_a_number_of_records(catalog: Path, environ: dict[str, str]) -> None:
    rules(catalog, "approvals:\n  two_people_above: 5\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, AINO)
        status = api.approval_status(ws, plan_id)
    assert status.review is not None and status.review.required.people == 2
    assert (
        "approvals.two_people_above: 5 (the plan disposes of 8)" in status.review.required.because
    )


def test_an_archive_transfer_needs_an_archivist(catalog: Path, environ: dict[str, str]) -> None:
    policy = catalog / "policies" / "amkoodari.yaml"
    policy.write_text(
        policy.read_text(encoding="utf-8").replace("action: delete", "action: archive"),
        encoding="utf-8",
    )
    rules(catalog, "approvals:\n  archivist_for_archive: true\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, MATTI)
        with pytest.raises(FourEyes, match="archivist"):
            api.approve(ws, plan_id, identity=RIIKKA)
        with pytest.raises(FourEyes, match="unauthenticated"):
            api.approve(ws, plan_id, by="Aino Archivist")
        done = api.approve(ws, plan_id, identity=AINO)
    assert done.state == "approved" and done.review is not None
    assert done.review.required.archivist and done.review.complete


def test_rules_naming_an_unknown_register_are_refused(
    catalog: Path, environ: dict[str, str]
) -> None:
    from retention.errors import CatalogError

    rules(catalog, "approvals:\n  two_people_registers: [nosuch]\n")
    with pytest.raises(CatalogError, match=r"approvals\.two_people_registers"):
        Workspace.open(catalog, environ)
    settings = catalog / "retention.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("[nosuch]", "[xamk-alumni]\n  two_people: 2"),
        encoding="utf-8",
    )
    with pytest.raises(CatalogError, match="two_people"):
        Workspace.open(catalog, environ)


# --- rejection and exclusion -------------------------------------------------------------------


def test_a_rejected_plan_can_neither_be_approved_nor_run(
    catalog: Path, environ: dict[str, str]
) -> None:
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        with pytest.raises(UsageError, match="comment"):
            api.reject(ws, plan_id, identity=MATTI, comment=" ")
        rejected = api.reject(ws, plan_id, identity=MATTI, comment="wrong register")
        assert rejected.state == "rejected"
        with pytest.raises(UsageError, match="rejected"):
            api.approve(ws, plan_id, identity=AINO)
        with pytest.raises(UsageError, match="rejected"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        assert api.plans(ws, state="rejected")[0].plan_id == plan_id


def test_a_rejection_after_approval_stops_the_run(catalog: Path, environ: dict[str, str]) -> None:
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=MATTI)
        api.reject(ws, plan_id, identity=AINO, comment="not this month")
        with pytest.raises(UsageError, match="rejected"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        assert plan_row(ws, plan_id)["executed_run"] is None


def test_an_excluded_record_stays_through_the_run_as_a_hold(
    catalog: Path, environ: dict[str, str]
) -> None:
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        with pytest.raises(UsageError, match="record 1 is not in plan"):
            api.exclude(ws, plan_id, identity=MATTI, policy="xamk-alumni/alumni-membership",
                        keys=[["999"]], reason="x")  # fmt: skip
        done = api.exclude(ws, plan_id, identity=MATTI, policy="xamk-alumni/alumni-membership",
                           keys=[["1"]], reason="complaint pending")  # fmt: skip
        (hold,) = done.holds
        assert hold.plan_id == plan_id and json.loads(hold.record_key or "") == ["1"]
        assert hold.placer == MATTI.as_dict()
        assert [h.hold_id for h in api.holds(ws)] == [hold.hold_id]
        before = alumni(ws)[1]
        api.approve(ws, plan_id, identity=AINO)
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        after = alumni(ws)[1]
    membership = next(p for p in outcome.policies if p.policy == "alumni-membership")
    assert after == before and membership.counts.held == 1
    assert membership.disposed == 1


def test_an_excluded_record_is_listed_held_by_its_exclusion_in_every_view_of_the_plan(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """The plan a reviewer reads after an exclusion is the plan as it will run: the record is
    no longer among those to dispose of, in the listing, the counts or the report; releasing
    the exclusion does not put it back into this plan."""
    from retention.reports.formats import write_report
    from retention.reports.report import plan_rows

    name = "xamk-alumni/alumni-membership"
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)

        def listed(decision: str) -> list[object]:
            rows = plan_rows(ws, plan_id, "xamk-alumni", "alumni-membership", [decision])
            return [row["key"] for row, _secret in rows]

        def reported() -> dict[str, Any]:
            report = tmp_path / "plan.json"
            write_report(ws, plan_id, report)
            policies = json.loads(report.read_text(encoding="utf-8"))["policies"]
            return next(p for p in policies if p["policy"] == "alumni-membership")

        total, due = api.approval_status(ws, plan_id).expire, reported()["counts"]["expire"]
        assert "1" in listed("expire") and "1" not in listed("held") and due >= 1
        done = api.exclude(ws, plan_id, identity=MATTI, policy=name, keys=[["1"], ["1"]],
                           reason="complaint pending")  # fmt: skip
        (hold,) = done.holds  # the same record named twice is excluded once
        assert "1" not in listed("expire")
        (row,) = [r for r, _ in plan_rows(ws, plan_id, "xamk-alumni", "alumni-membership")
                  if r["key"] == "1"]  # fmt: skip
        assert (row["decision"], row["hold"], row["reason"]) == ("held", hold.hold_id, "excluded")
        assert api.approval_status(ws, plan_id).expire == total - 1
        with pytest.raises(UsageError, match="its decision: held"):
            api.exclude(ws, plan_id, identity=MATTI, policy=name, keys=[["1"]], reason="again")
        policy = reported()
        assert [r["decision"] for r in policy["records"] if r["key"] == "1"] == ["held"]
        assert policy["counts"]["expire"] == due - 1
        api.release_hold(ws, hold.hold_id, identity=MATTI)
        api.approve(ws, plan_id, identity=AINO)
        before = alumni(ws)[1]
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
        after = alumni(ws)[1]
    membership = next(p for p in outcome.policies if p.policy == "alumni-membership")
    assert after == before  # released or not, the approved plan keeps it
    assert membership.disposed == due - 1
    # Counted as the plan listed it, not among the records the plan never saw (one fell due
    # after the plan's day: tests/test_approval.py).
    assert (membership.held_in_plan, membership.unplanned) == (1, 1)


def test_two_exclusions_at_once_both_count(
    catalog: Path, environ: dict[str, str], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two reviewers excluding records of one policy at the same moment: each moves its
    record, and the policy's counts lose neither. The second waits for the first on the
    decision journal's head, which an exclusion now takes before anything else; the counts
    row is locked before it is read all the same, so two that met there would not lose one."""
    if backend == "sqlite":
        pytest.skip("SQLite lets one writer in: the second waits before it reads anything")
    from retention.decide import exclusion

    both = threading.Barrier(2)
    original = exclusion._count_held

    def in_step(*args: Any) -> None:
        # Both would have placed their holds and moved their rows; the other now waits on the
        # journal, so they cannot meet here any more.
        with contextlib.suppress(threading.BrokenBarrierError):
            both.wait(timeout=2)
        original(*args)

    monkeypatch.setattr(exclusion, "_count_held", in_step)
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
    failures: list[BaseException] = []

    def exclude(key: str) -> None:
        try:
            with Workspace.open(catalog, environ) as ws:
                api.exclude(ws, plan_id, identity=MATTI, policy="xamk-alumni/alumni-membership",
                            keys=[[key]], reason="complaint pending")  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=exclude, args=(k,)) for k in ("1", "6")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    with Workspace.open(catalog, environ) as ws:
        from retention.decide.plan import load_plan
        from retention.reports.report import plan_rows

        _header, rows = load_plan(ws, plan_id)
        (stored,) = [r for r in rows if r.policy == "alumni-membership"]
        counts = json.loads(stored.counts)
        listed = [r["decision"] for r, _ in
                  plan_rows(ws, plan_id, "xamk-alumni", "alumni-membership")]  # fmt: skip
    assert counts["expire"] == listed.count("expire")
    assert counts["held"] == listed.count("held") >= 2


def test_hold_preview_says_a_hold_covers_nothing_before_it_is_saved(
    catalog: Path, environ: dict[str, str]
) -> None:
    with Workspace.open(catalog, environ) as ws:
        nothing = api.hold_preview(ws, policy="xamk-alumni/alumni-membership", record=["999"])
        some = api.hold_preview(ws, policy="xamk-alumni/alumni-membership", record=["1"])
        assert nothing.covers_nothing and nothing.total == 0
        assert not some.covers_nothing and some.total == 1
        assert ws.holds.all() == []  # a preview stores nothing
        placed = api.place_hold(ws, reason="case 12", identity=RIIKKA,
                                policy="xamk-alumni/alumni-membership", record=["1"])  # fmt: skip
        with pytest.raises(NotPermitted):
            api.release_hold(ws, placed.hold.hold_id, identity=VIEWER)
        released = api.release_hold(ws, placed.hold.hold_id, identity=MATTI)
        kinds = [(e.kind, e.actor["subject"]) for e in api.decision_journal(ws)]
    assert released.releaser == MATTI.as_dict() and released.released_by == "Matti Manager"
    assert kinds == [("hold-placed", "u-riikka"), ("hold-released", "u-matti")]


# --- the decision journal ----------------------------------------------------------------------


def _journal_with_decisions(ws: Workspace) -> str:
    plan_id = make_plan(ws, RIIKKA)
    api.exclude(ws, plan_id, identity=MATTI, policy="xamk-alumni/alumni-membership",
                keys=[["1"]], reason="complaint pending")  # fmt: skip
    api.approve(ws, plan_id, identity=AINO, comment="ok")
    return plan_id


def test_verify_checks_the_journal(catalog: Path, environ: dict[str, str]) -> None:
    with Workspace.open(catalog, environ) as ws:
        _journal_with_decisions(ws)
        report = api.verify_decisions(ws)
    assert report.faults == [] and report.entries == 2
    assert report.kinds == {"exclusion": 1, "approval": 1}


def test_an_altered_journal_entry_fails_verification_by_name(
    catalog: Path, environ: dict[str, str]
) -> None:
    with Workspace.open(catalog, environ) as ws:
        plan_id = _journal_with_decisions(ws)
        with ws.state.begin() as conn:
            text = conn.scalar(sa.select(decisions.c.entry).where(decisions.c.seq == 2))
            forged = text.replace("Aino Archivist", "Someone Else")
            conn.execute(sa.update(decisions).where(decisions.c.seq == 2).values(entry=forged))
        report = api.verify_decisions(ws)
        with pytest.raises(UsageError, match="do not verify"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
    assert any(
        f.startswith(f"decision journal entry 2 (approval of plan {plan_id})") and "altered" in f
        for f in report.faults
    ), report.faults


def test_a_removed_journal_entry_fails_verification_by_name(
    catalog: Path, environ: dict[str, str]
) -> None:
    with Workspace.open(catalog, environ) as ws:
        _journal_with_decisions(ws)
        with ws.state.begin() as conn:
            conn.execute(sa.delete(decisions).where(decisions.c.seq == 1))
        middle = api.verify_decisions(ws)
        with ws.state.begin() as conn:
            conn.execute(sa.delete(decisions).where(decisions.c.seq == 2))
        tail = api.verify_decisions(ws)
    assert any("entry 1 missing before decision journal entry 2" in f for f in middle.faults)
    assert any("head records entry 2 but the journal ends at entry 0" in f for f in tail.faults)


def test_a_journal_row_resigned_with_another_key_fails(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Rewriting an entry with a fresh hash is not enough: the signature is the pinned key's."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from retention.evidence import signing
    from retention.evidence.certificate import canonical

    with Workspace.open(catalog, environ) as ws:
        _journal_with_decisions(ws)
        other = Ed25519PrivateKey.generate()
        with ws.state.begin() as conn:
            row = conn.execute(sa.select(decisions).where(decisions.c.seq == 2)).one()
            body = json.loads(row.entry)
            body["actor"]["name"] = "Someone Else"
            message = canonical(body)
            digest = hashlib.sha256(message).hexdigest()
            forged = {"entry": message.decode(), "hash": digest,
                      "signature": signing.sign(other, message)}  # fmt: skip
            conn.execute(sa.update(decisions).where(decisions.c.seq == 2).values(**forged))
            conn.execute(sa.update(decisions_head).values(last_hash=digest))
        report = api.verify_decisions(ws)
    assert any("entry 2" in f and "signature does not verify" in f for f in report.faults)


# --- the command line --------------------------------------------------------------------------


def test_cli_reject_and_four_eyes_refusals(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path)
    rules(catalog.root, "approvals:\n  two_people_registers: [amkoodari]\n")
    made = on(catalog, "plan", "--as-of", PLAN_DAY.isoformat())
    assert made.returncode == 0, made.stderr
    plan_id = re.search(r"\bP\d{8}-[0-9a-f]{8}\b", made.stdout).group(0)  # type: ignore[union-attr]
    mine = on(catalog, "approve", plan_id, "--by", os_user())
    assert mine.returncode == EXIT_INVALID and "made plan" in mine.stderr
    typed = on(catalog, "approve", plan_id, "--by", "Riikka Records")
    assert typed.returncode == EXIT_INVALID and "unauthenticated" in typed.stderr
    listed = on(catalog, "plans").stdout
    assert "\treview=0/2\t" in listed
    no_comment = on(catalog, "reject", plan_id, "--by", "Riikka Records")
    assert no_comment.returncode != 0
    rejected = on(catalog, "reject", plan_id, "--by", "Riikka Records", "--comment", "wrong")
    assert rejected.returncode == 0, rejected.stderr
    assert f"{plan_id}\trejected\t" in on(catalog, "plans").stdout
    run = on(catalog, "run", "--plan", plan_id)
    assert run.returncode == EXIT_INVALID and "rejected" in run.stderr


# --- exports and verification ------------------------------------------------------------------


def test_an_export_names_both_approvers_and_carries_their_signed_decisions(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """JSONL, CSV and a certificate of destruction: each certificate's ``approvals`` name both
    people, the manifest carries the journal entries that prove it, and verify checks them."""
    rules(catalog, "approvals:\n  two_people_registers: [xamk-alumni, amkoodari]\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, AINO)
        api.approve(ws, plan_id, identity=RIIKKA)
        api.approve(ws, plan_id, identity=MATTI)
        api.run_plan(ws, plan_id, as_of=AS_OF)
        manifests = {
            suffix: api.export(ws, tmp_path / f"out{suffix}") for suffix in (".jsonl", ".csv")
        }
        html = tmp_path / "destruction.html"
        api.export(ws, html)
        public = ws.public_key_path
        ledger_report = api.verify_ledger(ws)
    assert ledger_report.ok and ledger_report.decisions is not None
    assert ledger_report.decisions.entries == 2
    for suffix, manifest in manifests.items():
        kinds = [(e["kind"], e["actor"]["subject"]) for e in manifest["decisions"]]  # type: ignore[index, union-attr]
        assert kinds == [("approval", "u-riikka"), ("approval", "u-matti")]
        report = api.verify_file(tmp_path / f"out{suffix}", public)
        assert report.ok, report.faults
        assert report.decisions == 2
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    names = {tuple(a["name"] for a in json.loads(line)["approvals"]) for line in lines}
    assert names == {("Riikka Records", "Matti Manager")}
    document = html.read_text(encoding="utf-8")
    assert "Riikka Records, Matti Manager" in document
    assert api.verify_file(html, public).ok


def test_an_export_marks_an_unauthenticated_approval(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, AINO)
        api.approve(ws, plan_id, by="Riikka Records")
        api.run_plan(ws, plan_id, as_of=AS_OF)
        html = tmp_path / "destruction.html"
        api.export(ws, html)
        certs = ledger(ws)
        verified = api.verify_file(html, ws.public_key_path)
    assert verified.ok, verified.faults
    (approval,) = certs[0]["approvals"]
    assert approval["authenticated"] is False and approval["issuer"] == CLI_ISSUER
    assert approval["name"] == "Riikka Records" and approval["subject"] == os_user()
    assert "Riikka Records (unauthenticated)" in html.read_text(encoding="utf-8")


def test_cli_verify_reports_the_journal_and_fails_on_an_altered_entry(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path)
    made = on(catalog, "plan", "--as-of", PLAN_DAY.isoformat())
    plan_id = re.search(r"\bP\d{8}-[0-9a-f]{8}\b", made.stdout).group(0)  # type: ignore[union-attr]
    assert on(catalog, "approve", plan_id, "--by", "Riikka Records").returncode == 0
    verified = on(catalog, "verify")
    assert verified.returncode == 0, verified.stderr
    assert "decision journal: 1 entries (1 unauthenticated)" in verified.stdout
    engine = sa.create_engine(catalog.state_url)
    with engine.begin() as conn:
        conn.execute(sa.update(decisions).values(entry=sa.func.replace(
            decisions.c.entry, "Riikka Records", "Mallory")))  # fmt: skip
    engine.dispose()
    failed = on(catalog, "verify")
    assert failed.returncode != 0
    assert f"FAIL decision journal entry 1 (approval of plan {plan_id})" in failed.stdout


# --- migration 0010 ----------------------------------------------------------------------------


def test_migration_0010_keeps_a_populated_state_database(state_db: ScratchDatabase) -> None:
    """Rows written at 0008 stay as they were; the journal starts empty and verifies, and the
    first decision appended after the upgrade verifies too."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from retention.evidence import decisions as journal
    from retention.evidence import keyring
    from retention.state import migrations
    from tests.test_migrations import (
        added_columns_are_empty,
        differences,
        populate,
        snapshot,
        upgrade,
    )

    key = Ed25519PrivateKey.generate()
    engine = state_db.engine()
    try:
        upgrade(engine, migrations.BASELINE)
        upgrade(engine, "0008")
        populate(engine, key)
        before = snapshot(engine)
        upgrade(engine, migrations.HEAD)  # 0010 and any revision after it
        assert snapshot(engine) == before and added_columns_are_empty(engine)
        assert differences(engine, metadata) == []
        with engine.connect() as conn:
            assert conn.execute(sa.select(decisions_head)).one() == (1, 0, "0" * 64)
        assert journal.verify(engine).faults == []
        keyring.pin(engine, key)
        with engine.begin() as conn:
            journal.append(conn, key, "approval", Identity.cli("Riikka").as_dict(),
                           plan_id="P20261121-00000001", details={"comment": None})  # fmt: skip
        checked = journal.verify(engine)
        assert checked.faults == [] and checked.entries == 1
    finally:
        engine.dispose()


# --- review jobs and the command line ----------------------------------------------------------


def test_a_review_job_runs_a_plan_only_once_its_approvals_are_complete(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's review job skips a plan with one of two approvals, runs it with both."""
    from datetime import UTC, datetime, timedelta

    from freezegun import freeze_time

    from retention.scheduler import run_job

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    rules(catalog, "approvals:\n  two_people_registers: [amkoodari]\n")
    (catalog / "jobs" / "weekly.yaml").write_text(
        'id: weekly\nschedule: "0 7 * * 1"\npolicies: ["amkoodari/*"]\nmode: review\n'
    )
    with freeze_time(datetime(2026, 11, 22, 8, 0, tzinfo=UTC)) as clock:
        assert run_job(str(catalog), "weekly") == EXIT_SUCCESS
        with Workspace.open(catalog, environ) as ws:
            (first,) = api.plans(ws, job="weekly")
            assert first.made_by is not None and not first.made_by.authenticated
            api.approve(ws, first.plan_id, identity=RIIKKA)
        clock.tick(timedelta(seconds=1))
        assert run_job(str(catalog), "weekly") == EXIT_SUCCESS
        with Workspace.open(catalog, environ) as ws:
            assert ledger(ws) == []
            assert api.approval_status(ws, first.plan_id).state == "pending"
            api.approve(ws, first.plan_id, identity=MATTI)
        clock.tick(timedelta(seconds=1))
        assert run_job(str(catalog), "weekly") == EXIT_SUCCESS
        with Workspace.open(catalog, environ) as ws:
            certs = ledger(ws)
    assert certs and {c["plan_id"] for c in certs} == {first.plan_id}
    assert {tuple(a["name"] for a in c["approvals"]) for c in certs} == {
        ("Riikka Records", "Matti Manager")
    }


def test_cli_exclude_places_a_hold_listed_with_its_plan(tmp_path: Path) -> None:
    catalog = make_catalog(tmp_path)
    made = on(catalog, "plan", "--as-of", PLAN_DAY.isoformat())
    plan_id = re.search(r"\bP\d{8}-[0-9a-f]{8}\b", made.stdout).group(0)  # type: ignore[union-attr]
    excluded = on(catalog, "exclude", plan_id, "--policy", "xamk-alumni/customer-contracts",
                  "--record", "B,C-1", "--reason", "audit", "--by", "Eeva Excluder")  # fmt: skip
    assert excluded.returncode == 0, excluded.stderr
    assert "excluded 1 record(s)" in excluded.stdout
    mine = on(catalog, "approve", plan_id, "--by", "eeva  excluder")
    assert mine.returncode == EXIT_INVALID and "changed plan" in mine.stderr
    listed = on(catalog, "hold", "list", environ={"COLUMNS": "250"})
    assert f"(excluded from plan {plan_id})" in listed.stdout
    assert "(unauthenticated)" in listed.stdout
    unknown = on(catalog, "exclude", plan_id, "--policy", "xamk-alumni/customer-contracts",
                 "--record", "HQ,C-9", "--reason", "audit", "--by", "Eeva")  # fmt: skip
    assert unknown.returncode == EXIT_INVALID and "record 1 is not in plan" in unknown.stderr


def test_an_approval_written_into_the_plans_table_by_hand_is_no_approval(
    catalog: Path, environ: dict[str, str]
) -> None:
    from retention.state.database import plans

    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        with ws.state.begin() as conn:
            conn.execute(sa.update(plans).where(plans.c.plan_id == plan_id).values(
                approved_by="Mallory", approved_at=sa.func.current_timestamp()))  # fmt: skip
        with pytest.raises(UsageError, match="awaits approval"):
            api.run_plan(ws, plan_id, as_of=AS_OF)


def test_an_approval_with_no_maker_and_no_journal_entry_is_no_approval(
    catalog: Path, environ: dict[str, str]
) -> None:
    """An ``approved_by`` with no signed journal entry behind it — written by hand, with the
    maker blanked to pass for a plan from before the journal — neither runs the plan nor
    satisfies a four-eyes rule; the plan is pending until someone approves it for real."""
    from retention.state.database import plans

    rules(catalog, "approvals:\n  two_people_above: 0\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        with ws.state.begin() as conn:
            conn.execute(sa.update(plans).where(plans.c.plan_id == plan_id).values(
                made_by=None, approved_by="Nobody",
                approved_at=sa.func.current_timestamp()))  # fmt: skip
        status = api.approval_status(ws, plan_id)
        assert status.state == "pending" and status.review is not None
        assert status.review.missing == ("2 more approvals",)
        with pytest.raises(UsageError, match="awaits approval"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        assert ledger(ws) == []
        api.approve(ws, plan_id, identity=MATTI)
        assert api.approve(ws, plan_id, identity=AINO).state == "approved"
        api.run_plan(ws, plan_id, as_of=AS_OF)
        certs = ledger(ws)
    assert certs
    given = {(a["name"], a["authenticated"]) for c in certs for a in c["approvals"]}
    assert given == {("Matti Manager", True), ("Aino Archivist", True)}
    assert not any("Nobody" in c["approved_by"] for c in certs)


def test_a_rule_added_after_a_typed_approval_demands_signed_in_approvals(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A plan approved at the command line, then placed under a four-eyes rule, is pending
    again: it runs only once two signed-in people have approved it."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, AINO)
        assert api.approve(ws, plan_id, by="Riikka Records").state == "approved"
    rules(catalog, "approvals:\n  two_people_registers: [amkoodari]\n")
    with Workspace.open(catalog, environ) as ws:
        status = api.approval_status(ws, plan_id)
        assert status.state == "pending" and status.review is not None
        assert status.review.missing == ("2 more approvals",)
        with pytest.raises(UsageError, match="awaits approval"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        with pytest.raises(FourEyes, match="already"):  # the name typed before is hers
            api.approve(ws, plan_id, identity=RIIKKA)
        api.approve(ws, plan_id, identity=MATTI)
        done = api.approve(ws, plan_id, identity=person("u-kaisa", "Kaisa Keeper"))
        assert done.state == "approved"
        with pytest.raises(UsageError, match="already approved"):
            api.approve(ws, plan_id, identity=person("u-olli", "Olli"))
        outcome = api.run_plan(ws, plan_id, as_of=AS_OF)
    assert outcome.exit_code == EXIT_SUCCESS


# --- exclusions and four eyes: every changer is barred, typed exclusions prove nobody -------


def test_a_later_exclusion_does_not_revive_the_voided_approval_of_an_earlier_changer(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Aino approves, then changes the plan: her approval stops counting (the commit's own
    rule). Matti excluding another record must not make it count again."""
    rules(catalog, "approvals:\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=AINO)
        mine = api.exclude(ws, plan_id, identity=AINO, policy=MEMBERSHIP, keys=[["1"]],
                           reason="complaint pending")  # fmt: skip
        assert mine.plan.review is not None and not mine.plan.review.counted
        theirs = api.exclude(ws, plan_id, identity=MATTI, policy=MEMBERSHIP, keys=[["6"]],
                             reason="audit")  # fmt: skip
    assert theirs.plan.state == "pending", (theirs.plan.state, theirs.plan.approved_by)
    assert theirs.plan.approved_by is None
    assert theirs.plan.review is not None and not theirs.plan.review.counted


def test_a_typed_exclusion_is_refused_where_a_rule_needs_signed_in_people(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Whose approvals count depends on who changed the plan, and a typed name proves nobody:
    Aino, having approved a plan that needs two people, could otherwise exclude a record
    under any typed name and have her own approval complete it. Under a four-eyes rule a
    typed exclusion is refused, as a typed approval is, and changes nothing."""
    rules(catalog, "approvals:\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=AINO)
        with pytest.raises(approval.FourEyes, match="typed at the command line"):
            api.exclude(ws, plan_id, by="Somebody Else", policy=MEMBERSHIP, keys=[["1"]],
                        reason="complaint pending")  # fmt: skip
        status = api.approval_status(ws, plan_id)
        assert status.state == "pending" and status.changed_by is None and status.expire == 8
        assert api.holds(ws) == []
        api.exclude(ws, plan_id, identity=AINO, policy=MEMBERSHIP, keys=[["1"]],
                    reason="complaint pending")  # fmt: skip
        # Seven records now: one approval suffices, so a typed exclusion is taken; it does not
        # make Aino's approval of the plan she changed count again.
        done = api.exclude(ws, plan_id, by="Somebody Else", policy=MEMBERSHIP, keys=[["6"]],
                           reason="audit")  # fmt: skip
    assert done.plan.state == "pending" and done.plan.review is not None
    assert not done.plan.review.counted


def test_a_revived_archivist_approval_completes_an_archive_plan(
    catalog: Path, environ: dict[str, str]
) -> None:
    """archivist_for_archive: the archivist's own approval, voided by her exclusion, is
    revived by someone else's exclusion and satisfies the archivist requirement."""
    policy = catalog / "policies" / "amkoodari.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("action: delete",
                                                                 "action: archive"))  # fmt: skip
    rules(catalog, "approvals:\n  archivist_for_archive: true\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        first = api.approve(ws, plan_id, identity=AINO)
        assert first.review is not None and first.review.required.people == 2
        api.exclude(ws, plan_id, identity=AINO, policy=MEMBERSHIP, keys=[["1"]], reason="x")
        after = api.approval_status(ws, plan_id)
        assert after.review is not None and "an archivist's approval" in after.review.missing
        done = api.exclude(ws, plan_id, identity=MATTI, policy=MEMBERSHIP, keys=[["6"]],
                           reason="y")  # fmt: skip
    assert done.plan.state == "pending", (done.plan.state, done.plan.approved_by)


# --- approvals that do not count are not shown as approvals ------------------------------------


def _voided_then_approved(ws: Workspace) -> str:
    plan_id = make_plan(ws, RIIKKA)
    api.approve(ws, plan_id, identity=AINO)
    api.exclude(ws, plan_id, identity=AINO, policy=MEMBERSHIP, keys=[["1"]], reason="x")
    done = api.approve(ws, plan_id, identity=MATTI)
    assert done.approved_by == "Matti Manager" and done.state == "approved"
    return plan_id


def test_retention_plans_names_only_counted_approvers(
    catalog: Path, environ: dict[str, str]
) -> None:
    from retention.cli import _plan_fields

    rules(catalog, "approvals:\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        status = api.approval_status(ws, _voided_then_approved(ws))
    fields = _plan_fields(status, "UTC")
    assert "approved-by=Matti Manager" in fields, fields


def test_the_destruction_certificate_names_only_counted_approvers(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    rules(catalog, "approvals:\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = _voided_then_approved(ws)
        api.run_plan(ws, plan_id, as_of=AS_OF)
        certs = ledger(ws)
        html = tmp_path / "destruction.html"
        api.export(ws, html)
    assert {a["subject"] for c in certs for a in c["approvals"]} == {"u-matti"}  # holds
    document = html.read_text(encoding="utf-8")
    assert "Aino Archivist, Matti Manager" not in document


# --- an exclusion and an approval at once --------------------------------------------------------


def test_an_exclusion_and_a_completing_approval_at_once_do_not_deadlock(
    catalog: Path, environ: dict[str, str], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approval takes the journal's head, then the plan's row; an exclusion took the plan's
    row (mark_changed) before the head, and the two deadlocked (PostgreSQL, MariaDB). It now
    takes the head first: the approval waits for it, and neither fails."""
    if backend == "sqlite":
        pytest.skip("one writer")
    rules(catalog, "approvals:\n  two_people_registers: [xamk-alumni]\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=AINO)
    row_locked, head_locked = threading.Event(), threading.Event()
    original_changed, original_check = approval.mark_changed, approval._refuse_four_eyes

    def changed(*args: Any) -> None:
        original_changed(*args)
        row_locked.set()
        head_locked.wait(timeout=2)  # an approval holding the journal head would be waiting

    def check(*args: Any) -> None:  # approve(), after its journal entry took the head
        original_check(*args)
        head_locked.set()

    monkeypatch.setattr(approval, "mark_changed", changed)
    monkeypatch.setattr(approval, "_refuse_four_eyes", check)
    errors: dict[str, BaseException] = {}

    def excluding() -> None:
        try:
            with Workspace.open(catalog, environ) as ws:
                api.exclude(ws, plan_id, identity=BOB, policy=MEMBERSHIP, keys=[["1"]],
                            reason="x")  # fmt: skip
        except BaseException as exc:  # noqa: BLE001
            errors["exclude"] = exc

    def approving() -> None:
        row_locked.wait(timeout=10)
        try:
            with Workspace.open(catalog, environ) as ws:
                api.approve(ws, plan_id, identity=MATTI)
        except BaseException as exc:  # noqa: BLE001
            errors["approve"] = exc

    threads = [threading.Thread(target=excluding), threading.Thread(target=approving)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == {}
    with Workspace.open(catalog, environ) as ws:
        status = api.approval_status(ws, plan_id)
    assert status.state == "approved" and status.approved_by == "Aino Archivist, Matti Manager"


def test_an_exclusion_sees_an_approval_committed_before_it_took_the_journal(
    catalog: Path, environ: dict[str, str], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approval that commits after an exclusion began, before it takes the journal's head,
    is seen by it: the exclusion takes the head before it reads anything (MariaDB's snapshot
    is taken at a transaction's first read, which came before the lock and missed the
    approval, leaving the plan pending with nothing missing)."""
    from retention.decide import exclusion

    if backend == "sqlite":
        pytest.skip("one writer")
    rules(catalog, "approvals:\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
    original = exclusion.decisions.lock
    waiting, approved = threading.Event(), threading.Event()

    def lock(conn: Any) -> None:
        conn.execute(sa.select(1))  # the transaction has begun
        waiting.set()
        approved.wait(timeout=10)  # Aino's approval commits meanwhile
        original(conn)

    monkeypatch.setattr(exclusion.decisions, "lock", lock)
    errors: list[BaseException] = []

    def excluding() -> None:
        try:
            with Workspace.open(catalog, environ) as ws:
                api.exclude(ws, plan_id, identity=MATTI, policy=MEMBERSHIP, keys=[["1"]],
                            reason="x")  # fmt: skip
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=excluding)
    thread.start()
    assert waiting.wait(timeout=30)
    monkeypatch.setattr(exclusion.decisions, "lock", original)
    with Workspace.open(catalog, environ) as ws:
        api.approve(ws, plan_id, identity=AINO)
    approved.set()
    thread.join(timeout=60)
    assert errors == []
    with Workspace.open(catalog, environ) as ws:
        status = api.approval_status(ws, plan_id)
    assert status.review is not None
    assert status.state == "approved", (status.state, status.review.missing)


# --- the approval's own checks count only approvals that count ---------------------------------


def test_a_voided_archivist_approval_does_not_satisfy_the_pre_check(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A non-archivist's last approval is refused when the only archivist's approval does not
    count (she changed the plan), as it would be with no archivist's approval at all."""
    policy = catalog / "policies" / "amkoodari.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("action: delete",
                                                                 "action: archive"))  # fmt: skip
    rules(catalog, "approvals:\n  archivist_for_archive: true\n"
                   "  two_people_registers: [xamk-alumni]\n")  # fmt: skip
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=AINO)
        api.exclude(ws, plan_id, identity=AINO, policy=MEMBERSHIP, keys=[["1"]], reason="x")
        api.approve(ws, plan_id, identity=MATTI)  # not the last needed: fine either way
        with pytest.raises(approval.FourEyes, match="archivist"):
            api.approve(ws, plan_id, identity=BOB)


def test_the_changer_cannot_approve_after_a_typed_exclusion_takes_the_last_changer_slot(
    catalog: Path, environ: dict[str, str]
) -> None:
    """No rules (one approval, typed exclusions allowed): Matti excludes a record signed in,
    another at the command line under any typed name, and still may not approve: every
    changer is barred, not only the last."""
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.exclude(ws, plan_id, identity=MATTI, policy=MEMBERSHIP, keys=[["1"]], reason="x")
        api.exclude(ws, plan_id, by="Somebody Else", policy=MEMBERSHIP, keys=[["6"]], reason="y")
        with pytest.raises(approval.FourEyes, match="changed plan"):
            api.approve(ws, plan_id, identity=MATTI)


# --- an exclusion that completes a plan ----------------------------------------------------------


def test_a_completion_by_exclusion_cools_off_from_now_and_closes_the_plan(
    catalog: Path, environ: dict[str, str]
) -> None:
    settings = catalog / "retention.yaml"
    settings.write_text(settings.read_text() + "approval_cooling_off: 2 days\n")
    rules(catalog, "approvals:\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=AINO)
        done = api.exclude(ws, plan_id, identity=MATTI, policy=MEMBERSHIP, keys=[["1"]],
                           reason="x")  # fmt: skip
        assert done.plan.state == "cooling-off" and done.plan.approved_by == "Aino Archivist"
        with pytest.raises(UsageError, match="cooling off"):
            api.run_plan(ws, plan_id, as_of=AS_OF)
        with pytest.raises(UsageError, match="already approved"):
            api.approve(ws, plan_id, identity=BOB)
        with pytest.raises(UsageError, match="pending plan"):
            api.exclude(ws, plan_id, identity=BOB, policy=MEMBERSHIP, keys=[["6"]], reason="y")
        with pytest.raises(approval.FourEyes):
            api.approve(ws, make_plan(ws, RIIKKA), identity=RIIKKA)


def test_an_exclusion_never_completes_a_plan_still_needing_an_archivist(
    catalog: Path, environ: dict[str, str]
) -> None:
    policy = catalog / "policies" / "amkoodari.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("action: delete",
                                                                 "action: archive"))  # fmt: skip
    rules(catalog, "approvals:\n  archivist_for_archive: true\n  two_people_above: 7\n")
    with Workspace.open(catalog, environ) as ws:
        plan_id = make_plan(ws, RIIKKA)
        api.approve(ws, plan_id, identity=MATTI)
        done = api.exclude(ws, plan_id, identity=AINO, policy=MEMBERSHIP, keys=[["1"]],
                           reason="x")  # fmt: skip
        assert done.plan.state == "pending"
        assert done.plan.review is not None
        assert done.plan.review.missing == ("an archivist's approval",)
