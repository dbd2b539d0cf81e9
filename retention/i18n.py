"""The words of the HTML plan report, in English and Finnish, kept in one place.

Every message id has both languages (a test holds this); ``{name}`` placeholders are filled
by :meth:`Messages.__call__`. Dates stay ISO 8601 in both languages; numbers are grouped the
way each language writes them (1,234 and 1 234).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from retention.clock import Duration
    from retention.model import Policy, Unless

Language = Literal["en", "fi"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "fi")

MESSAGES: Final[dict[str, dict[Language, str]]] = {
    # The page and its header
    "title": {"en": "Retention plan", "fi": "Säilytyssuunnitelma"},
    "subtitle": {
        "en": "Dry run: nothing has been changed in any source.",
        "fi": "Koeajo: lähdejärjestelmien tietoihin ei ole tehty muutoksia.",
    },
    "erasure_subtitle": {
        "en": "Dry run of an erasure request: nothing has been changed in any source.",
        "fi": "Poistopyynnön koeajo: lähdejärjestelmien tietoihin ei ole tehty muutoksia.",
    },
    "plan_id": {"en": "Plan", "fi": "Suunnitelma"},
    "as_of": {"en": "As of", "fi": "Tilanne päivänä"},
    "created_at": {"en": "Created (UTC)", "fi": "Laadittu (UTC)"},
    "catalog": {"en": "Catalog", "fi": "Luettelo"},
    "job": {"en": "Job", "fi": "Ajo"},
    "approval": {"en": "Approval", "fi": "Hyväksyntä"},
    "approved": {"en": "approved by {by} on {on}", "fi": "hyväksynyt {by} {on}"},
    "not_approved": {"en": "not approved", "fi": "ei hyväksytty"},
    "contents": {"en": "Contents", "fi": "Sisältö"},
    # Totals at a glance
    "glance": {"en": "At a glance", "fi": "Yleiskuva"},
    "glance_text": {
        "en": "{expire} records are due, {held} are held, {problems} policies have problems.",
        "fi": "Säilytysaika on päättynyt {expire} tietueelta, {held} on pidossa, "
        "{problems} säännössä on ongelmia.",
    },
    # Summary
    "summary": {
        "en": "Summary by register and policy",
        "fi": "Yhteenveto rekistereittäin ja säännöittäin",
    },
    "register": {"en": "Register", "fi": "Rekisteri"},
    "controller": {"en": "Controller", "fi": "Rekisterinpitäjä"},
    "records_plan": {"en": "Records plan / source", "fi": "Tiedonohjaus / lähde"},
    "statutory": {
        "en": "Statutory register: erasure requests are refused.",
        "fi": "Lakisääteinen rekisteri: poistopyyntöjä ei toteuteta.",
    },
    "not_in_catalog": {
        "en": "(no longer in the catalog)",
        "fi": "(ei enää luettelossa)",
    },
    "policy": {"en": "Policy", "fi": "Sääntö"},
    "action": {"en": "Action", "fi": "Toimenpide"},
    "legal_basis": {"en": "Legal basis", "fi": "Oikeusperuste"},
    "rule": {"en": "Rule", "fi": "Säilytyssääntö"},
    "status": {"en": "Status", "fi": "Tila"},
    "total": {"en": "Total", "fi": "Yhteensä"},
    "count_scanned": {"en": "Records", "fi": "Tietueita"},
    "count_expire": {"en": "Due", "fi": "Poistuu"},
    "count_retain": {"en": "Kept", "fi": "Säilytetään"},
    "count_held": {"en": "Held", "fi": "Pidossa"},
    "count_done": {"en": "Done", "fi": "Käsitelty"},
    "legend": {
        "en": "Records: how many the policy governs. Due: the retention period has ended and "
        "the action will be applied. Kept: not yet due, or kept by an exception of the rule. "
        "Held: due, but a hold stops the action. Done: disposed of by an earlier run.",
        "fi": "Tietueita: säännön piiriin kuuluvien tietueiden määrä. Poistuu: säilytysaika "
        "on päättynyt ja toimenpide tehdään. Säilytetään: säilytysaika ei ole päättynyt tai "
        "säännön poikkeus pitää tietueen. Pidossa: säilytysaika on päättynyt, mutta pito "
        "estää toimenpiteen. Käsitelty: käsitelty jo aiemmassa ajossa.",
    },
    # Forecast chart
    "forecast": {
        "en": "Falling due in the coming 12 months",
        "fi": "Säilytysaika päättyy seuraavien 12 kuukauden aikana",
    },
    "forecast_text": {
        "en": "Records not yet due, by the month their retention period ends, per register. "
        "Counted in the sources when this report was written, with the cutoffs a run uses "
        "(the same numbers as retention forecast). The first month is the rest of {month}.",
        "fi": "Tietueet, joiden säilytysaika ei ole vielä päättynyt, päättymiskuukauden "
        "mukaan rekistereittäin. Laskettu lähdejärjestelmistä raportin laatimishetkellä "
        "samoin rajoin kuin ajossa (samat luvut kuin retention forecast -komennolla). "
        "Ensimmäinen sarake ({month}) kattaa kuluvan kuukauden loppuosan.",
    },
    "forecast_none": {
        "en": "Nothing falls due in these months.",
        "fi": "Näinä kuukausina minkään tietueen säilytysaika ei pääty.",
    },
    "forecast_not_counted": {
        "en": "Not counted for this plan (an erasure request has no schedule).",
        "fi": "Ei laskettu tälle suunnitelmalle (poistopyynnöllä ei ole aikataulua).",
    },
    "chart_title": {
        "en": "Records falling due per month, stacked by register",
        "fi": "Päättyvät säilytysajat kuukausittain, rekisterit pinottuina",
    },
    "axis_month": {"en": "Month", "fi": "Kuukausi"},
    "axis_records": {"en": "Records", "fi": "Tietueita"},
    "chart_table": {
        "en": "The chart's numbers per policy",
        "fi": "Kaavion luvut säännöittäin",
    },
    # Due and held records
    "due_records": {"en": "Due records", "fi": "Tietueet, joiden säilytysaika on päättynyt"},
    "due_text": {
        "en": "Records whose retention period has ended and to which the policy's action "
        "will be applied, by key.",
        "fi": "Tietueet avaimittain, joiden säilytysaika on päättynyt ja joihin säännön "
        "toimenpide kohdistuu.",
    },
    "held_records": {"en": "Held records", "fi": "Pidossa olevat tietueet"},
    "held_text": {
        "en": "Due records that a hold (a legal hold or a restriction of processing) keeps "
        "from the action.",
        "fi": "Tietueet, joiden säilytysaika on päättynyt, mutta pito (oikeudellinen pito tai "
        "käsittelyn rajoitus) estää toimenpiteen.",
    },
    "key": {"en": "Key", "fi": "Avain"},
    "decision": {"en": "Decision", "fi": "Päätös"},
    "trigger_date": {"en": "Trigger date", "fi": "Laskennan alkupäivä"},
    "expires_on": {"en": "Due from", "fi": "Erääntymispäivä"},
    "hold": {"en": "Hold", "fi": "Pito"},
    "hold_reason": {"en": "Reason for the hold", "fi": "Pidon syy"},
    "secret_row": {
        "en": "secret person: key and decision only",
        "fi": "salassa pidettävä henkilö: vain avain ja päätös",
    },
    "no_due": {
        "en": "No records are due.",
        "fi": "Ei tietueita, joiden säilytysaika on päättynyt.",
    },
    "no_held": {"en": "No records are held.", "fi": "Ei pidossa olevia tietueita."},
    "not_shown": {
        "en": "{hidden} more records are not shown here: the first {shown} of {total} are.",
        "fi": "Tässä näytetään {total} tietueesta ensimmäiset {shown}; {hidden} tietuetta "
        "jätettiin pois.",
    },
    "full_list_written": {
        "en": "Every record is listed in the report written with this page:",
        "fi": "Kaikki tietueet luetellaan tämän sivun kanssa kirjoitetussa raportissa:",
    },
    "full_list_how": {
        "en": "Every record is listed in the JSON and CSV reports: "
        "retention plan --report plan.html --report plan.csv writes this page and the full "
        "list from one plan.",
        "fi": "Kaikki tietueet luetellaan JSON- ja CSV-raporteissa: "
        "retention plan --report plan.html --report plan.csv kirjoittaa tämän sivun ja "
        "täydellisen luettelon samasta suunnitelmasta.",
    },
    # Problems
    "problems": {"en": "Problems", "fi": "Havaitut ongelmat"},
    "no_problems": {
        "en": "No problems: every policy was planned.",
        "fi": "Ei ongelmia: kaikki säännöt käsiteltiin.",
    },
    "message": {"en": "Message", "fi": "Viesti"},
    "forecast_failed": {
        "en": "the forecast could not be counted: {message}",
        "fi": "ennustetta ei voitu laskea: {message}",
    },
    "footer": {
        "en": "Records are named by key only; no personal data appears in this report.",
        "fi": "Tietueet yksilöidään vain avaimella; raportissa ei ole henkilötietoja.",
    },
    # Values of the plan
    "action_anonymise": {"en": "anonymise", "fi": "anonymisoidaan"},
    "action_delete": {"en": "delete", "fi": "poistetaan"},
    "action_archive": {"en": "archive", "fi": "arkistoidaan"},
    "action_review": {"en": "review", "fi": "tarkastetaan"},
    "decision_expire": {"en": "due", "fi": "poistuu"},
    "decision_held": {"en": "held", "fi": "pidossa"},
    "decision_retain": {"en": "kept", "fi": "säilytetään"},
    "decision_done": {"en": "done", "fi": "käsitelty"},
    "status_planned": {"en": "planned", "fi": "suunniteltu"},
    "status_completed": {"en": "completed", "fi": "valmis"},
    "status_failed": {"en": "failed", "fi": "epäonnistui"},
    "status_partial": {"en": "partial", "fi": "osittain"},
    "status_stopped": {"en": "stopped", "fi": "pysäytetty"},
    "status_interrupted": {"en": "interrupted", "fi": "keskeytetty"},
    "status_skipped": {"en": "skipped", "fi": "ohitettu"},
}


class Messages:
    """The report's strings in one language: ``t("title")``, ``t("approved", by=..., on=...)``."""

    def __init__(self, language: Language) -> None:
        self.language = language

    def __call__(self, message_id: str, **values: object) -> str:
        text = MESSAGES[message_id][self.language]
        return text.format(**values) if values else text

    def word(self, kind: str, value: str) -> str:
        """A plan value (an action, decision or status) in this language, or as it is."""
        entry = MESSAGES.get(f"{kind}_{value}")
        return entry[self.language] if entry else value

    def number(self, value: int) -> str:
        """1,234 in English; 1 234 (a no-break space) in Finnish."""
        grouped = f"{value:,}"
        return grouped.replace(",", "\u00a0") if self.language == "fi" else grouped


_ACTION_FI: Final = {
    "anonymise": "anonymisoidaan", "delete": "poistetaan", "archive": "arkistoidaan",
    "review": "tarkastetaan", "keep": "säilytetään",
}  # fmt: skip


def describe_rule_fi(policy: Policy) -> str:
    """:meth:`Policy.describe_rule` in Finnish: the rule in one sentence."""
    action = _ACTION_FI[policy.action]
    if policy.until is not None:
        return f"säilytetään {policy.until.isoformat()} asti, sitten {action}"
    if len(policy.trigger) == 1:
        column = f"sarakkeen {policy.trigger[0]}"
    else:
        which = "myöhäisimmän" if policy.trigger_rule == "latest" else "aikaisimman"
        column = f"sarakkeista {', '.join(policy.trigger)} {which}"
    year_end = policy.count_from == "year_end"
    start = f"{column} päivän vuoden lopusta" if year_end else f"{column} päivästä"
    then = ""
    if policy.then and policy.then != "keep":
        then = f", sen jälkeen {_ACTION_FI[policy.then]}"
    unless = "".join(f"; paitsi jos {_unless_fi(u)}" for u in policy.unless)
    assert policy.retain is not None  # a rule without until has trigger and retain
    if policy.retain.permanent or policy.retain.duration is None:
        return f"pysyvästi säilytettävä: {action} {start} alkaen{then}{unless}"
    return f"{_period_fi(policy.retain.duration)} {start}, sitten {action}{then}{unless}"


def _period_fi(duration: Duration) -> str:
    """P10Y6M as "10 vuotta 6 kuukautta", P0D as "0 päivää"."""
    parts = [
        f"{n} {one if n == 1 else many}"
        for n, one, many in (
            (duration.years, "vuosi", "vuotta"),
            (duration.months, "kuukausi", "kuukautta"),
            (duration.days, "päivä", "päivää"),
        )
        if n
    ]
    return " ".join(parts) or "0 päivää"


def _unless_fi(unless: Unless) -> str:
    if unless.not_empty:
        return f"{unless.column} ei ole tyhjä"
    if unless.in_ is not None:
        return f"{unless.column} on jokin arvoista {list(unless.in_)}"
    return f"{unless.column} = {unless.equals!r}"
