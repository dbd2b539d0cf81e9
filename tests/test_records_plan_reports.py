"""The "records plan" section in ``retention check`` and in the plan reports (JSON, HTML in
English and Finnish), on the demo built from the shipped catalog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from retention.catalog.loading import load_catalog
from retention.catalog.plan_drift import plan_drift

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-11-22"
TODAY = date(2026, 11, 22)


def _retention(
    *args: str | Path, cwd: Path, secret: str | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    if secret is not None:
        environ["RETENTION_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "retention", *map(str, args)], cwd=cwd, env=environ,
        capture_output=True, text=True, encoding="utf-8", timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("rp") / "demo"
    proc = _retention("demo", "--workdir", workdir, "--as-of", DAY, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return workdir, proc.stdout


def test_demo_shows_the_drift_section(demo: tuple[Path, str]) -> None:
    """The demo prints coverage, the unenforced record type and the one stated deviation."""
    _, stdout = demo
    assert "records plan: 5 plans (JHS 191); 15 of 16 record types" in stdout
    assert "not enforced: xamk-tos 07.03 Merkintä – Suoramarkkinointikielto" in stdout
    assert "deviation: xamk-alumni/customer-contracts: retain P10Y is longer than" in stdout


def test_reports_carry_the_section(demo: tuple[Path, str]) -> None:
    """plan.json has it as data; plan.html and plan.fi.html show it in their language."""
    workdir, _ = demo
    doc = json.loads((workdir / "reports" / "plan.json").read_text(encoding="utf-8"))
    section = doc["records_plan"]
    assert [p["tos"] for p in section["plans"]] == [
        "xamk-tos", "amkoodari-tos", "jamk-tos", "sedu-tos", "karelia-tos"]  # fmt: skip
    (finding,) = section["findings"]
    assert finding["severity"] == "deviation" and finding["deviation"].startswith("Kept 10 years")
    english = (workdir / "reports" / "plan.html").read_text(encoding="utf-8")
    finnish = (workdir / "reports" / "plan.fi.html").read_text(encoding="utf-8")
    assert 'id="records-plan"' in english and "Records-management plan" in english
    assert "15 of 16 record types holding personal data" in english
    assert "Tiedonohjaussuunnitelma" in finnish and "Perusteltu poikkeama" in finnish
    assert "säilytysaika P10Y on pidempi kuin suunnitelman P6Y" in finnish
    assert "Kept 10 years" in finnish  # the reason stays as its author wrote it


def test_check_reports_and_refuses_a_contradiction(demo: tuple[Path, str]) -> None:
    """check prints the section and passes; a policy shortened below its plan without a
    deviation makes check exit 2 naming file, policy and the plan's period."""
    workdir, _ = demo
    secret = (workdir / ".demo-secret").read_text(encoding="utf-8").strip()
    proc = _retention("check", "--catalog", workdir, cwd=workdir, secret=secret)
    assert proc.returncode == 0, proc.stderr
    assert "records plan:" in proc.stdout and "coverage: 15 of 16" in proc.stdout
    as_json = _retention("check", "--json", "--catalog", workdir, cwd=workdir, secret=secret)
    summary = json.loads(as_json.stdout.splitlines()[-1])
    assert summary["records_plan"]["coverage"]["covered"] == 15
    policy = workdir / "policies" / "002-jamk-mobility.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("retain: P10Y", "retain: P5Y"),
                      encoding="utf-8")  # fmt: skip
    proc = _retention("check", "--catalog", workdir, cwd=workdir, secret=secret)
    assert proc.returncode == 2
    assert "policies/002-jamk-mobility.yaml:" in proc.stderr
    assert "policy mobility-records" in proc.stderr
    assert "retain P5Y is shorter than the plan's P10Y" in proc.stderr


def test_the_shipped_catalog_states_one_deviation(tmp_path: Path) -> None:
    """The shipped catalog cites its plans: one stated deviation, one record type left to
    a person, no error."""
    root = tmp_path / "shipped"
    shutil.copytree(ROOT / "retention" / "demo" / "shipped", root, symlinks=False)
    drift = plan_drift(load_catalog(root), TODAY)
    assert drift is not None and drift.errors == []
    (deviation,) = drift.findings
    assert deviation.policy == "xamk-alumni/customer-contracts"
    assert deviation.severity == "deviation" and "P6Y" in deviation.message
    assert (drift.personal_record_types, drift.covered) == (16, 15)
    assert [u.record_type for u in drift.uncovered] == ["xamk-marketing-ban"]


def test_certificates_cite_the_plan_decision(demo: tuple[Path, str]) -> None:
    """Each certificate carries one records_plan key: class code, record type, TOS id,
    version and the plan's retention; the CSV export keeps it and still verifies."""
    workdir, _ = demo
    reports = workdir / "reports"
    certificates = [
        json.loads(line)
        for line in (reports / "certificates.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    mobility = [c for c in certificates if c["policy"] == "mobility-records"]
    assert mobility
    expected = {
        "class_code": "05.04",
        "record_type": "jamk-mobility-case",
        "tos": "jamk-tos",
        "version": "2019.1",
        "retention": "P10Y",
    }
    assert all(c["records_plan"] == expected for c in mobility)
    assert all("records_plan" in c for c in certificates)  # every shipped policy cites
    secret = (workdir / ".demo-secret").read_text(encoding="utf-8").strip()
    for name in ("certificates.csv", "certificates.jsonl"):
        proc = _retention("verify", reports / name, "--catalog", workdir, cwd=workdir,
                          secret=secret)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_certificate_of_destruction_groups_by_plan_class(demo: tuple[Path, str]) -> None:
    """The certificate of destruction lists disposals under their TOS class, in class order,
    each policy under the class its certificates cite (a hävitysluettelo)."""
    import re

    workdir, _ = demo
    page = (workdir / "reports" / "certificates.html").read_text(encoding="utf-8")
    rows = re.findall(r'data-plan-class="([^"]*)"|data-policy="([^"]*)"', page)
    order = [("class", a) if a else ("policy", b) for a, b in rows]
    classes = [name for kind, name in order if kind == "class"]
    assert classes[0].endswith("· 02.05") and "TOS jamk-tos 2019.1 · 05.04" in classes
    codes = [c.rsplit("· ", 1)[1] for c in classes]
    assert codes == sorted(codes)
    at = order.index(("class", "TOS jamk-tos 2019.1 · 05.04"))
    assert order[at + 1] == ("policy", "jamk-mobility/mobility-records")
    assert "Records-management plan class" in page


def test_a_certificate_citing_nothing_is_a_fault() -> None:
    """A records_plan key that names no class and record type is a verification fault."""
    from retention.evidence.certificate import optional_faults

    assert optional_faults({"records_plan": {"class_code": "05.04", "record_type": "x"}}) == []
    assert optional_faults({"records_plan": "05.04"}) == [
        "records_plan does not name a class code and record type"
    ]
