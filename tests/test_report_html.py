"""The HTML plan report as written: self-contained, bilingual, escaped, capped, and telling the
same numbers as the JSON report and ``retention forecast``."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention import api
from retention.errors import UsageError
from retention.i18n import LANGUAGES, MESSAGES, Messages, describe_rule_fi
from retention.reports import report_html
from retention.reports.chart import nice_step, stacked_bars
from retention.reports.formats import write_report
from retention.state.database import plan_policies, plans
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET
from tests.pagedom import PageDom, json_counts
from tests.test_cli import SqliteCatalog, make_catalog

TEMPLATE = Path(report_html.__file__).parent / "templates" / "plan.html.j2"
ENV = {"RETENTION_SECRET": SECRET}
#: A composite key made of markup: it must reach the page as text, never as HTML.
NASTY_KEY = ("<b>&'", '</td><i>"x')


def add_rows(source_url: str) -> None:
    """Alumni falling due over the coming months, and a due contract whose key is markup."""
    engine = sa.create_engine(source_url)
    md = sa.MetaData()
    md.reflect(engine, only=["alumni", "contracts"])
    ends = ["2026-12-01", "2027-03-15", "2027-03-31", "2027-04-01", "2027-06-30", "2027-06-30"]
    with engine.begin() as conn:
        conn.execute(md.tables["alumni"].insert(), [
            {"id": 100 + i, "kind": "alumni", "turvakielto": 0,
             "membership_ended_on": dt.date.fromisoformat(day)}
            for i, day in enumerate(ends)
        ])  # fmt: skip
        conn.execute(md.tables["contracts"].insert(), [
            {"site": NASTY_KEY[0], "case_no": NASTY_KEY[1], "contract_type": "customer",
             "ended_on": dt.date(2014, 5, 1)},
            {"site": "HQ", "case_no": "C-9", "contract_type": "customer",
             "ended_on": dt.date(2016, 8, 1)},
        ])  # fmt: skip
    engine.dispose()


@pytest.fixture
def sq(tmp_path: Path) -> SqliteCatalog:
    """A SQLite catalog with the conftest rows and :func:`add_rows`."""
    cat = make_catalog(tmp_path / "sq")
    add_rows(cat.source_url)
    return cat


def plan_page(
    root: Path, out: Path, lang: str | None = None, more: tuple[Path, ...] = ()
) -> tuple[str, str]:
    """Plan as of AS_OF into ``out``; the page's text and the plan id."""
    with Workspace.open(root, ENV) as ws:
        plan, _ = api.plan(ws, as_of=AS_OF, report=out, lang=lang, more_reports=more)
    return out.read_text(encoding="utf-8"), plan.plan_id


# --- self-contained ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_page_loads_nothing_from_anywhere(sq: SqliteCatalog, tmp_path: Path, lang: str) -> None:
    """No http(s) URL, script, stylesheet link, image, @import or url() is in the page."""
    html, _ = plan_page(sq.root, tmp_path / "plan.html", lang)
    assert "<svg" in html and "<style>" in html
    assert not re.search(r"https?:", html, re.IGNORECASE)
    for banned in ("<script", "<link", "<img", "<iframe", "@import", "url(", "src="):
        assert banned not in html.lower(), banned


# --- languages --------------------------------------------------------------------------------


def test_every_message_speaks_english_and_finnish_with_the_same_placeholders() -> None:
    """Each message id has a non-empty text in both languages, with the same {placeholders}."""
    for message_id, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), message_id
        assert all(text.strip() for text in texts.values()), message_id
        fields = {lang: set(re.findall(r"{(\w+)}", text)) for lang, text in texts.items()}
        assert fields["en"] == fields["fi"], message_id


def test_finnish_words_are_the_glossarys() -> None:
    """docs/glossary.md fixes one Finnish term per concept: the words a records manager found
    translated (*pito* for a hold, *erääntymispäivä*, *luettelo* for the catalog, *poistuu*
    for an anonymised record) are gone, and each concept reads as the glossary says."""
    glossary = (Path(__file__).parent.parent / "docs" / "glossary.md").read_text("utf-8")
    rejected = re.compile(r"\b(pito|pidossa|pidon|erääntym\w*|poistuu|käsitelty|avaimittain)\b")
    for message_id, texts in MESSAGES.items():
        found = rejected.search(texts["fi"].lower())
        assert found is None, (message_id, found.group(0) if found else None)
    terms = {
        "hold": "pidätys", "held_records": "pidätetyt", "expires_on": "säilytysaika päättyy",
        "catalog": "säilytyssäännöstö", "policy": "säilytyssääntö", "count_expire":
        "säilytysaika päättynyt", "records_plan": "tiedonohjaussuunnitelma", "controller":
        "rekisterinpitäjä", "cert_title": "hävittämispöytäkirja", "key": "tunniste",
        "job": "ajastus", "action_archive": "siirretään arkistoon",
    }  # fmt: skip
    for message_id, term in terms.items():
        assert term in MESSAGES[message_id]["fi"].lower(), message_id
        assert term in glossary.lower(), term


def test_the_template_uses_only_known_message_ids() -> None:
    """Every t("…") and t.word(kind, …) in the template names a message that exists."""
    source = TEMPLATE.read_text(encoding="utf-8")
    used = set(re.findall(r"""\bt\(\s*["'](\w+)["']\s*[,)]""", source))
    used |= {f"count_{name}" for name in report_html.COUNTS}
    assert len(used) > 30
    assert used <= set(MESSAGES), used - set(MESSAGES)
    for kind in re.findall(r"""t\.word\(\s*["'](\w+)["']""", source):
        assert any(m.startswith(f"{kind}_") for m in MESSAGES), kind


@pytest.mark.parametrize(
    ("lang", "title", "heading"),
    [
        ("en", "Retention plan", "Held records"),
        ("fi", "Toimeenpanosuunnitelma", "Pidätetyt tietueet"),
    ],
)
def test_language_chooses_the_words(
    sq: SqliteCatalog, tmp_path: Path, lang: str, title: str, heading: str
) -> None:
    """--lang chooses the page's language: its lang attribute, title and headings."""
    html, _ = plan_page(sq.root, tmp_path / "plan.html", lang)
    page = PageDom(html)
    assert f'<html lang="{lang}">' in html
    assert page.headings["h1"] == [title] and heading in page.headings["h2"]
    other = "fi" if lang == "en" else "en"
    assert MESSAGES["due_records"][other] not in page.headings["h2"]


def test_catalog_setting_chooses_the_language_and_lang_overrides_it(
    sq: SqliteCatalog, tmp_path: Path
) -> None:
    """report_language: fi in retention.yaml makes Finnish the default; --lang en wins."""
    settings = sq.root / "retention.yaml"
    settings.write_text(settings.read_text() + "report_language: fi\n", encoding="utf-8")
    default, _ = plan_page(sq.root, tmp_path / "default.html")
    english, _ = plan_page(sq.root, tmp_path / "english.html", "en")
    assert PageDom(default).headings["h1"] == ["Toimeenpanosuunnitelma"]
    assert PageDom(english).headings["h1"] == ["Retention plan"]


def test_lang_without_an_html_report_is_refused_before_planning(
    sq: SqliteCatalog, tmp_path: Path
) -> None:
    """--lang with only a JSON report is a usage error, and no plan is stored."""
    with Workspace.open(sq.root, ENV) as ws:
        with pytest.raises(UsageError, match="--lang"):
            api.plan(ws, as_of=AS_OF, report=tmp_path / "plan.json", lang="fi")
        with ws.state.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(plans)) == 0
    assert not (tmp_path / "plan.json").exists()


def test_finnish_numbers_are_grouped_with_a_space_english_with_a_comma() -> None:
    """1234567 is 1,234,567 in English and 1 234 567 (no-break spaces) in Finnish."""
    assert Messages("en").number(1234567) == "1,234,567"
    assert Messages("fi").number(1234567) == "1\u00a0234\u00a0567"


def test_finnish_page_says_the_rule_in_finnish(sq: SqliteCatalog, tmp_path: Path) -> None:
    """The rule that decided is said in Finnish when the catalog still holds that exact rule."""
    html, _ = plan_page(sq.root, tmp_path / "plan.html", "fi")
    assert "10 vuotta sarakkeen ended_on päivän vuoden lopusta, sitten poistetaan" in html
    assert "säilytetään 2022-06-30 asti, sitten poistetaan" in html
    with Workspace.open(sq.root, ENV) as ws:
        (bound,) = ws.catalog.select(["alumni-membership"])
    assert describe_rule_fi(bound.policy) == (
        "0 päivää sarakkeen membership_ended_on päivästä, sitten anonymisoidaan"
    )


# --- what a record may show -------------------------------------------------------------------


def test_keys_are_escaped_text(sq: SqliteCatalog, tmp_path: Path) -> None:
    """A key made of markup appears as text: escaped in the source, intact when parsed."""
    html, _ = plan_page(sq.root, tmp_path / "plan.html")
    assert NASTY_KEY[1] not in html and "<b>&'" not in html
    assert "&lt;/td&gt;&lt;i&gt;" in html
    rows = PageDom(html).record_rows[("due", "xamk-alumni", "customer-contracts")]
    assert [json.dumps(list(NASTY_KEY), ensure_ascii=False), "2014-05-01", "2025-01-01"] in rows


def test_secret_person_shows_key_and_decision_only(sq: SqliteCatalog, tmp_path: Path) -> None:
    """Alumnus 6 (turvakielto) is listed by key and decision; none of its dates is on the page."""
    html, _ = plan_page(sq.root, tmp_path / "plan.html")
    rows = PageDom(html).record_rows[("due", "xamk-alumni", "alumni-membership")]
    (secret,) = [r for r in rows if r[0] == "6"]
    assert secret == ["6", "due — secret person: key and decision only"]
    assert "2016-02-29" not in html and "2026-02-28" not in html


def test_held_record_shows_its_hold_and_reason(sq: SqliteCatalog, tmp_path: Path) -> None:
    """A held record is listed with the hold's id and its (escaped) reason."""
    with Workspace.open(sq.root, ENV) as ws:
        hold = api.place_hold(ws, reason="Riita-asia <2026/17>", placed_by="rm",
                              policy="customer-contracts", record=["HQ", "C-1"]).hold  # fmt: skip
    html, _ = plan_page(sq.root, tmp_path / "plan.html")
    rows = PageDom(html).record_rows[("held", "xamk-alumni", "customer-contracts")]
    assert rows == [['["HQ", "C-1"]', "2015-12-31", "2026-01-01", hold.hold_id,
                     "Riita-asia <2026/17>"]]  # fmt: skip
    assert "Riita-asia &lt;2026/17&gt;" in html


def test_long_lists_stop_at_the_limit_and_point_to_the_full_report(
    sq: SqliteCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the limit a table says how many rows it leaves out and links the CSV written with it."""
    monkeypatch.setattr(report_html, "HTML_RECORD_LIMIT", 2)
    csv_report = tmp_path / "plan.csv"
    html, _ = plan_page(sq.root, tmp_path / "plan.html", more=(csv_report,))
    page = PageDom(html)
    assert len(page.record_rows[("due", "amkoodari", "interviewees")]) == 2
    assert len(page.record_rows[("due", "xamk-alumni", "customer-contracts")]) == 2
    # three due interviewees, alumni and customer contracts each; project contracts: one
    assert re.findall(r'data-hidden="(\d+)"', html) == ["1", "1", "1"]
    assert "1 more records are not shown here: the first 2 of 3 are." in html
    assert '<a class="file" href="plan.csv">plan.csv</a>' in html
    assert csv_report.is_file() and len(csv_report.read_text().splitlines()) == 1 + 10
    alone, _ = plan_page(sq.root, tmp_path / "alone.html")
    assert "--report plan.html --report plan.csv" in alone and 'class="file"' not in alone


# --- the numbers ------------------------------------------------------------------------------


def test_summary_numbers_equal_the_json_report_on_every_backend(
    catalog: Path, tmp_path: Path, environ: dict[str, str]
) -> None:
    """Page and JSON written from one plan show the same counts, per policy and in total."""
    with Workspace.open(catalog, environ) as ws:
        plan, _ = api.plan(ws, as_of=AS_OF, report=tmp_path / "plan.html",
                           more_reports=[tmp_path / "plan.json"])  # fmt: skip
    doc = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    page = PageDom((tmp_path / "plan.html").read_text(encoding="utf-8"))
    assert doc["plan_id"] == plan.plan_id
    assert page.summary == json_counts(doc)
    totals = {k: sum(c[k] for c in json_counts(doc).values()) for k in report_html.COUNTS}
    assert page.glance == totals and totals["expire"] == 9
    assert page.register_totals["xamk-alumni"]["expire"] == 6
    due = {key[1:]: len(rows) for key, rows in page.record_rows.items() if key[0] == "due"}
    assert due == {k: c["expire"] for k, c in json_counts(doc).items() if c["expire"]}


def forecast_command(root: Path) -> dict[str, dict[str, int]]:
    """`retention forecast --as-of AS_OF` as printed: policy → month → count."""
    env = {"PATH": os.environ.get("PATH", ""), **ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "retention", "forecast", "--catalog", str(root),
         "--as-of", AS_OF.isoformat(), "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    printed: dict[str, dict[str, int]] = json.loads(proc.stdout)["policies"]
    return printed


def test_chart_and_retention_forecast_count_the_same(sq: SqliteCatalog, tmp_path: Path) -> None:
    """The chart's bars (per register) and its table (per policy) are `retention forecast`'s."""
    html, _ = plan_page(sq.root, tmp_path / "plan.html")
    page = PageDom(html)
    printed = forecast_command(sq.root)
    assert len(printed) == 4 and sum(sum(m.values()) for m in printed.values()) == 9
    assert {f"{r}/{p}": months for (r, p), months in page.forecast.items()} == printed
    per_register: dict[tuple[str, str], int] = {}
    for name, months in printed.items():
        for month, n in months.items():
            if n:
                key = (name.split("/")[0], month)
                per_register[key] = per_register.get(key, 0) + n
    assert {(r, m): n for r, m, n in page.bars} == per_register
    assert per_register[("xamk-alumni", "2027-01")] == 2  # HQ C-2 and C-9 ended in 2016: due 1 Jan
    assert per_register[("xamk-alumni", "2027-03")] == 2


def test_problems_name_failed_and_stopped_policies(sq: SqliteCatalog, tmp_path: Path) -> None:
    """A policy stored as failed or stopped is listed under Problems with its message."""
    with Workspace.open(sq.root, ENV) as ws:
        plan, _ = api.plan(ws, as_of=AS_OF)
        c = plan_policies.c
        with ws.state.begin() as conn:
            for policy, status, message in [
                ("project-contracts", "failed", "source crm: table <contracts> is gone"),
                ("interviewees", "stopped", "stop requested"),
            ]:
                conn.execute(
                    sa.update(plan_policies)
                    .where(c.plan_id == plan.plan_id, c.policy == policy)
                    .values(status=status, message=message)
                )
        write_report(ws, plan.plan_id, tmp_path / "plan.html")
    html = (tmp_path / "plan.html").read_text(encoding="utf-8")
    problems = html[html.index('id="problems"') : html.index('id="forecast"')]
    assert "xamk-alumni/project-contracts" in problems and "failed" in problems
    assert "table &lt;contracts&gt; is gone" in problems
    assert "amkoodari/interviewees" in problems and "stop requested" in problems
    assert "alumni-membership" not in problems


def test_an_unreachable_source_leaves_the_forecast_out_and_says_so(
    sq: SqliteCatalog, tmp_path: Path
) -> None:
    """A source lost after planning: the page is still written, and Problems name the gap."""
    with Workspace.open(sq.root, ENV) as ws:
        plan, _ = api.plan(ws, as_of=AS_OF)
    sq.source.unlink()
    with Workspace.open(sq.root, ENV) as ws:
        write_report(ws, plan.plan_id, tmp_path / "plan.html")
    html = (tmp_path / "plan.html").read_text(encoding="utf-8")
    page = PageDom(html)
    assert page.bars == [] and page.summary
    assert html.count("the forecast could not be counted") == 4  # every enabled policy


# --- the chart's geometry ---------------------------------------------------------------------


def test_nice_steps_are_round() -> None:
    """Axis steps are 1, 2 or 5 times a power of ten, at most five to the top."""
    assert [nice_step(n) for n in (1, 5, 6, 11, 48, 51, 1234)] == [1, 1, 2, 5, 10, 20, 500]


def test_stacked_bars_sit_on_each_other_in_proportion() -> None:
    """Each column's bars stack from the axis up, heights proportional to their values."""
    chart = stacked_bars(["a", "b"], {"r0": [0, 0], "r1": [3, 0], "r2": [1, 4]})
    assert [name for name, _ in chart.legend] == ["r1", "r2"]
    assert chart.maximum == 4 and [t.value for t in chart.ticks] == [0, 1, 2, 3, 4]
    first = [b for b in chart.bars if b.label == "a"]
    assert [(b.series, b.value) for b in first] == [("r1", 3), ("r2", 1)]
    assert first[0].y + first[0].height == pytest.approx(chart.bottom)
    assert first[1].y + first[1].height == pytest.approx(first[0].y)
    assert first[0].height == pytest.approx(3 * first[1].height)
    (only,) = [b for b in chart.bars if b.label == "b"]
    assert only.y == pytest.approx(chart.top) and [c.total for c in chart.columns] == [4, 4]


def test_erasure_dry_run_page_has_no_forecast(sq: SqliteCatalog, tmp_path: Path) -> None:
    """`erase --dry-run --report x.html`: the person's due records, no schedule chart."""
    with Workspace.open(sq.root, ENV) as ws:
        outcome = api.erase(ws, "010190-900A", as_of=AS_OF, dry_run=True)
        assert outcome.plan is not None
        write_report(ws, outcome.plan.plan_id, tmp_path / "erase.html")
    html = (tmp_path / "erase.html").read_text(encoding="utf-8")
    assert MESSAGES["erasure_subtitle"]["en"] in html
    assert MESSAGES["forecast_not_counted"]["en"] in html and "<rect" not in html
    assert PageDom(html).record_rows[("due", "xamk-alumni", "alumni-membership")][0][0] == "1"
    assert "010190-900A" not in html and "Aino" not in html


def test_record_rows_page_through_the_state_database_and_stop_at_the_limit(
    sq: SqliteCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read two rows a query, the rows come whole and in order; a limit stops mid-page."""
    from retention.reports import report

    with Workspace.open(sq.root, ENV) as ws:
        plan, _ = api.plan(ws, as_of=AS_OF)
        every = [r["key"] for r, _ in report.plan_rows(ws, plan.plan_id, "xamk-alumni",
                                                       "alumni-membership")]  # fmt: skip
        monkeypatch.setattr(report, "_PAGE", 2)
        paged = [r["key"] for r, _ in report.plan_rows(ws, plan.plan_id, "xamk-alumni",
                                                       "alumni-membership")]  # fmt: skip
        limited = list(report.plan_rows(ws, plan.plan_id, "xamk-alumni", "alumni-membership",
                                        ["expire"], limit=3))  # fmt: skip
    assert every == paged and sorted(every) == ["1", "2", "6"]  # in the plan's own order
    secret = {"1": False, "2": False, "6": True}  # row 6 is a secret person
    assert [(r["key"], s) for r, s in limited] == [(key, secret[key]) for key in every]
