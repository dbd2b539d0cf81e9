"""Synthetic demo sources for the shipped catalog: six SQLite databases of made-up people.

The shipped catalog encodes five real Finnish privacy notices, and its connectors point by
default at ``demo/*.db`` under the catalog directory. This module (re)creates those files so
that ``retention check``, ``plan`` and ``run`` have something real to work on without ever
touching real personal data:

* every person is invented with ``random.Random`` from Finnish name lists; e-mail addresses
  are under the reserved ``example.*`` domains; IBANs carry the check digits ``00``, which no
  real account can have; IP addresses are in TEST-NET-1 (RFC 5737); and every henkilötunnus
  uses an individual number 900–999, the range reserved for temporary and test identity
  codes, with a correct check character, so it looks and validates like a real one but
  never names a real person. Phone numbers are only random digits in a Finnish format;
* dates relative to ``as_of`` put, on that day, some records of each enabled policy of the
  shipped catalog due, some still retained and some whose clock has not started (an empty
  trigger). The AMKoodari project ran 2019–2021 and its rules end on a fixed date, so its
  dates are fixed and all its records are due once that date has passed;
* a given ``(as_of, seed)`` always gives the same rows, so a demo and its tests repeat.

Tables are SQLAlchemy Core definitions with real types, primary keys (one composite) and an
index on each trigger column, which is what ``retention check`` expects of a source.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

Row = dict[str, Any]
Rows = dict[str, list[Row]]

#: The check characters of a henkilötunnus, indexed by (DDMMYY + NNN) mod 31.
HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_CENTURY_SIGNS = {18: "+", 19: "-", 20: "A"}

_FEMALE = [
    "Aino",
    "Anna",
    "Eeva",
    "Elina",
    "Emilia",
    "Emma",
    "Helmi",
    "Iida",
    "Ilona",
    "Johanna",
    "Kaisa",
    "Katja",
    "Laura",
    "Leena",
    "Liisa",
    "Maria",
    "Marjatta",
    "Minna",
    "Noora",
    "Outi",
    "Päivi",
    "Riikka",
    "Sanna",
    "Satu",
    "Sofia",
    "Tiina",
    "Tuula",
    "Venla",
]
_MALE = [
    "Aleksi",
    "Antti",
    "Eero",
    "Eino",
    "Heikki",
    "Ilkka",
    "Janne",
    "Jari",
    "Juha",
    "Jukka",
    "Kalle",
    "Lauri",
    "Markku",
    "Matti",
    "Mikko",
    "Olli",
    "Onni",
    "Pekka",
    "Petri",
    "Risto",
    "Sami",
    "Teemu",
    "Timo",
    "Tuomas",
    "Väinö",
    "Ville",
]
_LAST = [
    "Heikkinen",
    "Hämäläinen",
    "Järvinen",
    "Kinnunen",
    "Koskinen",
    "Korhonen",
    "Laine",
    "Lehtonen",
    "Lehtinen",
    "Leinonen",
    "Mäkelä",
    "Mäkinen",
    "Nieminen",
    "Niemi",
    "Ojala",
    "Pitkänen",
    "Rantanen",
    "Salminen",
    "Salo",
    "Saarinen",
    "Turunen",
    "Tuominen",
    "Virtanen",
    "Väisänen",
    "Heinonen",
    "Jokinen",
    "Karjalainen",
    "Lahtinen",
    "Hiltunen",
]
_TOWNS = [
    ("Mikkeli", "50100"),
    ("Kotka", "48100"),
    ("Kouvola", "45100"),
    ("Savonlinna", "57100"),
    ("Jyväskylä", "40100"),
    ("Seinäjoki", "60100"),
    ("Joensuu", "80100"),
    ("Helsinki", "00100"),
    ("Tampere", "33100"),
    ("Kuopio", "70100"),
    ("Lappeenranta", "53100"),
    ("Vaasa", "65100"),
]
_STREETS = [
    "Koulukatu",
    "Rantatie",
    "Kirkkokatu",
    "Puistokatu",
    "Asemakatu",
    "Koivukuja",
    "Männikkötie",
    "Hallituskatu",
    "Torikatu",
    "Myllytie",
    "Satamakatu",
    "Pajatie",
]
_ORGANISATIONS = [
    "Saimaan Puu Oy",
    "Kymen Logistiikka Oy",
    "Mikkelin kaupunki",
    "Etelä-Savon Energia Oy",
    "Kotkan Satamapalvelut Oy",
    "Savon Ohjelmisto Oy",
    "Kouvolan Konepaja Oy",
    "Itä-Suomen Hyvinvointi ry",
    "Pien-Kaakon Matkailu Oy",
    "Rauhalan Rakennus Oy",
]
_ASCII = str.maketrans({"ä": "a", "ö": "o", "å": "a", "é": "e"})


# -- henkilötunnus --------------------------------------------------------------------------


def henkilotunnus(birth_date: date, individual: int) -> str:
    """The henkilötunnus for a birth date and individual number (DDMMYY, sign, NNN, check).

    Odd individual numbers are men's, even ones women's; 900–999 are reserved for temporary
    and test codes, which is the only range the demo uses.
    """
    if not 2 <= individual <= 999:
        raise ValueError(f"individual number must be 2–999, got {individual}")
    sign = _CENTURY_SIGNS.get(birth_date.year // 100)
    if sign is None:
        raise ValueError(f"no century sign for the year {birth_date.year}")
    digits = f"{birth_date:%d%m%y}{individual:03d}"
    return f"{digits[:6]}{sign}{digits[6:]}{HETU_CHECK[int(digits) % 31]}"


def fake_henkilotunnus(rng: random.Random, birth_date: date, *, female: bool) -> str:
    """A valid-format test henkilötunnus: individual number 900–999 of the right parity."""
    individual = rng.randrange(900 if female else 901, 1000, 2)
    return henkilotunnus(birth_date, individual)


# -- people ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """One synthetic Finnish person."""

    first_name: str
    last_name: str
    female: bool
    birth_date: date
    hetu: str
    phone: str
    town: str
    address: str

    def email(self, domain: str = "example.com") -> str:
        local = f"{self.first_name}.{self.last_name}".lower().translate(_ASCII)
        return f"{local}@{domain}"


def _person(rng: random.Random, as_of: date, min_age: int = 19, max_age: int = 60) -> Person:
    female = rng.random() < 0.5
    first = rng.choice(_FEMALE if female else _MALE)
    last = rng.choice(_LAST)
    birth = as_of - timedelta(days=rng.randint(min_age * 365, max_age * 365))
    town, postcode = rng.choice(_TOWNS)
    street = f"{rng.choice(_STREETS)} {rng.randint(1, 60)}"
    return Person(
        first_name=first,
        last_name=last,
        female=female,
        birth_date=birth,
        hetu=fake_henkilotunnus(rng, birth, female=female),
        phone=f"+358 {rng.choice(['40', '44', '45', '50'])} {rng.randint(100, 999)} "
        f"{rng.randint(1000, 9999)}",
        town=town,
        address=f"{street}, {postcode} {town.upper()}",
    )


# -- dates relative to as_of ----------------------------------------------------------------

#: Each table cycles through these fates, so every one of them occurs on ``as_of``.
_DUE, _KEPT, _OPEN = "due", "kept", "open"
_FATES = (_DUE, _OPEN, _KEPT, _OPEN, _DUE, _OPEN, _KEPT, _OPEN, _OPEN, _DUE)


def _fates(count: int) -> Iterator[tuple[int, str]]:
    for index in range(count):
        yield index, _FATES[index % len(_FATES)]


def _day_in_year(rng: random.Random, year: int) -> date:
    return date(year, 1, 1) + timedelta(days=rng.randint(0, 364))


def _before(rng: random.Random, day: date, low: int, high: int) -> date:
    """A day between ``high`` and ``low`` days before ``day``."""
    return day - timedelta(days=rng.randint(low, high))


def _after(rng: random.Random, day: date, low: int, high: int) -> date:
    return day + timedelta(days=rng.randint(low, high))


def _year_end_rule_end(rng: random.Random, as_of: date, fate: str, years: int) -> date | None:
    """An end date for a ``P<years>Y`` rule counted from year end, as ``fate`` asks on ``as_of``.

    Due ⇔ 1 January of (end year + 1 + years) ≤ as_of ⇔ end year ≤ as_of.year - years - 1.
    """
    if fate == _OPEN:
        return None
    if fate == _DUE:
        return _day_in_year(rng, as_of.year - years - 1 - rng.randint(0, 4))
    return min(_day_in_year(rng, rng.randint(as_of.year - years, as_of.year)), as_of)


def _event_rule_end(rng: random.Random, as_of: date, fate: str) -> date | None:
    """An end date for a ``P0D`` rule: past (due), announced for later (kept), or None."""
    if fate == _OPEN:
        return None
    if fate == _DUE:
        return _before(rng, as_of, 0, 2500)
    return _after(rng, as_of, 1, 120)


def _start_before(rng: random.Random, as_of: date, end: date | None, low: int, high: int) -> date:
    """A start date ``low``–``high`` days before the end, or before ``as_of`` if later or open."""
    anchor = as_of if end is None else min(end, as_of)
    return _before(rng, anchor, low, high)


# -- tables ---------------------------------------------------------------------------------


def _col(
    name: str,
    type_: sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]],
    *,
    null: bool = True,
    **kw: Any,
) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=null, **kw)


def _trigger(name: str, type_: type[sa.Date] | type[sa.DateTime] = sa.Date) -> sa.Column[Any]:
    """A trigger column: nullable (empty = the clock has not started) and indexed."""
    return sa.Column(name, type_, nullable=True, index=True)


XAMK = sa.MetaData()
sa.Table(
    "alumni",
    XAMK,
    _col("id", sa.Integer, primary_key=True, autoincrement=False),
    _col("person_id", sa.String(40)),  # oppijanumero, from the student register
    _col("first_name", sa.String(60)),
    _col("last_name", sa.String(80)),
    _col("email", sa.String(120)),
    _col("phone", sa.String(20)),
    _col("home_address", sa.String(200)),
    _col("birth_date", sa.Date),
    _col("institution", sa.String(10), null=False),
    _col("degree", sa.String(120), null=False),
    _col("study_location", sa.String(40), null=False),
    _col("start_year", sa.Integer, null=False),
    _col("graduation_year", sa.Integer, null=False),
    _col("marketing_ban", sa.Boolean, null=False),
    _col("notes", sa.Text),
    _col("joined_on", sa.Date, null=False),
    _trigger("membership_ended_on"),
)
sa.Table(
    "stakeholder_contacts",
    XAMK,
    _col("id", sa.Integer, primary_key=True, autoincrement=False),
    _col("organisation", sa.String(120), null=False),
    _col("relationship", sa.String(40), null=False),
    _col("first_name", sa.String(60)),
    _col("last_name", sa.String(80)),
    _col("title", sa.String(80)),
    _col("email", sa.String(120)),
    _col("phone", sa.String(20)),
    _col("cooperation_history", sa.Text),
    _col("marketing_ban", sa.Boolean, null=False),
    _col("relationship_started_on", sa.Date, null=False),
    _trigger("relationship_ended_on"),
)
sa.Table(
    "contracts",
    XAMK,
    _col("contract_no", sa.String(20), primary_key=True),
    _col("contract_type", sa.String(20), null=False),  # asiakassopimus | hankesopimus
    _col("title", sa.String(200), null=False),
    _col("customer_name", sa.String(120), null=False),
    _col("contact_name", sa.String(120)),
    _col("contact_email", sa.String(120)),
    _col("value_eur", sa.Integer, null=False),
    _col("signed_on", sa.Date, null=False),
    _trigger("ended_on"),
)

AMKOODARI = sa.MetaData()
sa.Table(
    "intake_surveys",
    AMKOODARI,
    _col("id", sa.Integer, primary_key=True, autoincrement=False),
    _col("school", sa.String(20), null=False),
    _col("first_name", sa.String(60)),
    _col("last_name", sa.String(80)),
    _col("birth_date", sa.Date),
    _col("municipality", sa.String(60)),
    _col("country", sa.String(60)),
    _col("education", sa.String(120)),
    _col("life_situation", sa.String(60)),
    _col("work_experience", sa.String(200)),
    _col("motivation", sa.Text),
    _col("courses", sa.String(200)),
    _col("submitted_on", sa.Date, null=False),
)
sa.Table(
    "interviewees",
    AMKOODARI,
    _col("id", sa.Integer, primary_key=True, autoincrement=False),
    _col("school", sa.String(20), null=False),
    _col("first_name", sa.String(60)),
    _col("last_name", sa.String(80)),
    _col("email", sa.String(120)),
    _col("phone", sa.String(20)),
    _col("consent_given_on", sa.Date, null=False),
    _col("invitation_sent", sa.Boolean, null=False),
    _col("interview_booked", sa.Boolean, null=False),
)
sa.Table(
    "interview_answers",
    AMKOODARI,
    _col("interview_id", sa.Integer, primary_key=True, autoincrement=False),
    _col("question_no", sa.Integer, primary_key=True, autoincrement=False),
    _col("interviewee_email", sa.String(120)),
    _col("interviewed_on", sa.Date),
    _col("question", sa.String(200), null=False),
    _col("answer", sa.Text, null=False),
    _col("interviewer_notes", sa.Text),
)

JAMK_MOBILITY = sa.MetaData()
sa.Table(
    "mobility_cases",
    JAMK_MOBILITY,
    _col("campus", sa.String(8), primary_key=True),
    _col("case_no", sa.String(16), primary_key=True),
    _col("direction", sa.String(10), null=False),  # lähtevä | saapuva
    _col("participant", sa.String(12), null=False),  # opiskelija | henkilöstö
    _col("first_name", sa.String(60), null=False),
    _col("last_name", sa.String(80), null=False),
    _col("email", sa.String(120), null=False),
    _col("phone", sa.String(20)),
    _col("birth_date", sa.Date, null=False),
    _col("gender", sa.String(10)),
    _col("nationality", sa.String(40)),
    _col("hetu", sa.String(11)),
    _col("student_number", sa.String(12)),
    _col("home_address", sa.String(200)),
    _col("next_of_kin", sa.String(200)),
    _col("special_needs", sa.Text),
    _col("programme", sa.String(40), null=False),
    _col("partner_institution", sa.String(120), null=False),
    _col("country", sa.String(60), null=False),
    _col("period_start", sa.Date, null=False),
    _col("period_end", sa.Date, null=False),
    _col("grant_eur", sa.Integer),
    _col("iban", sa.String(34)),
    _col("passport_copy", sa.String(200)),
    _trigger("closed_on"),
)

JAMK_STUDIES = sa.MetaData()
sa.Table(
    "transcripts",
    JAMK_STUDIES,
    _col("transcript_id", sa.Integer, primary_key=True, autoincrement=False),
    _col("student_number", sa.String(12), null=False),
    _col("hetu", sa.String(11)),
    _col("last_name", sa.String(80), null=False),
    _col("first_names", sa.String(120), null=False),
    _col("degree_programme", sa.String(120), null=False),
    _col("credits", sa.Integer, null=False),
    _col("document_ref", sa.String(200)),
    _trigger("issued_on"),
)

SEDU = sa.MetaData()
sa.Table(
    "students",
    SEDU,
    _col("study_right_id", sa.Integer, primary_key=True, autoincrement=False),
    _col("card_number", sa.String(20), null=False, unique=True),
    _col("username", sa.String(40), null=False),
    _col("hetu", sa.String(11)),
    _col("first_name", sa.String(60)),
    _col("last_name", sa.String(80)),
    _col("org_email", sa.String(120)),
    _col("other_email", sa.String(120)),
    _col("birth_date", sa.Date),
    _col("student_group", sa.String(20)),
    _col("study_right_start", sa.Date, null=False),
    _trigger("study_right_end"),
)
sa.Table(
    "sessions",
    SEDU,
    _col("session_id", sa.Integer, primary_key=True, autoincrement=False),
    _col("username", sa.String(40), null=False),
    _col("ip_address", sa.String(45)),
    _col("user_agent", sa.String(300)),
    _col("started_at", sa.DateTime, null=False),
    _trigger("ended_at", sa.DateTime),
)
sa.Table(
    "documents",
    SEDU,
    _col("doc_id", sa.Integer, primary_key=True, autoincrement=False),
    _col("username", sa.String(40), null=False),
    _col("doc_type", sa.String(40), null=False),
    _col("pdf_ref", sa.String(200), null=False),
    _col("created_on", sa.Date, null=False),
    _trigger("signed_on"),
)

KARELIA = sa.MetaData()
sa.Table(
    "students",
    KARELIA,
    _col("student_number", sa.String(10), primary_key=True),
    _col("hetu", sa.String(11)),
    _col("last_name", sa.String(80)),
    _col("first_names", sa.String(120)),
    _col("call_name", sa.String(60)),
    _col("address", sa.String(200)),
    _col("phone", sa.String(20)),
    _col("email", sa.String(120)),
    _col("degree_programme", sa.String(120), null=False),
    _col("arrival_group", sa.String(20), null=False),
    _col("status", sa.String(30), null=False),
    _col("end_reason", sa.String(200)),
    _col("secret", sa.Boolean, null=False),  # 'tiedot salaiset'
    _col("disclosure_ban", sa.Boolean, null=False),  # virallinen luovutuskielto
    _col("started_on", sa.Date, null=False),
    _trigger("ended_on"),
)
sa.Table(
    "degree_certificates",
    KARELIA,
    _col("certificate_no", sa.String(20), primary_key=True),
    _col("student_number", sa.String(10), null=False),
    _col("hetu", sa.String(11)),
    _col("degree", sa.String(120), null=False),
    _col("with_supplement", sa.Boolean, null=False),
    _col("copy_ref", sa.String(200)),
    _trigger("issued_on"),
)


# -- rows -----------------------------------------------------------------------------------


def _xamk(rng: random.Random, as_of: date) -> Rows:
    degrees = [
        "Tradenomi (AMK)",
        "Insinööri (AMK)",
        "Sairaanhoitaja (AMK)",
        "Sosionomi (AMK)",
        "Restonomi (AMK)",
        "Metsätalousinsinööri (AMK)",
        "Medianomi (AMK)",
    ]
    locations = ["Mikkeli", "Kouvola", "Kotka", "Savonlinna"]
    alumni: list[Row] = []
    for i, fate in _fates(80):
        p = _person(rng, as_of, 23, 60)
        ended = _event_rule_end(rng, as_of, fate)
        joined = _start_before(rng, as_of, ended, 30, 12 * 365)  # joined on graduating
        alumni.append(
            {
                "id": i + 1,
                "person_id": f"1.2.246.562.24.{rng.randint(10**10, 10**11 - 1)}",
                "first_name": p.first_name,
                "last_name": p.last_name,
                "email": p.email("example.com"),
                "phone": p.phone,
                "home_address": p.address,
                "birth_date": p.birth_date,
                "institution": "Xamk" if joined.year >= 2017 else rng.choice(["Kyamk", "Mamk"]),
                "degree": rng.choice(degrees),
                "study_location": rng.choice(locations),
                "start_year": joined.year - rng.randint(3, 5),
                "graduation_year": joined.year,
                "marketing_ban": i % 7 == 3,
                "notes": rng.choice(
                    [None, "Kiinnostunut mentoroinnista", "Puhui alumnitilaisuudessa"]
                ),
                "joined_on": joined,
                "membership_ended_on": ended,
            }
        )
    relationships = [
        "harjoittelupaikka",
        "opinnäytetyö",
        "projektiyhteistyö",
        "TKI-toiminta",
        "täydennyskoulutus",
        "tapahtuma",
        "maksullinen palvelutoiminta",
    ]
    titles = ["toimitusjohtaja", "HR-päällikkö", "kehityspäällikkö", "asiantuntija", "yrittäjä"]
    contacts: list[Row] = []
    for i, fate in _fates(80):
        p = _person(rng, as_of, 25, 64)
        ended = _event_rule_end(rng, as_of, fate)
        started = _start_before(rng, as_of, ended, 60, 10 * 365)
        meetings = rng.randint(1, 9)
        contacts.append(
            {
                "id": i + 1,
                "organisation": rng.choice(_ORGANISATIONS),
                "relationship": rng.choice(relationships),
                "first_name": p.first_name,
                "last_name": p.last_name,
                "title": rng.choice(titles),
                "email": p.email("example.net"),
                "phone": p.phone,
                "cooperation_history": f"Yhteistyö alkoi {started:%Y}; {meetings} tapaamista.",
                "marketing_ban": i % 9 == 4,
                "relationship_started_on": started,
                "relationship_ended_on": ended,
            }
        )
    contracts: list[Row] = []
    for i, fate in _fates(60):
        project = i % 3 == 2
        ended = _year_end_rule_end(rng, as_of, fate, 20 if project else 10)
        signed = _start_before(rng, as_of, ended, 30, 4 * 365)
        contact = _person(rng, as_of, 25, 64)
        contracts.append(
            {
                "contract_no": f"{'HS' if project else 'AS'}-{signed:%Y}-{i + 1:04d}",
                "contract_type": "hankesopimus" if project else "asiakassopimus",
                "title": rng.choice(
                    [
                        "Täydennyskoulutus",
                        "Tilaustutkimus",
                        "Kehittämishanke",
                        "Laboratoriopalvelu",
                        "Hankekumppanuus",
                    ]
                ),
                "customer_name": rng.choice(_ORGANISATIONS),
                "contact_name": f"{contact.first_name} {contact.last_name}",
                "contact_email": contact.email("example.net"),
                "value_eur": rng.randint(20, 900) * 100,
                "signed_on": signed,
                "ended_on": ended,
            }
        )
    return {"alumni": alumni, "stakeholder_contacts": contacts, "contracts": contracts}


def _amkoodari(rng: random.Random, as_of: date) -> Rows:
    """The AMKoodari project ran 2019–2021: its dates are fixed, not relative to ``as_of``."""
    schools = ["Haaga-Helia", "HAMK", "Xamk", "Laurea", "Metropolia"]
    project_days = (date(2021, 12, 31) - date(2019, 1, 1)).days

    def in_project() -> date:
        return date(2019, 1, 1) + timedelta(days=rng.randint(0, project_days))

    surveys: list[Row] = []
    for i in range(60):
        p = _person(rng, as_of, 20, 55)
        surveys.append(
            {
                "id": i + 1,
                "school": rng.choice(schools),
                "first_name": p.first_name,
                "last_name": p.last_name,
                "birth_date": p.birth_date,
                "municipality": p.town,
                "country": "Suomi",
                "education": rng.choice(["ylioppilas", "ammatillinen tutkinto", "AMK-tutkinto"]),
                "life_situation": rng.choice(["työtön työnhakija", "työssä", "opiskelija"]),
                "work_experience": f"{rng.randint(0, 25)} vuotta",
                "motivation": "Haluan oppia ohjelmointia.",
                "courses": "Ohjelmoinnin perusteet; Web-kehitys",
                "submitted_on": in_project(),
            }
        )
    questions = [
        "Miksi keskeytit opintojakson?",
        "Oliko opintojakson työmäärä sopiva?",
        "Miten ohjaus toimi?",
        "Mikä olisi auttanut jatkamaan?",
        "Suosittelisitko AMKoodari-opintoja?",
        "Muuta palautetta",
    ]
    answers_pool = [
        "Aika ei riittänyt töiden ohessa.",
        "Tehtävät olivat vaikeita.",
        "Ohjaus oli hyvää.",
        "Kyllä.",
        "Enemmän lähiopetusta.",
    ]
    interviewees: list[Row] = []
    answers: list[Row] = []
    for i in range(30):
        p = _person(rng, as_of, 20, 55)
        consent = in_project()
        interviewed = i % 3 != 2
        interviewees.append(
            {
                "id": i + 1,
                "school": rng.choice(schools),
                "first_name": p.first_name,
                "last_name": p.last_name,
                "email": p.email("example.com"),
                "phone": p.phone,
                "consent_given_on": consent,
                "invitation_sent": True,
                "interview_booked": interviewed,
            }
        )
        if not interviewed:
            continue
        interview_id = len(answers) // len(questions) + 1
        held = min(_after(rng, consent, 7, 60), date(2021, 12, 31))
        note = f"Haastateltava {p.first_name}, soitto klo 14."
        for number, question in enumerate(questions, start=1):
            answers.append(
                {
                    "interview_id": interview_id,
                    "question_no": number,
                    "interviewee_email": p.email("example.com"),
                    "interviewed_on": held,
                    "question": question,
                    "answer": rng.choice(answers_pool),
                    "interviewer_notes": rng.choice([None, note]),
                }
            )
    return {"intake_surveys": surveys, "interviewees": interviewees, "interview_answers": answers}


def _jamk_mobility(rng: random.Random, as_of: date) -> Rows:
    campuses = ["LUT", "RAJ", "MUS", "TAR"]
    partners = [
        ("Hochschule München", "Saksa"),
        ("Universidad de Granada", "Espanja"),
        ("Hanze University", "Alankomaat"),
        ("Tallinna Tehnikakõrgkool", "Viro"),
        ("Seoul National University", "Etelä-Korea"),
        ("NTNU", "Norja"),
    ]
    sequence: dict[tuple[str, int], int] = {}
    cases: list[Row] = []
    for i, fate in _fates(90):
        closed = _year_end_rule_end(rng, as_of, fate, 10)
        if closed is None:  # still open: a period under way or about to start
            period_end = _after(rng, as_of, 10, 300)
        else:
            period_end = _before(rng, closed, 20, 150)
        period_start = _before(rng, period_end, 80, 300)
        campus = campuses[i % len(campuses)]
        seq = sequence[campus, period_start.year] = sequence.get((campus, period_start.year), 0) + 1
        outgoing, staff = i % 2 == 0, i % 5 == 4
        p = _person(rng, as_of, 20, 60)
        partner, country = rng.choice(partners)
        grant = rng.randint(8, 40) * 100 if outgoing else None
        cases.append(
            {
                "campus": campus,
                "case_no": f"{period_start.year}-{seq:03d}",
                "direction": "lähtevä" if outgoing else "saapuva",
                "participant": "henkilöstö" if staff else "opiskelija",
                "first_name": p.first_name,
                "last_name": p.last_name,
                "email": p.email("example.org"),
                "phone": p.phone,
                "birth_date": p.birth_date,
                "gender": "nainen" if p.female else "mies",
                "nationality": "Suomi" if outgoing else country,
                "hetu": p.hetu if outgoing else None,
                "student_number": None if staff else f"M{rng.randint(1000, 9999)}{i:03d}",
                "home_address": p.address,
                "next_of_kin": None if staff else f"{rng.choice(_FEMALE)} {p.last_name}, {p.phone}",
                "special_needs": "Esteetön majoitus" if i % 13 == 6 else None,
                "programme": rng.choice(["Erasmus+", "Nordplus", "kahdenvälinen"]),
                "partner_institution": partner,
                "country": country,
                "period_start": period_start,
                "period_end": period_end,
                "grant_eur": grant,
                # Check digits 00 are never valid, so no real account has this IBAN.
                "iban": f"FI00 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)} "
                f"{rng.randint(1000, 9999)} {rng.randint(10, 99)}"
                if grant
                else None,
                "passport_copy": None if outgoing else f"liitteet/passi-{campus}-{i:04d}.pdf",
                "closed_on": closed,
            }
        )
    return {"mobility_cases": cases}


def _jamk_studies(rng: random.Random, as_of: date) -> Rows:
    programmes = ["Tietojenkäsittely", "Logistiikka", "Fysioterapia", "Musiikki", "Liiketalous"]
    transcripts: list[Row] = []
    for i in range(50):
        p = _person(rng, as_of, 21, 45)
        transcripts.append(
            {
                "transcript_id": i + 1,
                "student_number": f"J{rng.randint(100000, 999999)}",
                "hetu": p.hetu,
                "last_name": p.last_name,
                "first_names": p.first_name,
                "degree_programme": rng.choice(programmes),
                "credits": rng.randint(30, 240),
                "document_ref": f"otteet/{i + 1:05d}.pdf",
                "issued_on": _before(rng, as_of, 1, 15 * 365),
            }
        )
    return {"transcripts": transcripts}


def _sedu(rng: random.Random, as_of: date) -> Rows:
    students: list[Row] = []
    usernames: list[str] = []
    for i, fate in _fates(70):
        p = _person(rng, as_of, 16, 40)
        ended = _year_end_rule_end(rng, as_of, fate, 2)
        username = f"s{rng.randint(100000, 999999)}"
        usernames.append(username)
        students.append(
            {
                "study_right_id": 10000 + i,
                "card_number": f"SEDU{rng.randint(10, 99)}{i:04d}",
                "username": username,
                "hetu": p.hetu,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "org_email": f"{username}@sedu.example.org",
                "other_email": p.email("example.net"),
                "birth_date": p.birth_date,
                "student_group": rng.choice([None, "LOG21", "SOTE22", "ICT23", "RAK22"]),
                "study_right_start": _start_before(rng, as_of, ended, 100, 4 * 365),
                "study_right_end": ended,
            }
        )
    agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
    ]
    midnight = datetime.combine(as_of, time())
    sessions: list[Row] = []
    for i, fate in _fates(100):
        days = rng.randint(370, 900) if fate == _DUE else rng.randint(1, 300)
        started = midnight - timedelta(days=days, minutes=rng.randint(0, 1440))
        sessions.append(
            {
                "session_id": i + 1,
                "username": rng.choice(usernames),
                "ip_address": f"192.0.2.{rng.randint(1, 254)}",  # TEST-NET-1 (RFC 5737)
                "user_agent": rng.choice(agents),
                "started_at": started,
                "ended_at": None
                if fate == _OPEN
                else started + timedelta(minutes=rng.randint(1, 90)),
            }
        )
    doc_types = ["opiskelutodistus", "opintosuoritusote", "tutkintotodistus", "lomake"]
    documents: list[Row] = []
    for i, fate in _fates(60):
        created = _before(rng, as_of, 0, 3 * 365)
        documents.append(
            {
                "doc_id": i + 1,
                "username": rng.choice(usernames),
                "doc_type": rng.choice(doc_types),
                "pdf_ref": f"atomi/pdf/{i + 1:06d}.pdf",
                "created_on": created,
                "signed_on": None if fate == _OPEN else min(_after(rng, created, 0, 5), as_of),
            }
        )
    return {"students": students, "sessions": sessions, "documents": documents}


def _karelia(rng: random.Random, as_of: date) -> Rows:
    programmes = [
        "Tradenomi, liiketalous",
        "Insinööri, tieto- ja viestintätekniikka",
        "Sairaanhoitaja",
        "Sosionomi",
        "Metsätalousinsinööri",
        "Medianomi",
    ]
    ended_statuses = ["valmistunut", "valmistunut", "eronnut", "opiskeluoikeus päättynyt"]
    reasons = {"eronnut": "Oma ilmoitus", "opiskeluoikeus päättynyt": "Ei ilmoittautunut"}
    students: list[Row] = []
    certificates: list[Row] = []
    for i, fate in _fates(90):
        p = _person(rng, as_of, 19, 50)
        ended = _event_rule_end(rng, as_of, fate)
        started = _start_before(rng, as_of, ended, 60, 6 * 365)
        if ended is None and i % 4 == 3:  # resigned, but the date is not recorded yet
            status = "eronnut"
        elif ended is None:
            status = rng.choice(["läsnä", "läsnä", "poissa", "keskeyttänyt"])
        else:
            status = ended_statuses[i % len(ended_statuses)]
        number = f"{started:%y}{rng.randint(1000, 9999)}{i:02d}"
        programme = rng.choice(programmes)
        second_name = rng.choice(_FEMALE if p.female else _MALE)
        students.append(
            {
                "student_number": number,
                "hetu": p.hetu,
                "last_name": p.last_name,
                "first_names": f"{p.first_name} {second_name}",
                "call_name": p.first_name,
                "address": p.address,
                "phone": p.phone,
                "email": p.email("example.com"),
                "degree_programme": programme,
                "arrival_group": f"{programme[:3].upper()}{started:%y}",
                "status": status,
                "end_reason": reasons.get(status),
                "secret": i % 11 == 0 or i % 23 == 5,
                "disclosure_ban": i % 13 == 7,
                "started_on": started,
                "ended_on": ended,
            }
        )
        if status == "valmistunut" and ended is not None and ended <= as_of:
            certificates.append(
                {
                    "certificate_no": f"KAR-{ended:%Y}-{len(certificates) + 1:04d}",
                    "student_number": number,
                    "hetu": p.hetu,
                    "degree": programme,
                    "with_supplement": True,
                    "copy_ref": f"paatearkisto/{number}.pdf",
                    "issued_on": ended,
                }
            )
    return {"students": students, "degree_certificates": certificates}


@dataclass(frozen=True)
class DemoSource:
    """One demo database: the connector that reads it, its file, its tables and rows."""

    connector: str
    filename: str
    metadata: sa.MetaData
    rows: Callable[[random.Random, date], Rows]


#: The demo databases, named by the connector whose default url points at them.
DEMO_SOURCES: tuple[DemoSource, ...] = (
    DemoSource("xamk-crm", "xamk_crm.db", XAMK, _xamk),
    DemoSource("amkoodari-survey", "amkoodari.db", AMKOODARI, _amkoodari),
    DemoSource("jamk-mobility", "jamk_mobility.db", JAMK_MOBILITY, _jamk_mobility),
    DemoSource("jamk-study-register", "jamk_studies.db", JAMK_STUDIES, _jamk_studies),
    DemoSource("sedu-atomi", "sedu_atomi.db", SEDU, _sedu),
    DemoSource("karelia-winhapro", "karelia_winhapro.db", KARELIA, _karelia),
)
DEMO_DIR = "demo"


def build_demo_sources(catalog_root: Path, as_of: date, seed: int = 2026) -> dict[str, Path]:
    """(Re)create every demo database under ``catalog_root/demo/``; return connector → file.

    An existing file is deleted first, so a build always starts from the same rows.
    """
    folder = catalog_root / DEMO_DIR
    folder.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    for source in DEMO_SOURCES:
        path = folder / source.filename
        path.unlink(missing_ok=True)
        rows = source.rows(random.Random(f"{seed}:{source.connector}"), as_of)
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            source.metadata.create_all(engine)
            with engine.begin() as conn:
                for table in source.metadata.sorted_tables:
                    if rows.get(table.name):
                        conn.execute(table.insert(), rows[table.name])
        finally:
            engine.dispose()
        built[source.connector] = path
    return built


#: The demo file shares, named by the connector whose default root points at them.
DEMO_SHARES = {
    "amkoodari-recordings": "amkoodari-recordings",
    "sedu-atomi-documents": "sedu-atomi-documents",
}
_WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
_PDF = b"%PDF-1.4\n% synthetic demo document\n%%EOF\n"


def build_demo_shares(catalog_root: Path, as_of: date, seed: int = 2026) -> dict[str, Path]:
    """(Re)create the demo file shares: interview recordings and signed PDF documents.

    Recordings carry a JSON sidecar naming the interview day and the interviewee's e-mail
    (the subject for erasure requests); documents carry their signing day in their path.
    """
    rng = random.Random(f"{seed}:shares")
    built: dict[str, Path] = {}
    for connector, name in DEMO_SHARES.items():
        root = catalog_root / DEMO_DIR / name
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        built[connector] = root
    recordings = built["amkoodari-recordings"] / "interviews"
    for number in range(1, 13):
        interviewed = date(2020, 1, 15) + timedelta(days=rng.randint(0, 600))
        folder = recordings / str(interviewed.year)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"haastattelu-{number:03d}.wav"
        (folder / name).write_bytes(_WAV + rng.randbytes(64))
        sidecar = {"interviewed_on": interviewed.isoformat(),
                   "email": f"haastateltava{number}@example.com"}  # fmt: skip
        (folder / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    documents = built["sedu-atomi-documents"] / "documents"
    for number in range(1, 16):
        signed = as_of - timedelta(days=rng.randint(0, 900))
        folder = documents / str(signed.year)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{signed.isoformat()}-todistus-{number:04d}.pdf").write_bytes(_PDF)
    drafts = documents / "luonnokset"
    drafts.mkdir()
    (drafts / "allekirjoittamaton-0001.pdf").write_bytes(_PDF)
    return built
