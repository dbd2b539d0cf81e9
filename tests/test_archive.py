"""Archive hand-off: validated BagIt packages before anything is destroyed, on every backend."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import bagit
import pytest
import sqlalchemy as sa

from retention import api
from retention.enforce.archive import PackageWriter, packages_in, verify_packages
from retention.testing import ScratchDatabase
from retention.workspace import Workspace

AS_OF = dt.date(2026, 11, 22)

POLICIES = """\
register:
  id: karelia-winhapro
  name: WinhaPro
  controller: Karelia Ammattikorkeakoulu Oy
  source: "Tietosuojaseloste WinhaPro 2019"
  statutory: true
policies:
  - id: degree-certificates
    connector: src
    table: certificates
    key: certificate_no
    trigger: issued_on
    retain: permanent
    action: archive
    legal_basis: "Arkistolaki 831/1994"
  - id: former-students
    connector: src
    table: students
    key: [campus, student_number]
    secret: secret
    trigger: ended_on
    retain: P0D
    action: archive
    then: delete
    legal_basis: "Ammattikorkeakoululaki 932/2014"
"""


def build(url: str) -> None:
    md = sa.MetaData()
    certificates = sa.Table(
        "certificates", md,
        sa.Column("certificate_no", sa.String(20), primary_key=True),
        sa.Column("holder", sa.String(100)),
        sa.Column("degree", sa.String(100)),
        sa.Column("issued_on", sa.Date),
    )  # fmt: skip
    students = sa.Table(
        "students", md,
        sa.Column("campus", sa.String(10), primary_key=True),
        sa.Column("student_number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(100)),
        sa.Column("secret", sa.Integer, nullable=False),
        sa.Column("ended_on", sa.Date),
    )  # fmt: skip
    engine = sa.create_engine(url)
    md.create_all(engine)
    d = dt.date.fromisoformat
    with engine.begin() as conn:
        conn.execute(certificates.insert(), [
            {"certificate_no": "T-1", "holder": "Aino Virtanen", "degree": "Tradenomi",
             "issued_on": d("2019-06-14")},
            {"certificate_no": "T-2", "holder": "Eero Korhonen", "degree": "Insinööri",
             "issued_on": d("2026-11-23")},
            {"certificate_no": "T-3", "holder": "Lumi Mäkinen", "degree": "Sairaanhoitaja",
             "issued_on": None},
        ])  # fmt: skip
        conn.execute(students.insert(), [
            {"campus": "JNS", "student_number": 1, "name": "Onni", "secret": 0,
             "ended_on": d("2020-05-31")},
            {"campus": "JNS", "student_number": 2, "name": "Helmi", "secret": 1,
             "ended_on": d("2021-12-31")},
            {"campus": "JNS", "student_number": 3, "name": "Väinö", "secret": 0,
             "ended_on": None},
        ])  # fmt: skip
    engine.dispose()


@pytest.fixture
def catalog(tmp_path: Path, source_db: ScratchDatabase, state_db: ScratchDatabase) -> Path:
    build(source_db.url)
    root = tmp_path / "catalog"
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True)
    (root / "policies" / "karelia.yaml").write_text(POLICIES, encoding="utf-8")
    (root / "connectors" / "src.yaml").write_text(f"id: src\nkind: sql\nurl: {source_db.url}\n")
    (root / "retention.yaml").write_text(f"state: {state_db.url}\narchive: archive\n")
    api.init(root, {})
    return root


def rows(ws: Workspace, table: str) -> list[dict[str, Any]]:
    engine = ws.connector("src").engine  # type: ignore[attr-defined]
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key)).mappings()]


def test_permanent_records_are_archived_once_and_never_destroyed(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A permanent policy packages records whose trigger passed; the source keeps them all."""
    with Workspace.open(catalog, environ) as ws:
        before = rows(ws, "certificates")
        first = api.run(ws, policies=["degree-certificates"], as_of=AS_OF)
        second = api.run(ws, policies=["degree-certificates"], as_of=AS_OF)
        after = rows(ws, "certificates")
        certs = list(ws.ledger.iter_certificates())
    assert after == before
    outcome = first.policies[0]
    assert outcome.status == "completed" and outcome.disposed == 1
    package = catalog / "archive" / str(outcome.archived)
    assert verify_packages([package]) == {package: None}
    info = bagit.Bag(str(package)).info
    assert info["Register"] == "karelia-winhapro" and info["Run-Id"] == first.run_id
    assert info["Legal-Basis"] == "Arkistolaki 831/1994"
    assert info["Records-Plan"] == "Tietosuojaseloste WinhaPro 2019"
    stored = [json.loads(p.read_text()) for p in (package / "data" / "records").iterdir()]
    assert [r["key"] for r in stored] == [["T-1"]]
    assert stored[0]["values"]["degree"] == "Tradenomi"
    assert len(certs) == 1 and certs[0]["action"] == "archived" and certs[0]["verified"]
    assert certs[0]["archive"]["package"] == outcome.archived
    assert len(certs[0]["archive"]["sha256"]) == 64
    # Already in the archive: retained, not archived again.
    again = second.policies[0]
    assert again.disposed == 0 and again.archived is None and again.counts.retain == 3
    assert len(packages_in(catalog / "archive")) == 1


def test_archive_then_delete_removes_rows_only_after_a_valid_package(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Due rows are packaged, the package validates, then they are deleted and certified."""
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, policies=["former-students"], as_of=AS_OF).policies[0]
        left = rows(ws, "students")
        certs = list(ws.ledger.iter_certificates())
        assert api.verify_ledger(ws).ok
    assert [r["student_number"] for r in left] == [3]
    assert outcome.disposed == 2
    assert {c["action"] for c in certs} == {"deleted"}
    assert all(c["archive"]["package"] == outcome.archived for c in certs)
    secret = [c for c in certs if c["trigger_date"] is None]
    assert len(secret) == 1  # the secret student's certificate carries no dates
    package = catalog / "archive" / str(outcome.archived)
    names = {json.loads(p.read_text())["values"]["name"]
             for p in (package / "data" / "records").iterdir()}  # fmt: skip
    assert names == {"Onni", "Helmi"}


def test_a_package_that_fails_validation_blocks_the_delete(
    catalog: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corrupted package stops the policy: nothing deleted, no certificate, no package left."""

    def corrupt(self: PackageWriter, path: Path) -> None:
        victim = next((path / "data" / "records").iterdir())
        victim.write_text(victim.read_text() + " ")

    monkeypatch.setattr(PackageWriter, "_before_validation", corrupt)
    with Workspace.open(catalog, environ) as ws:
        before = rows(ws, "students")
        outcome = api.run(ws, policies=["former-students"], as_of=AS_OF)
        after = rows(ws, "students")
        certs = list(ws.ledger.iter_certificates())
    result = outcome.policies[0]
    assert result.status == "failed" and "did not validate" in (result.message or "")
    assert outcome.exit_code == 4
    assert after == before and certs == []
    assert packages_in(catalog / "archive") == []
    assert list((catalog / "archive").iterdir()) == []


def test_archive_verify_detects_a_changed_file_later(
    catalog: Path, environ: dict[str, str]
) -> None:
    """Fixity: a package altered after it was written no longer validates."""
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, policies=["degree-certificates"], as_of=AS_OF).policies[0]
    package = catalog / "archive" / str(outcome.archived)
    assert verify_packages([package])[package] is None
    record = next((package / "data" / "records").iterdir())
    record.write_text(record.read_text().replace("Tradenomi", "Tohtori"))
    assert verify_packages([package])[package] is not None


def test_archive_verify_holds_packages_to_their_certificates(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A package re-bagged without one record validates as a bag, but not against the ledger."""
    with Workspace.open(catalog, environ) as ws:
        outcome = api.run(ws, policies=["former-students"], as_of=AS_OF).policies[0]
        package = catalog / "archive" / str(outcome.archived)
        assert api.verify_archive(ws) == {package: []}
        victim = next((package / "data" / "records").iterdir())
        victim.unlink()
        bag = bagit.Bag(str(package))
        bag.save(manifests=True)  # a consistent bag again, one record short
        assert verify_packages([package])[package] is None
        faults = api.verify_archive(ws)[package]
    assert any("tag manifest is not the one the certificates recorded" in f for f in faults)
    assert any("is missing" in f for f in faults)


def test_a_damaged_package_is_reported_without_its_files_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file in a package keeps the share's name (a person's, often): a failed fixity check
    names it by its record's reference, in the result and in the log."""
    ref = "ab" * 32
    package = tmp_path / "package"
    (package / "files" / ref).mkdir(parents=True)
    (package / "files" / ref / "Matti Meikäläinen 010190-900A.pdf").write_bytes(b"%PDF-1.4")
    bagit.make_bag(str(package), checksums=["sha512"])
    (package / "data" / "files" / ref / "Matti Meikäläinen 010190-900A.pdf").write_bytes(
        b"%PDF-1.5"
    )
    with caplog.at_level("DEBUG"):
        fault = verify_packages([package])[package]
    assert fault is not None and ref in fault
    for shown in (fault, caplog.text):
        assert "Matti" not in shown and "010190-900A" not in shown
