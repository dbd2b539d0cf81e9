"""Reading a records-management plan kept as helerm's Excel template.

Many organisations still keep their TOS as the workbook that helerm's importer
(``metarecord/importer/tos.py``) reads: one sheet per function whose cell A1 is
"Tehtäväluokka"; its column A names the class codes down to the function's own, then rows
typed in column A — "Asian metatiedot" (the handling process), "Käsittelyvaiheen metatiedot"
(phase), "Toimenpiteen metatiedot" (action), "Asiakirjan metatiedot" (record type),
"Asiakirjan liitteen metatiedot" (attachment) — with their values under the headers of row 1
("2.11.1 Säilytysaika", "2.6.7 Henkilötietoluonne" …). Other sheets (the code lists,
"Koodistot") are skipped as helerm skips them.

It is validated as strictly as the XML: an unknown row type, a class code that is not one, a
retention of "10 vuotta", a publicity or personal-data class outside the JHS 191 code list —
each an error naming the sheet and cell; a record type without a retention takes its handling
process's, as the standard says.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

from retention.catalog.records_plan import (
    PERMANENT,
    PERSONAL_DATA,
    PUBLICITY,
    PlanClass,
    RecordsPlan,
    RecordsPlanError,
    RecordType,
    Restriction,
    Retention,
    check_class_code,
)
from retention.errors import Problem

PROCESS = "Asian metatiedot"
RECORD = "Asiakirjan metatiedot"
ATTACHMENT = "Asiakirjan liitteen metatiedot"
STRUCTURE = ("Käsittelyvaiheen metatiedot", "Toimenpiteen metatiedot")
HEADING = "Asiakirjallisen tiedon käsittely"  # a heading row helerm skips ("ei täytetä")

#: Template headers (as helerm cleans them) → what they hold.
COLUMNS = {
    "Julkisuusluokka": "publicity",
    "Salassapitoaika": "secrecy_years",
    "Salassapitoperuste": "secrecy_reason",
    "Henkilötietoluonne": "personal_data",
    "Säilytysaika": "years",
    "Säilytysajan peruste": "reason",
    "Säilytysajan laskentaperuste": "start",
    "Asiakirjan tyyppi": "kind",
    "Asiakirjatyyppi": "kind",
    "Asiakirjatyypin tarkenne": "specifier",
    "Asiakirjan liitteet": "attachment",
    "Käsittelyvaihe": "phase",
    "Toimenpide": "action",
}
_RETENTION = ("years", "reason", "start")
_RESTRICTION = ("publicity", "personal_data", "secrecy_years", "secrecy_reason")


def clean_header(text: Any) -> str:
    """A header as helerm's importer reads it: no leading numbering, nothing in brackets,
    nothing after '='."""
    value = re.sub(r"^[0-9. ]+", "", str(text or ""))
    value = re.sub(r" \(.+\)", "", value)
    value = re.sub(r" {2,}", " ", value)
    return value.split("=")[0].strip()


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    return re.sub(r"\s\s+", " ", str(value)).strip() or None


def read_tos_excel(path: Path, display: str) -> RecordsPlan:
    """Read and validate the workbook; raise RecordsPlanError naming sheet and cell."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with warnings.catch_warnings():  # "Data Validation extension is not supported"
            warnings.simplefilter("ignore", UserWarning)
            workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, BadZipFile, OSError, KeyError, ValueError) as exc:
        raise RecordsPlanError(Problem(display, f"not an Excel workbook: {exc}")) from exc
    problems: list[Problem] = []
    classes: list[PlanClass] = []
    version = ""
    with warnings.catch_warnings():  # read-only sheets are parsed while iterating
        warnings.simplefilter("ignore", UserWarning)
        try:
            for sheet in workbook.worksheets:
                rows = [tuple(row) for row in sheet.iter_rows(values_only=True)]
                first = rows[0][0] if rows and rows[0] else None
                if not version:
                    version = _version(rows)
                if _clean(first) != "Tehtäväluokka" or len(rows) <= 2:
                    continue
                found = _sheet(sheet.title, rows, display, problems)
                if found is not None:
                    classes.append(found)
        finally:
            workbook.close()
    if not classes and not problems:
        problems.append(Problem(display, "no sheet of helerm's TOS template (cell A1 "
                                "'Tehtäväluokka') in the workbook"))  # fmt: skip
    if problems:
        raise RecordsPlanError(problems)
    return RecordsPlan(
        id=path.stem, title=path.stem, version=version, file=display, profile="helerm Excel",
        classes=tuple(classes),
    )  # fmt: skip


def _version(rows: list[tuple[Any, ...]]) -> str:
    """The template states its version in prose ("TOS-tiedosto, versio 1.4")."""
    for row in rows[:12]:
        for value in row:
            found = re.search(r"versio\s+([0-9][\w.\-]*)", str(value or ""), re.IGNORECASE)
            if found:
                return found.group(1)
    return ""


def _cell(column: int, row: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(column + 1)}{row}"


def _sheet(
    title: str, rows: list[tuple[Any, ...]], display: str, problems: list[Problem]
) -> PlanClass | None:
    def problem(column: int, row: int, message: str, key: str | None = None) -> None:
        where = f"{title}!{_cell(column, row)}"
        problems.append(Problem(display, f"sheet {title!r} cell {_cell(column, row)}: {message}",
                                key=key or where))  # fmt: skip

    headers = {i: COLUMNS.get(clean_header(h)) for i, h in enumerate(rows[0]) if h}
    start = next((n for n, r in enumerate(rows) if r and _clean(r[0]) == PROCESS), None)
    if start is None:
        problem(0, 1, f"no row {PROCESS!r}: the handling process's data is missing")
        return None
    code, code_row, name = "", 0, ""
    for number in range(1, start):
        row = rows[number]
        if row and _clean(row[0]):
            code, code_row = str(_clean(row[0])), number + 1
            name = (_clean(row[1]) if len(row) > 1 else None) or ""
    bad = check_class_code(code, display, None, "Luokitustunnus")
    if bad is not None:
        problem(0, code_row or 2, bad.message, "Luokitustunnus")
        return None
    process = _values(rows[start], headers, start + 1, problem)
    record_types: list[RecordType] = []
    seen: set[str] = set()
    context = {"phase": "", "action": ""}
    for number in range(start + 1, len(rows)):
        row = rows[number]
        kind = _clean(row[0]) if row else None
        if not kind or kind.startswith(HEADING):
            continue
        if kind in STRUCTURE:
            level = "phase" if kind == STRUCTURE[0] else "action"
            named = _values(row, headers, number + 1, problem).get(level, "")
            context[level] = named
            if level == "phase":
                context["action"] = ""
            continue
        if kind not in (RECORD, ATTACHMENT):
            known = ", ".join([PROCESS, *STRUCTURE, RECORD, ATTACHMENT])
            problem(0, number + 1, f"unknown row type {kind!r} (known: {known})")
            continue
        own = _values(row, headers, number + 1, problem)
        specifier = own.get("attachment" if kind == ATTACHMENT else "specifier")
        if not specifier:
            problem(0, number + 1, "a record type without its specifier "
                    "(Asiakirjatyypin tarkenne) cannot be cited")  # fmt: skip
            continue
        # The template has no ids: a record type is its class, phase, action and specifier.
        record_id = " / ".join(
            p for p in (code, context["phase"], context["action"], specifier) if p
        )
        if record_id in seen:
            problem(0, number + 1, f"record type {record_id!r} is given twice in this class")
            continue
        seen.add(record_id)
        found = _record_type(record_id, own, process, number + 1, problem)
        if found is not None:
            record_types.append(found)
    return PlanClass(code=code, title=name or title, record_types=tuple(record_types))


def _values(row: tuple[Any, ...], headers: dict[int, str | None], number: int,
            problem: Any) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for index, field in headers.items():
        if field is None or index >= len(row):
            continue
        raw = row[index]
        value = _clean(raw)
        if value is None:
            continue
        if field in ("years", "secrecy_years"):
            parsed = _years(raw, field == "years")
            if parsed is None:
                what = "retention" if field == "years" else "secrecy period"
                extra = ", or -1 for permanent" if field == "years" else ""
                problem(index, number, f"{what} {value!r} is not a number of years "
                        f"(give whole years{extra})", "SailytysajanPituusArvo"
                        if field == "years" else "SalassapitoAikaArvo")  # fmt: skip
                continue
            out[field] = parsed
        elif field in ("publicity", "personal_data"):
            table = PUBLICITY if field == "publicity" else PERSONAL_DATA
            code = _code(value, table)
            if code is None:
                problem(index, number, f"{value!r} is not one of: {', '.join(table.values())}")
                continue
            out[field] = code
        else:
            out[field] = value
    return out


def _years(raw: Any, permanent_allowed: bool) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float) and float(raw).is_integer():
        return int(raw)
    text = str(raw).strip()
    if permanent_allowed and text.startswith("-1"):  # "-1 (säilytetään pysyvästi)"
        return PERMANENT
    return int(text) if re.fullmatch(r"\d+", text) else None


def _code(value: str, table: dict[int, str]) -> int | None:
    text = re.sub(r" \(.+\)", "", value).strip().lower()
    wanted = text.replace(" ", "")
    for code, name in table.items():
        if name.lower().replace(" ", "") == wanted or text == str(code):
            return code
    return None


def _record_type(record_id: str, own: dict[str, Any], process: dict[str, Any], number: int,
                 problem: Any) -> RecordType | None:  # fmt: skip
    inherited: set[str] = set()
    data = dict(own)
    for part, fields in (("retention", _RETENTION), ("restriction", _RESTRICTION)):
        for name in fields:
            if name not in data and name in process:
                data[name] = process[name]
                inherited.add(part)
    if "years" not in data:
        problem(0, number, "no retention period (Säilytysaika), and neither has the handling "
                "process (row 'Asian metatiedot')", "SailytysajanPituusArvo")  # fmt: skip
        return None
    if data["years"] < PERMANENT:
        problem(0, number, f"retention {data['years']}: give whole years, or -1 for permanent")
        return None
    parts = [p for p in (data.get("kind"), data.get("specifier") or data.get("attachment")) if p]
    return RecordType(
        id=record_id,
        title=" – ".join(parts),
        retention=Retention(data["years"], data.get("reason") or "", data.get("start")),
        restriction=Restriction(
            publicity=data.get("publicity"),
            personal_data=data.get("personal_data"),
            secrecy_years=data.get("secrecy_years"),
            secrecy_reason=data.get("secrecy_reason"),
        ),
        line=number,
        inherited=frozenset(inherited),
    )
