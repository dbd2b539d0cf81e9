"""The HTML plan report in a real browser: headless Chromium renders it, prints it, and the
numbers it shows are the JSON report's and `retention forecast`'s.

CI installs Chromium (Debian's ``chromium``), so these run there; a machine without it skips
them and says why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import AS_OF, SECRET
from tests.pagedom import PageDom, json_counts
from tests.test_cli import SqliteCatalog, make_catalog
from tests.test_report_html import NASTY_KEY, add_rows, forecast_command

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="no chromium on PATH (CI installs Debian's chromium package)",
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
)  # fmt: skip


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once with a throw-away profile; fail loudly if it fails."""
    assert CHROMIUM is not None, "CI must have chromium: .ci/run installs it"
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def retention(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "RETENTION_SECRET": SECRET}
    proc = subprocess.run(
        [sys.executable, "-m", "retention", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One plan written as English HTML and JSON, another as Finnish HTML, by the real CLI."""
    base = tmp_path_factory.mktemp("browser")
    cat: SqliteCatalog = make_catalog(base / "sq")
    add_rows(cat.source_url)
    retention("hold", "add", "--catalog", cat.root, "--policy", "customer-contracts",
              "--record", "HQ", "--record", "C-1", "--reason", "Riita-asia 17/2026")  # fmt: skip
    day = AS_OF.isoformat()
    out = base / "reports"
    proc = retention("plan", "--catalog", cat.root, "--as-of", day, "--report", out / "plan.html",
                     "--report", out / "plan.json")  # fmt: skip
    assert f"report: {out / 'plan.json'}" in proc.stdout.replace("\n", "")
    retention("plan", "--catalog", cat.root, "--as-of", day, "--report", out / "plan-fi.html",
              "--lang", "fi")  # fmt: skip
    return {"en": out / "plan.html", "json": out / "plan.json", "fi": out / "plan-fi.html",
            "catalog": cat.root, "profile": base / "profile"}  # fmt: skip


def rendered(reports: dict[str, Path], lang: str) -> PageDom:
    """The DOM Chromium built from the page, after layout and parsing."""
    proc = chromium(reports["profile"], "--dump-dom", reports[lang].as_uri())
    assert "<html" in proc.stdout
    return PageDom(proc.stdout)


def test_browser_renders_the_chart_with_its_bars(reports: dict[str, Path]) -> None:
    """The forecast SVG is in the rendered DOM with one bar per register and month due."""
    page = rendered(reports, "en")
    assert "forecast-chart" in page.svg_ids
    assert len(page.bars) >= 5 and all(n > 0 for _, _, n in page.bars)
    assert page.bar_titles[0].startswith("xamk-alumni · 2026-11")


def test_numbers_on_the_rendered_page_are_the_json_reports(reports: dict[str, Path]) -> None:
    """Summary cells, totals and record rows as the browser shows them equal the JSON report."""
    doc = json.loads(reports["json"].read_text(encoding="utf-8"))
    page = rendered(reports, "en")
    counts = json_counts(doc)
    assert page.summary == counts
    assert page.glance == {k: sum(c[k] for c in counts.values()) for k in page.glance}
    assert page.glance["held"] == 1 and page.glance["expire"] == 9
    for policy in doc["policies"]:
        key = (policy["register"], policy["policy"])
        due = [r for r in policy["records"] if r["decision"] == "expire"]
        shown = page.record_rows.get(("due", *key), [])
        assert [row[0] for row in shown] == [
            r["key"] if isinstance(r["key"], str) else json.dumps(r["key"], ensure_ascii=False)
            for r in due
        ]
    assert json.dumps(list(NASTY_KEY), ensure_ascii=False) in {
        row[0] for row in page.record_rows[("due", "xamk-alumni", "customer-contracts")]
    }


def test_rendered_chart_counts_what_retention_forecast_prints(reports: dict[str, Path]) -> None:
    """The chart's table in the browser is `retention forecast`, policy by policy and month."""
    page = rendered(reports, "en")
    printed = forecast_command(reports["catalog"])
    assert {f"{r}/{p}": months for (r, p), months in page.forecast.items()} == printed
    bar_total = sum(n for _, _, n in page.bars)
    assert bar_total == sum(sum(m.values()) for m in printed.values()) > 0


def test_finnish_page_renders_finnish_headings(reports: dict[str, Path]) -> None:
    """--lang fi: the browser shows Finnish title and section headings."""
    page = rendered(reports, "fi")
    assert page.headings["h1"] == ["Toimeenpanosuunnitelma"]
    assert "Yhteenveto rekistereittäin ja säilytyssäännöittäin" in page.headings["h2"]
    assert "Pidätetyt tietueet" in page.headings["h2"]
    assert "Summary by register and policy" not in page.headings["h2"]


def test_page_prints_to_a_pdf_of_several_pages(reports: dict[str, Path]) -> None:
    """Printing works: a PDF comes out, one page per section at least (page breaks)."""
    pdf = reports["en"].with_suffix(".pdf")
    chromium(reports["profile"], "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
             reports["en"].as_uri())  # fmt: skip
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert pages >= 5  # summary, problems, forecast, held, due: each starts a page


def test_page_screenshot_is_drawn(reports: dict[str, Path]) -> None:
    """A screenshot of the page is a real PNG: the page lays out without errors."""
    png = reports["fi"].with_suffix(".png")
    chromium(reports["profile"], "--window-size=1200,1600", f"--screenshot={png}",
             reports["fi"].as_uri())  # fmt: skip
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
