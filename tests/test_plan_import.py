"""``retention plan-import``: skeletons from the plan; re-imports keep what people bound."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retention.catalog.loading import load_catalog
from retention.catalog.plan_import import import_plan
from retention.catalog.records_plan import load_records_plan

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "records-plans"


def _catalog(tmp_path: Path, plan: str = "jamk.xml") -> Path:
    """An empty catalog with the plan copied into it."""
    root = tmp_path / "catalog"
    for folder in ("policies", "connectors", "jobs", "records-plans"):
        (root / folder).mkdir(parents=True)
    shutil.copy(SHIPPED / plan, root / "records-plans" / plan)
    (root / "connectors" / "mobility.yaml").write_text(
        "id: mobility\nkind: sql\nurl: sqlite:///mobility.db\n", encoding="utf-8"
    )
    return root


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retention", *args], cwd=cwd, capture_output=True, text=True,
        check=False,
    )  # fmt: skip


def _newer(root: Path, **replacements: str) -> None:
    path = root / "records-plans" / "jamk.xml"
    text = path.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def test_one_file_per_class_and_each_field(tmp_path: Path) -> None:
    """Each class gets a file; each record type with personal data a disabled policy whose
    retain, start-event comment and records_plan block come from the plan."""
    root = _catalog(tmp_path)
    proc = _cli("plan-import", "records-plans/jamk.xml", cwd=root)
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in (root / "policies").glob("*.yaml"))
    assert files == ["05.01-opintorekisteri.yaml", "05.04-kansainvalinen-liikkuvuus.yaml"]
    text = (root / "policies" / files[1]).read_text(encoding="utf-8")
    assert "retain: P10Y  # counted from (TOS): Liikkuvuusasian päättymisvuoden loppu" in text
    doc = yaml.safe_load(text)
    assert doc["register"]["records_plan"] == "records-plans/jamk.xml"
    (policy,) = doc["policies"]
    assert policy["enabled"] is False and policy["action"] == "delete"
    assert "connector" not in policy and "table" not in policy and "trigger" not in policy
    assert policy["records_plan"] == {
        "class_code": "05.04", "record_type": "jamk-mobility-case", "tos": "jamk-tos",
        "version": "2019.1", "approved_on": "2019-01-31", "retention": "P10Y",
        "start_event": "Liikkuvuusasian päättymisvuoden loppu",
        "retention_reason": "JAMKin tiedonohjaussuunnitelma; liikkuvuusjaksojen rahoittajien "
        "(mm. Euroopan komissio) ohjeet",
        "personal_data": 3, "publicity": 2,
    }  # fmt: skip
    permanent = yaml.safe_load((root / "policies" / files[0]).read_text(encoding="utf-8"))
    assert permanent["policies"][0]["retain"] == "permanent"
    assert permanent["policies"][0]["action"] == "archive"
    catalog = load_catalog(root)  # the skeletons load: disabled, unbound, listed
    assert catalog.policies == ()
    assert sorted(u.policy.missing() == ["connector", "table", "trigger"] for u in catalog.unbound)
    assert {u.policy.records_plan.record_type for u in catalog.unbound} == {
        "jamk-mobility-case", "jamk-transcript"}  # fmt: skip
    assert "new policy (disabled until bound)" in proc.stdout


def test_secrecy_fields_and_no_personal_data(tmp_path: Path) -> None:
    """Secrecy period and reason are carried; a record type without personal data gets no
    policy."""
    root = _catalog(tmp_path, "karelia.xml")
    path = root / "records-plans" / "karelia.xml"
    text = path.read_text(encoding="utf-8")
    certificate = text.index('tos:id="karelia-degree-certificate"')
    head, tail = text[:certificate], text[certificate:]
    tail = tail.replace("<tos:HenkilotietoluonneKoodi>2<", "<tos:HenkilotietoluonneKoodi>1<", 1)
    path.write_text(head + tail, encoding="utf-8")
    plan = load_records_plan(path, "records-plans/karelia.xml")
    result = import_plan(plan, root / "policies", "records-plans/karelia.xml")
    assert result.skipped == 1 and len(result.created) == 1
    (written,) = (root / "policies").glob("*.yaml")
    block = yaml.safe_load(written.read_text(encoding="utf-8"))["policies"][0]["records_plan"]
    assert block["secrecy_years"] == 50
    assert block["secrecy_reason"] == "JulkL (621/1999) 24.1 § 31 kohta"
    assert block["personal_data"] == 3 and block["publicity"] == 3


def _bind(root: Path) -> Path:
    """What a person does: bind the mobility policy, enable it, and comment on it."""
    path = root / "policies" / "05.04-kansainvalinen-liikkuvuus.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "    enabled: false\n",
        "    enabled: true\n"
        "    # bound by the records manager, 2026-12-01\n"
        "    connector: mobility\n    table: mobility_cases\n    key: [campus, case_no]\n"
        "    trigger: closed_on\n    count_from: year_end\n",
    )
    path.write_text(text, encoding="utf-8")
    return path


def test_reimport_keeps_bindings_and_says_what_changed(tmp_path: Path) -> None:
    """A newer plan changes retain and the records_plan block; connector, table, key,
    trigger, enabled, count_from and the person's comment stay exactly as they were."""
    root = _catalog(tmp_path)
    assert _cli("plan-import", "records-plans/jamk.xml", cwd=root).returncode == 0
    path = _bind(root)
    _newer(root, **{
        "<tos:TosVersio>2019.1<": "<tos:TosVersio>2024.1<",
        "<tos:SailytysajanPituusArvo>10<": "<tos:SailytysajanPituusArvo>12<",
        "Liikkuvuusasian päättymisvuoden loppu": "Apurahan loppuraportin hyväksyminen",
    })  # fmt: skip
    proc = _cli("plan-import", "records-plans/jamk.xml", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "retain P10Y -> P12Y" in proc.stdout
    assert "records_plan.version 2019.1 -> 2024.1" in proc.stdout
    text = path.read_text(encoding="utf-8")
    assert "# bound by the records manager, 2026-12-01" in text
    assert re.search(r"retain: P12Y +# counted from \(TOS\): Apurahan loppuraportin hyv", text)
    policy = yaml.safe_load(text)["policies"][0]
    assert policy["enabled"] is True and policy["connector"] == "mobility"
    assert policy["key"] == ["campus", "case_no"] and policy["trigger"] == "closed_on"
    assert policy["count_from"] == "year_end"
    assert policy["records_plan"]["version"] == "2024.1"
    again = _cli("plan-import", "records-plans/jamk.xml", cwd=root)
    assert "the policies already follow this plan" in again.stdout


def test_reimport_keeps_a_stated_deviation(tmp_path: Path) -> None:
    """A policy that states a deviation keeps its retain; the import says so."""
    root = _catalog(tmp_path)
    assert _cli("plan-import", "records-plans/jamk.xml", cwd=root).returncode == 0
    path = _bind(root)
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "    retain: P10Y", '    deviation: "EU funder requires 15 years"\n    retain: P15Y'
        ),
        encoding="utf-8",
    )
    _newer(root, **{"<tos:SailytysajanPituusArvo>10<": "<tos:SailytysajanPituusArvo>12<"})
    proc = _cli("plan-import", "records-plans/jamk.xml", cwd=root)
    assert "retain P15Y kept (deviation: EU funder requires 15 years); the plan says P12Y" in (
        proc.stdout.replace("\n", " ")
    )
    assert "retain: P15Y" in path.read_text(encoding="utf-8")


def test_reimport_names_what_the_plan_dropped(tmp_path: Path) -> None:
    """A record type gone from the plan leaves its policy alone and is named."""
    root = _catalog(tmp_path)
    assert _cli("plan-import", "records-plans/jamk.xml", cwd=root).returncode == 0
    _newer(root, **{'tos:id="jamk-transcript"': 'tos:id="jamk-transcript-2024"'})
    proc = _cli("plan-import", "records-plans/jamk.xml", cwd=root)
    assert "no longer in the plan" in proc.stdout and "jamk-transcript" in proc.stdout
    assert len(list((root / "policies").glob("*.yaml"))) == 2


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (">10</tos:SailytysajanPituusArvo>", ">10 vuotta</tos:SailytysajanPituusArvo>",
         "SailytysajanPituusArvo"),
        ("<tos:Luokitustunnus>05.04<", "<tos:Luokitustunnus>liikkuvuus<", "Luokitustunnus"),
    ],
)  # fmt: skip
def test_bad_plan_writes_nothing(tmp_path: Path, old: str, new: str, named: str) -> None:
    """A plan with a bad value exits 2 naming element and line, and writes no file."""
    root = _catalog(tmp_path)
    _newer(root, **{old: new})
    proc = _cli("plan-import", "records-plans/jamk.xml", cwd=root)
    assert proc.returncode == 2
    assert "records-plans/jamk.xml:" in proc.stderr and named in proc.stderr
    assert list((root / "policies").glob("*")) == []


def test_import_from_helerms_excel_and_xml(tmp_path: Path) -> None:
    """The Excel template and a helerm-style XML export import like a JHS 191 file; the
    Excel import is stable: run again, nothing changes."""
    data = Path(__file__).resolve().parent / "data" / "records_plan"
    root = _catalog(tmp_path)
    shutil.copy(data / "helerm_00_00_01_02.xlsx", root / "records-plans" / "helerm.xlsx")
    proc = _cli("plan-import", "records-plans/helerm.xlsx", "--out", "imported", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "(helerm Excel): 1 classes, 39 record types, 39 with personal data" in proc.stdout
    (written,) = (root / "imported").glob("*.yaml")
    doc = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert len(doc["policies"]) == 39 and doc["register"]["records_plan"] == (
        "records-plans/helerm.xlsx"
    )
    again = _cli("plan-import", "records-plans/helerm.xlsx", "--out", "imported", cwd=root)
    assert "the policies already follow this plan" in again.stdout
    shutil.copy(data / "helerm_export.xml", root / "records-plans" / "helerm.xml")
    proc = _cli("plan-import", "records-plans/helerm.xml", "--out", "xml", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "(JHS 191 (helerm profile))" in proc.stdout
    (written,) = (root / "xml").glob("*.yaml")
    assert written.name.startswith("00.00.01.02-")
    policies = yaml.safe_load(written.read_text(encoding="utf-8"))["policies"]
    assert [p["retain"] for p in policies] == ["P10Y", "permanent"]  # the first inherited
    assert policies[1]["records_plan"]["personal_data"] == 5


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    """--dry-run says what it would create and writes no file."""
    root = _catalog(tmp_path)
    proc = _cli("plan-import", "records-plans/jamk.xml", "--dry-run", cwd=root)
    assert proc.returncode == 0 and "new policy" in proc.stdout
    assert list((root / "policies").glob("*")) == []


def test_unreadable_policy_file_stops_the_import(tmp_path: Path) -> None:
    """A policy file the import cannot read is named with its line; nothing is written."""
    root = _catalog(tmp_path)
    (root / "policies" / "broken.yaml").write_text("register:\n  id: [unclosed\n", "utf-8")
    proc = _cli("plan-import", "records-plans/jamk.xml", cwd=root)
    assert proc.returncode == 2
    assert "policies/broken.yaml:" in proc.stderr and "cannot be read as YAML" in proc.stderr
    assert [p.name for p in (root / "policies").iterdir()] == ["broken.yaml"]
