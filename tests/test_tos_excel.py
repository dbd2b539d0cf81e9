"""The TOS as helerm's Excel template: read as helerm's importer reads it, validated strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from retention.catalog.records_plan import RecordsPlanError, load_records_plan

DATA = Path(__file__).resolve().parent / "data" / "records_plan"
HEADERS = ["Tehtäväluokka", "2.13 Tehtävä", "5.6 Käsittelyvaihe", "5.6 Toimenpide",
           "2.15 Asiakirjan tyyppi", "Asiakirjatyypin tarkenne (=asiakirjallinen tieto)",
           "Asiakirjan  liitteet (sarake jätetään tyhjäksi, jos liitteitä ei ole)",
           "Rekisteröinti/ Tietojärjestelmä", "2.6.1 Julkisuusluokka", "2.6.2 Salassapitoaika",
           "2.6.4 Salassapitoperuste", "Salassapitoajan laskentaperuste",
           "2.6.7 Henkilötietoluonne", "Henkilötunnus", "2.11.1 Säilytysaika",
           "2.11.2 Säilytysajan peruste", "Säilytysajan laskentaperuste"]  # fmt: skip
COL = {name: i for i, name in enumerate(["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K",
                                          "L", "M", "N", "O", "P", "Q"])}  # fmt: skip


def _row(**cells: Any) -> list[Any]:
    row: list[Any] = [None] * len(HEADERS)
    for column, value in cells.items():
        row[COL[column]] = value
    return row


def _workbook(tmp_path: Path, code: str = "05 04", **changes: Any) -> Path:
    """A one-function TOS: the process keeps 10 years; one record type says nothing itself."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = code
    rows = [
        HEADERS,
        _row(A="05", B="Opetus"),
        _row(A=code, B="Kansainvälinen liikkuvuus"),
        _row(
            A="Asian metatiedot",
            I="Ei-julkinen",
            M="Sisältää henkilötietoja",
            O=10,
            P="Rahoittajan ohjeet",
            Q="Asian lopullinen ratkaisu",
        ),
        _row(A="Käsittelyvaiheen metatiedot", C="Vireilletulo"),
        _row(A="Toimenpiteen metatiedot", D="Hakemuksen saapuminen"),
        _row(A="Asiakirjan metatiedot", E="hakemus", F="liikkuvuushakemus"),
        _row(
            A="Asiakirjan metatiedot",
            E="todistus",
            F="opintosuoritusote",
            I="Julkinen",
            M="Sisältää arkaluonteisia henkilötietoja",
            O="-1 (säilytetään pysyvästi)",
            P="Kansallisarkiston päätös",
        ),
    ]
    for row in rows:
        sheet.append(row)
    for cell, value in changes.items():
        sheet[cell] = value
    codes = book.create_sheet("Koodistot")
    codes["A5"] = "Toimenpiteen tyyppi"
    path = tmp_path / "tos.xlsx"
    book.save(path)
    return path


def test_helerms_own_test_workbook_is_read() -> None:
    """helerm's test workbook: 39 record types of one function, with version and codes."""
    plan = load_records_plan(DATA / "helerm_00_00_01_02.xlsx")
    assert plan.version == "1.4" and plan.profile == "helerm Excel"
    (plan_class,) = plan.classes
    assert plan_class.code == "00 00 01 02" and len(plan_class.record_types) == 39
    first = plan_class.record_types[0]
    assert (
        first.id
        == "00 00 01 02 / Neuvonta/Ohjaus / Menettelyä koskeva neuvonta / rekisterimerkintä"
    )
    assert first.retention.years == 5 and first.restriction.personal_data == 2
    secret = plan_class.record_types[2]
    assert secret.restriction.publicity == 3 and secret.restriction.secrecy_years == 100


def test_each_column_and_inheritance(tmp_path: Path) -> None:
    """Values map by header; the record type that states nothing takes the process's."""
    plan = load_records_plan(_workbook(tmp_path))
    (plan_class,) = plan.classes
    assert plan_class.code == "05 04" and plan_class.title == "Kansainvälinen liikkuvuus"
    application, transcript = plan_class.record_types
    assert application.id == "05 04 / Vireilletulo / Hakemuksen saapuminen / liikkuvuushakemus"
    assert (
        application.retention.years == 10 and application.retention.reason == "Rahoittajan ohjeet"
    )
    assert application.retention.start == "Asian lopullinen ratkaisu"
    assert application.restriction.publicity == 4 and application.restriction.personal_data == 2
    assert application.inherited == {"retention", "restriction"}
    assert transcript.retention.permanent and transcript.restriction.personal_data == 3
    assert transcript.inherited == {"retention"}  # its start event only


def test_retention_as_text_names_sheet_and_cell(tmp_path: Path) -> None:
    """ "10 vuotta" in the Säilytysaika column is refused naming sheet and cell."""
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(_workbook(tmp_path, O7="10 vuotta"))
    (problem,) = caught.value.problems
    assert "sheet '05 04' cell O7" in problem.message and "'10 vuotta'" in problem.message


def test_unknown_code_list_value(tmp_path: Path) -> None:
    """A personal-data class outside the JHS 191 list names its cell."""
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(_workbook(tmp_path, M4="Vähän henkilötietoja"))
    assert "cell M4" in caught.value.problems[0].message


def test_unknown_class_code(tmp_path: Path) -> None:
    """A class code that is not one is refused on its cell."""
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(_workbook(tmp_path, code="liikkuvuus"))
    (problem,) = caught.value.problems
    assert "cell A3" in problem.message and "unknown class code 'liikkuvuus'" in problem.message


def test_unknown_row_type(tmp_path: Path) -> None:
    """A row typed with something the template does not know is refused, naming the cell."""
    with pytest.raises(RecordsPlanError) as caught:
        load_records_plan(_workbook(tmp_path, A7="Asiakirjan tiedot"))
    assert "cell A7: unknown row type 'Asiakirjan tiedot'" in caught.value.problems[0].message


def test_not_a_tos_workbook(tmp_path: Path) -> None:
    """A workbook without a template sheet, or a file that is no workbook, is refused."""
    book = Workbook()
    path = tmp_path / "empty.xlsx"
    book.save(path)
    with pytest.raises(RecordsPlanError, match="no sheet of helerm's TOS template"):
        load_records_plan(path)
    bogus = tmp_path / "bogus.xlsx"
    bogus.write_text("not a zip", encoding="utf-8")
    with pytest.raises(RecordsPlanError, match="not an Excel workbook"):
        load_records_plan(bogus)
