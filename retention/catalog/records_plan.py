"""A records-management plan (tiedonohjaussuunnitelma, TOS; JHS 191) as the engine reads it.

The plan is the organisation's own decision on how long each kind of record is kept. The
engine reads it (as JHS 191 XML, ``tos_xml``, or as helerm's Excel template, ``tos_excel``)
into these frozen objects, once and completely validated, so that importing policies from it
and comparing the catalog against it (``plan_drift``) never touch the file again.

Only what retention needs is kept: per class (``Luokka``, code ``Luokitustunnus``) its
handling process's record types (``Asiakirjatieto``), each with its retention and access
restriction data as the standard's inheritance resolves them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from retention.errors import CatalogError, Problem

#: ``SailytysajanPituusArvo`` of a record type kept permanently (pysyvä säilytys).
PERMANENT = -1

#: ``HenkilotietoluonneKoodi``: 1 none, 2 personal data, 3 sensitive (JHS 191); helerm adds
#: 4 special categories (GDPR 9) and 5 criminal convictions (GDPR 10).
PERSONAL_DATA = {
    1: "Ei sisällä henkilötietoja",
    2: "Sisältää henkilötietoja",
    3: "Sisältää arkaluonteisia henkilötietoja",
    4: "Sisältää erityisiä henkilötietoja",
    5: "Sisältää rikoksiin tai rikkomuksiin liittyvää henkilötietoa",
}

#: ``JulkisuusluokkaKoodi``.
PUBLICITY = {
    1: "Julkinen",
    2: "Osittain salassa pidettävä",
    3: "Salassa pidettävä",
    4: "Ei-julkinen",
}

#: A class code as public administration classifications write it: two-digit groups joined
#: by dots or spaces (``05.01.02``, helerm's ``05 01 02``).
CLASS_CODE = re.compile(r"^\d{2}(?:[ .]\d{2})*$")


class RecordsPlanError(CatalogError):
    """A records-management plan that cannot be read: not JHS 191, failing its schema, or
    holding a value the engine cannot use. Every problem names the element and line (the
    sheet and cell for Excel); nothing was written."""


@dataclass(frozen=True)
class Retention:
    """``Sailytysaikatiedot``: how long, why, and from when."""

    years: int
    """``SailytysajanPituusArvo``: years, or ``PERMANENT`` (-1)."""
    reason: str
    """``SailytysajanPerusteTeksti``: the law or decision the period rests on."""
    start: str | None = None
    """``SailytysajanLaskentaperusteTeksti``: the event the period is counted from."""

    @property
    def permanent(self) -> bool:
        return self.years == PERMANENT

    @property
    def period(self) -> str:
        """The period as a policy's ``retain:`` writes it: ``P10Y`` or ``permanent``."""
        return "permanent" if self.permanent else f"P{self.years}Y"


@dataclass(frozen=True)
class Restriction:
    """``Kayttorajoitustiedot``: publicity, personal data and secrecy."""

    publicity: int | None
    """``JulkisuusluokkaKoodi`` (1 public … 4 not public)."""
    personal_data: int | None
    """``HenkilotietoluonneKoodi`` (1 none, 2 personal, 3 sensitive …)."""
    secrecy_years: int | None = None
    """``SalassapitoAikaArvo``."""
    secrecy_reason: str | None = None
    """``SalassapitoPerusteTeksti``, e.g. "JulkL (621/1999) 24.1 § 32 kohta"."""


@dataclass(frozen=True)
class RecordType:
    """One record type (``Asiakirjatieto``) of a class's handling process."""

    id: str
    """The element's ``tos:id`` (helerm: a UUID); the Excel template has none, so there it
    is the class code and the type specifier."""
    title: str
    """``AsiakirjaluokkaTeksti``, with its specifier (``AsiakirjaluokkaTarkenneTeksti``)."""
    retention: Retention
    restriction: Restriction
    line: int | None = None
    inherited: frozenset[str] = frozenset()
    """Which data came from the handling process: "retention", "restriction"."""

    @property
    def personal(self) -> bool:
        """Whether the record type holds personal data (code 2 or higher). A plan that does
        not say is taken to: better a policy too many than a register left unenforced."""
        code = self.restriction.personal_data
        return code is None or code >= 2


@dataclass(frozen=True)
class PlanClass:
    """One class (``Luokka``) of the plan: a function of the organisation."""

    code: str
    title: str
    record_types: tuple[RecordType, ...]
    line: int | None = None
    valid_until: date | None = None


@dataclass(frozen=True)
class RecordsPlan:
    """A whole records-management plan (``Tos``), validated and resolved."""

    id: str
    """``TosTiedot``'s ``tos:id``."""
    title: str
    version: str
    """``TosVersio``."""
    file: str
    """Where it was read from, as the catalog names it."""
    organisation: str | None = None
    approved_on: date | None = None
    """``HyvaksyttyPvm``."""
    valid_from: date | None = None
    valid_until: date | None = None
    """``VoimassaoloPaattyyPvm``: past it, the plan no longer speaks for the organisation."""
    status: int | None = None
    """``TilaKoodi``: 1 draft, 2 ready, 3 in use, 4 being updated, 5 not in use."""
    profile: str = "JHS 191"
    """The schema the file validated against: "JHS 191", or helerm's profile of it."""
    classes: tuple[PlanClass, ...] = field(default=())

    def record_types(self) -> Iterator[tuple[PlanClass, RecordType]]:
        for plan_class in self.classes:
            for record_type in plan_class.record_types:
                yield plan_class, record_type

    def find_class(self, code: str) -> PlanClass | None:
        wanted = normalise_code(code)
        return next((c for c in self.classes if normalise_code(c.code) == wanted), None)

    def find(self, code: str, record_type: str) -> tuple[PlanClass | None, RecordType | None]:
        """The class of ``code`` and its record type ``record_type``, each None if absent."""
        plan_class = self.find_class(code)
        if plan_class is None:
            return None, None
        found = next((r for r in plan_class.record_types if r.id == record_type), None)
        return plan_class, found

    def expired(self, today: date) -> bool:
        return self.valid_until is not None and self.valid_until < today


def normalise_code(code: str) -> str:
    """``05 01 02`` and ``05.01.02`` are one class."""
    return code.strip().replace(" ", ".")


def load_records_plan(path: Path, display: str | None = None) -> RecordsPlan:
    """Read a TOS file by its kind: ``.xml`` (JHS 191) or ``.xlsx`` (helerm's template)."""
    shown = display or str(path)
    if not path.is_file():
        raise RecordsPlanError(Problem(shown, "the records-management plan file does not exist"))
    suffix = path.suffix.lower()
    if suffix == ".xml":
        from retention.catalog.tos_xml import read_tos_xml

        return read_tos_xml(path, shown)
    if suffix in (".xlsx", ".xlsm"):
        from retention.catalog.tos_excel import read_tos_excel

        return read_tos_excel(path, shown)
    raise RecordsPlanError(
        Problem(shown, f"unknown kind of records-management plan {suffix!r}: give .xml or .xlsx")
    )


def check_class_code(code: str, file: str, line: int | None, where: str) -> Problem | None:
    """A class code that is not a classification's code (``5.1``, ``abc``) cannot be cited."""
    if CLASS_CODE.match(code.strip()):
        return None
    return Problem(
        file,
        f"unknown class code {code!r}: a class code is two-digit groups such as 05.01.02",
        line,
        key=where,
    )
