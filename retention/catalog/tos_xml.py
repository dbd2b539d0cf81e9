"""Reading a JHS 191 records-management plan from its XML.

The file is validated against the JHS 191 schemas shipped in ``schemas/`` (README there: their
source and terms) before a value is read, with libxml2's validator through lxml — the
validator helerm itself uses, fast, and its errors carry the line and the element. A file
valid only against helerm's profile of the schema (record types may leave their retention
and access restriction to their handling process) is read as that profile. Then the
standard's inheritance is applied: what a record type does not state, it takes from its
handling process (``KasittelyprosessiTiedot``).

The parser resolves no entities and fetches nothing from the network: a plan is input from
elsewhere.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

from lxml import etree

from retention.catalog.records_plan import (
    PERMANENT,
    PlanClass,
    RecordsPlan,
    RecordsPlanError,
    RecordType,
    Restriction,
    Retention,
    check_class_code,
    normalise_code,
)
from retention.errors import Problem

NS = "http://skeemat.jhs-suositukset.fi/tos/2015/01/15"
_T = f"{{{NS}}}"
PROFILES = {
    "JHS 191": "jhs191/Skeema_TOS_kooste.xsd",
    "JHS 191 (helerm profile)": "helerm/Skeema_TOS_kooste_HKI_custom.xsd",
}

#: What to do about a schema error on these elements, said once after libxml2's message.
_HINTS = {
    "SailytysajanPituusArvo": "give the retention in whole years as a number, -1 for permanent",
    "SalassapitoAikaArvo": "give the secrecy period in whole years as a number",
    "HenkilotietoluonneKoodi": "1 no personal data, 2 personal data, 3 sensitive personal data",
    "JulkisuusluokkaKoodi": "1 public, 2 partly secret, 3 secret, 4 not public",
}


@cache
def _schema(relative: str) -> etree.XMLSchema:
    with resources.as_file(resources.files("retention.catalog") / "schemas" / relative) as path:
        return etree.XMLSchema(etree.parse(str(path)))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def read_tos_xml(path: Path, display: str) -> RecordsPlan:
    """Validate and read a JHS 191 TOS; raise RecordsPlanError naming element and line."""
    try:
        tree = etree.parse(str(path), _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise RecordsPlanError(Problem(display, f"not well-formed XML: {exc.msg}", line)) from exc
    root = tree.getroot()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise RecordsPlanError(
            Problem(display, "a JHS 191 plan has no DOCTYPE: entity declarations are refused", 1)
        )
    if root.tag != f"{_T}Tos":
        qname = etree.QName(root)
        raise RecordsPlanError(
            Problem(
                display,
                f"not a JHS 191 records-management plan: the root element is {qname.localname!r} "
                f"in namespace {qname.namespace or '(none)'!r}; expected 'Tos' in {NS!r}",
                root.sourceline,
                key=qname.localname,
            )
        )
    profile = validate(tree, display)
    return _read(root, display, profile)


def validate(tree: etree._ElementTree, display: str) -> str:
    """The profile the document is valid against; else every JHS 191 schema error."""
    first: list[Problem] = []
    for profile, relative in PROFILES.items():
        schema = _schema(relative)
        if schema.validate(tree):
            return profile
        if not first:
            first = [_schema_problem(display, error) for error in schema.error_log]
    raise RecordsPlanError(first)


def _schema_problem(display: str, error: etree._LogEntry) -> Problem:
    message = error.message.replace(_T, "tos:").replace(
        "{http://skeemat.jhs-suositukset.fi/yhteiset/2009/10/19}", "jhs:"
    )
    found = re.match(r"Element 'tos:(\w+)'", message)
    element = found.group(1) if found else (error.path or "").rsplit(":", 1)[-1] or None
    hint = _HINTS.get(element or "")
    text = f"fails the JHS 191 schema: {message}" + (f" ({hint})" if hint else "")
    return Problem(display, text, error.line or None, key=element)


def _child(element: etree._Element | None, name: str) -> etree._Element | None:
    return None if element is None else element.find(f"{_T}{name}")


def _text(element: etree._Element | None, name: str) -> str | None:
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    value = " ".join(child.text.split())
    return value or None


def _int(element: etree._Element | None, name: str) -> int | None:
    value = _text(element, name)
    return None if value is None else int(value)  # the schema made it an integer


def _date(element: etree._Element | None, name: str) -> date | None:
    value = _text(element, name)
    return None if value is None else date.fromisoformat(value[:10])  # xs:date, maybe a zone


def _title(element: etree._Element) -> str:
    """``Nimeke``: the Finnish title where several languages are given, else the first."""
    nimeke = _child(element, "Nimeke")
    if nimeke is None:
        return ""
    texts = nimeke.findall(f"{_T}NimekeKielella")
    chosen = next((t for t in texts if t.get(f"{_T}kieliKoodi") == "fi"), None)
    chosen = chosen if chosen is not None else (texts[0] if texts else nimeke)
    return _text(chosen, "NimekeTeksti") or ""


def _read(root: etree._Element, display: str, profile: str) -> RecordsPlan:
    info = _child(root, "TosTiedot")
    assert info is not None  # required by both schemas
    problems: list[Problem] = []
    classes: list[PlanClass] = []
    seen_codes: dict[str, int | None] = {}
    seen_ids: dict[str, int | None] = {}
    for luokka in root.findall(f"{_T}Luokka"):
        code = _text(luokka, "Luokitustunnus") or ""
        code_element = _child(luokka, "Luokitustunnus")
        code_line = (code_element if code_element is not None else luokka).sourceline
        bad = check_class_code(code, display, code_line, "Luokitustunnus")
        if bad is not None:
            problems.append(bad)
            continue
        if normalise_code(code) in seen_codes:
            problems.append(Problem(display, f"class {code} is given twice (first on line "
                                    f"{seen_codes[normalise_code(code)]})", code_line,
                                    key="Luokitustunnus"))  # fmt: skip
            continue
        seen_codes[normalise_code(code)] = code_line
        record_types = _record_types(luokka, code, display, problems, seen_ids)
        classes.append(
            PlanClass(
                code=code,
                title=_title(luokka),
                record_types=tuple(record_types),
                line=luokka.sourceline,
                valid_until=_date(luokka, "VoimassaoloPaattyyPvm"),
            )
        )
    if problems:
        raise RecordsPlanError(problems)
    return RecordsPlan(
        id=info.get(f"{_T}id") or "",
        title=_title(info),
        version=_text(info, "TosVersio") or "",
        file=display,
        organisation=_text(info, "OrganisaatioNimi"),
        approved_on=_date(info, "HyvaksyttyPvm"),
        valid_from=_date(info, "VoimassaoloAlkaaPvm"),
        valid_until=_date(info, "VoimassaoloPaattyyPvm"),
        status=_int(info, "TilaKoodi"),
        profile=profile,
        classes=tuple(classes),
    )


class _Inherit:
    """One record type's data, each value its own or else its handling process's (JHS 191:
    "Asiakirjatiedon käyttörajoitus-, salassapito- ja säilytysaikatietojen oletusarvot
    voidaan periyttää Käsittelyprosessi-tasolta")."""

    def __init__(self, record: etree._Element, process: etree._Element) -> None:
        self.record, self.process = record, process
        self.inherited: set[str] = set()

    def _pick(self, block: str, name: str, part: str) -> str | None:
        own = _text(_child(self.record, block), name)
        if own is not None:
            return own
        value = _text(_child(self.process, block), name)
        if value is not None:
            self.inherited.add(part)
        return value

    def retention(self, name: str) -> str | None:
        return self._pick("Sailytysaikatiedot", name, "retention")

    def restriction(self, name: str) -> str | None:
        return self._pick("Kayttorajoitustiedot", name, "restriction")

    def restriction_int(self, name: str) -> int | None:
        value = self.restriction(name)
        return None if value is None else int(value)  # the schema made it an integer


def _line(element: etree._Element | None) -> int | None:
    return None if element is None else element.sourceline


def _record_types(
    luokka: etree._Element,
    code: str,
    display: str,
    problems: list[Problem],
    seen_ids: dict[str, int | None],
) -> list[RecordType]:
    process = _child(luokka, "KasittelyprosessiTiedot")
    if process is None:  # helerm's profile: a class without a handling process yet
        return []
    out = []
    for record in process.iter(f"{_T}Asiakirjatieto"):
        line = _line(record)
        record_id = record.get(f"{_T}id") or ""
        if record_id in seen_ids:
            first = seen_ids[record_id]
            message = (
                f"record type id {record_id!r} is given twice (first on line {first}); "
                "a policy could not tell which it cites"
            )
            problems.append(Problem(display, message, line, key="Asiakirjatieto"))
            continue
        seen_ids[record_id] = line
        data = _Inherit(record, process)
        years = data.retention("SailytysajanPituusArvo")
        if years is None:
            problems.append(Problem(display, f"record type {record_id!r} of class {code} has "
                                    "no retention period (SailytysajanPituusArvo), and neither "
                                    "has its handling process", line,
                                    key="SailytysajanPituusArvo"))  # fmt: skip
            continue
        if int(years) < PERMANENT:
            own = _child(_child(record, "Sailytysaikatiedot"), "SailytysajanPituusArvo")
            problems.append(Problem(display, f"retention {years} years: give whole years, or -1 "
                                    "for permanent", _line(own) or line,
                                    key="SailytysajanPituusArvo"))  # fmt: skip
            continue
        kind = _text(record, "AsiakirjaluokkaTeksti")
        specifier = _text(record, "AsiakirjaluokkaTarkenneTeksti")
        parts = [p for p in (kind, specifier) if p and p != "None"]  # helerm writes "None"
        retention = Retention(
            years=int(years),
            reason=data.retention("SailytysajanPerusteTeksti") or "",
            start=data.retention("SailytysajanLaskentaperusteTeksti"),
        )
        restriction = Restriction(
            publicity=data.restriction_int("JulkisuusluokkaKoodi"),
            personal_data=data.restriction_int("HenkilotietoluonneKoodi"),
            secrecy_years=data.restriction_int("SalassapitoAikaArvo"),
            secrecy_reason=data.restriction("SalassapitoPerusteTeksti"),
        )
        out.append(
            RecordType(
                id=record_id,
                title=" – ".join(parts) or record_id,
                retention=retention,
                restriction=restriction,
                line=line,
                inherited=frozenset(data.inherited),
            )
        )
    return out
