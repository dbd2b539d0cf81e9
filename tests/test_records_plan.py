"""Reading a JHS 191 records-management plan (TOS): schema, inheritance, each field, bad input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from retention.catalog.records_plan import RecordsPlanError, load_records_plan

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "records-plans"
DATA = Path(__file__).resolve().parent / "data" / "records_plan"


def _variant(tmp_path: Path, old: str, new: str, source: Path = SHIPPED / "jamk.xml") -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text
    out = tmp_path / "tos.xml"
    out.write_text(text.replace(old, new, 1), encoding="utf-8")
    return out


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


@pytest.mark.parametrize("name", ["xamk", "amkoodari", "jamk", "sedu", "karelia"])
def test_shipped_plans_validate_against_jhs191(name: str) -> None:
    """Every shipped TOS is valid against the standard JHS 191 schema, not only helerm's."""
    plan = load_records_plan(SHIPPED / f"{name}.xml")
    assert plan.profile == "JHS 191"
    assert plan.classes and all(c.record_types for c in plan.classes)


def test_each_field_is_mapped() -> None:
    """TosTiedot, Luokka and Asiakirjatieto values land in the fields the importer uses."""
    plan = load_records_plan(SHIPPED / "jamk.xml")
    assert (plan.id, plan.version, plan.approved_on) == ("jamk-tos", "2019.1", date(2019, 1, 31))
    assert plan.valid_from == date(2019, 2, 1) and plan.valid_until is None
    assert plan.organisation == "Jyväskylän ammattikorkeakoulu Oy" and plan.status == 3
    mobility_class, mobility = plan.find("05.04", "jamk-mobility-case")
    assert mobility_class is not None and mobility is not None
    assert mobility_class.title == "Kansainvälinen liikkuvuus"
    assert mobility.retention.years == 10 and mobility.retention.period == "P10Y"
    assert mobility.retention.start == "Liikkuvuusasian päättymisvuoden loppu"
    assert mobility.retention.reason.startswith("JAMKin tiedonohjaussuunnitelma")
    assert mobility.restriction.personal_data == 3 and mobility.restriction.publicity == 2
    assert mobility.title.startswith("Asiakirjakokonaisuus – Liikkuvuusasian tiedot")
    assert mobility.inherited == frozenset()
    _, transcript = plan.find("05.01", "jamk-transcript")
    assert transcript is not None and transcript.retention.permanent
    assert transcript.retention.period == "permanent"
    karelia = load_records_plan(SHIPPED / "karelia.xml")
    _, student = karelia.find("05.01", "karelia-former-student")
    assert student is not None
    assert student.restriction.secrecy_years == 50
    assert student.restriction.secrecy_reason == "JulkL (621/1999) 24.1 § 31 kohta"


def test_a_tos_as_helerms_exporter_writes_it() -> None:
    """helerm's export (spaced codes, nested actions, "None" types, empty record-level data)
    is read as helerm's profile, and the record type takes its handling process's data."""
    plan = load_records_plan(DATA / "helerm_export.xml")
    assert plan.profile == "JHS 191 (helerm profile)"
    assert plan.find_class("00.00.01.02") is not None  # spaces and dots are one code
    (plan_class,) = plan.classes
    first, second = plan_class.record_types
    assert first.title == "erottamista koskeva aloite"  # "None" is no type
    assert first.retention.years == 10 and first.retention.start == "Asian lopullinen ratkaisu"
    assert first.restriction.personal_data == 2 and first.restriction.publicity == 1
    assert first.inherited == {"retention", "restriction"}
    assert second.retention.permanent and second.restriction.personal_data == 5
    assert second.restriction.secrecy_years == 100
    assert second.inherited == {"retention"}  # only the start event came from the process


def test_no_retention_anywhere_is_an_error(tmp_path: Path) -> None:
    """A record type without a period whose process has none either names its line."""
    path = _variant(
        tmp_path,
        "<tos:SailytysajanPituusArvo>10</tos:SailytysajanPituusArvo>",
        "",
        DATA / "helerm_export.xml",
    )
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(path)
    (problem,) = caught.value.problems
    assert problem.key == "SailytysajanPituusArvo"
    assert problem.line == _line_of(path, 'tos:id="3e4f5a6b')
    assert "neither has its handling process" in problem.message


def test_retention_as_text_names_element_and_line(tmp_path: Path) -> None:
    """ "10 vuotta" where years are due fails the schema, naming the element and its line."""
    path = _variant(
        tmp_path, ">10</tos:SailytysajanPituusArvo>", ">10 vuotta</tos:SailytysajanPituusArvo>"
    )
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(path)
    problems = caught.value.problems
    assert problems[0].key == "SailytysajanPituusArvo"
    assert problems[0].line == _line_of(path, "10 vuotta")
    assert "'10 vuotta'" in problems[0].message and "-1 for permanent" in problems[0].message


def test_failing_the_schema(tmp_path: Path) -> None:
    """A required element left out (TosVersio) is a schema error on its parent's line."""
    path = _variant(tmp_path, "<tos:TosVersio>2019.1</tos:TosVersio>", "")
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(path)
    problem = caught.value.problems[0]
    assert "fails the JHS 191 schema" in problem.message and "TosVersio" in problem.message
    assert problem.line == _line_of(path, "<tos:TilaKoodi>")


def test_not_jhs191(tmp_path: Path) -> None:
    """Another XML document is refused by its root element, with the namespace expected."""
    path = tmp_path / "other.xml"
    path.write_text('<?xml version="1.0"?>\n<plan xmlns="urn:x"><a/></plan>\n', encoding="utf-8")
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(path)
    (problem,) = caught.value.problems
    assert problem.line == 2 and "not a JHS 191 records-management plan" in problem.message
    assert "http://skeemat.jhs-suositukset.fi/tos/2015/01/15" in problem.message


def test_not_xml(tmp_path: Path) -> None:
    """A file that is not well-formed is refused with the line the parser stopped at."""
    path = tmp_path / "broken.xml"
    path.write_text('<?xml version="1.0"?>\n<tos:Tos>\n<unclosed>\n', encoding="utf-8")
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(path)
    assert "not well-formed XML" in caught.value.problems[0].message


def test_entities_are_not_expanded(tmp_path: Path) -> None:
    """An external entity is never resolved: the plan is input from elsewhere."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    text = (SHIPPED / "jamk.xml").read_text(encoding="utf-8")
    text = text.replace(
        "<tos:Tos ", f'<!DOCTYPE tos:Tos [<!ENTITY x SYSTEM "file://{secret}">]>\n<tos:Tos ', 1
    ).replace("<tos:TosVersio>2019.1", "<tos:TosVersio>&x;", 1)
    path = tmp_path / "xxe.xml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecordsPlanError, match="entity declarations are refused"):
        load_records_plan(path)


def test_unknown_class_code(tmp_path: Path) -> None:
    """A class code that is not a classification code is refused on its line."""
    path = _variant(tmp_path, "<tos:Luokitustunnus>05.04<", "<tos:Luokitustunnus>liikkuvuus<")
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(path)
    (problem,) = caught.value.problems
    assert problem.key == "Luokitustunnus" and "unknown class code 'liikkuvuus'" in problem.message
    assert problem.line == _line_of(path, "liikkuvuus<")


def test_a_class_given_twice(tmp_path: Path) -> None:
    """Two classes with one code cannot both be cited: refused, naming the first."""
    path = _variant(tmp_path, "<tos:Luokitustunnus>05.01<", "<tos:Luokitustunnus>05.04<")
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(path)
    assert "class 05.04 is given twice" in caught.value.problems[0].message


def test_unknown_file_kind(tmp_path: Path) -> None:
    """Only .xml and .xlsx are plans."""
    path = tmp_path / "tos.csv"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(RecordsPlanError, match=r"give \.xml or \.xlsx"):
        load_records_plan(path)
