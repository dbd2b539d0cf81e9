"""Read the numbers a person sees on the HTML plan report, with the standard library only.

Works on the page as written and on the DOM a browser dumps after rendering it, so a test can
hold the page's visible numbers against the JSON report and ``retention forecast``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any


def number(text: str) -> int:
    """A count as the page writes it: 1,234 / 1 234 / "·" for none."""
    digits = re.sub(r"\D", "", text)
    return int(digits) if digits else 0


class PageDom(HTMLParser):
    """The summary cells, chart bars, chart table, glance totals and headings of one page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.summary: dict[tuple[str, str], dict[str, int]] = {}
        self.register_totals: dict[str, dict[str, int]] = {}
        self.forecast: dict[tuple[str, str], dict[str, int]] = {}
        self.bars: list[tuple[str, str, int]] = []
        self.bar_titles: list[str] = []
        self.glance: dict[str, int] = {}
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self.svg_ids: list[str] = []
        self.record_rows: dict[tuple[str, str, str], list[list[str]]] = {}
        """(``held`` or ``due``, register, policy) → the cells of each record row."""
        self._table: dict[str, str] = {}
        self._row: dict[str, str] | None = None
        self._cell: dict[str, str] | None = None
        self._capture: str | None = None
        self._text: list[str] = []
        self._cells: list[str] | None = None
        self._header = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a
        elif tag == "tr":
            self._row = a
            if "records" in self._table.get("class", "").split():
                self._cells = []
        elif tag in ("td", "th") and self._row is not None:
            self._header = self._header or tag == "th"
            self._cell, self._capture, self._text = a, "cell", []
        elif tag == "li" and "data-count" in a:
            self._cell, self._capture, self._text = a, "glance", []
        elif tag in self.headings:
            self._capture, self._text = tag, []
        elif tag == "svg":
            self.svg_ids.append(a.get("id", ""))
        elif tag == "rect" and "bar" in a.get("class", "").split():
            self.bars.append((a["data-register"], a["data-month"], int(a["data-count"])))
        elif tag == "title" and self.bars and len(self.bar_titles) < len(self.bars):
            self._capture, self._text = "bar-title", []

    def handle_data(self, data: str) -> None:
        if self._capture:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        text = " ".join("".join(self._text).split())
        if tag in ("td", "th") and self._capture == "cell":
            self._end_cell(text)
            self._capture = None
        elif tag == "li" and self._capture == "glance" and self._cell is not None:
            self.glance[self._cell["data-count"]] = number(text.split()[0])
            self._capture = None
        elif tag in self.headings and self._capture == tag:
            self.headings[tag].append(text)
            self._capture = None
        elif tag == "title" and self._capture == "bar-title":
            self.bar_titles.append(text)
            self._capture = None
        elif tag == "tr":
            if self._cells and not self._header:
                t = self._table
                key = (t["data-list"], t["data-register"], t["data-policy"])
                self.record_rows.setdefault(key, []).append(self._cells)
            self._cells, self._row, self._header = None, None, False

    def _end_cell(self, text: str) -> None:
        cell, row = self._cell or {}, self._row or {}
        if self._cells is not None:
            self._cells.append(text)
        if "summary" in self._table.get("class", "").split() and "data-count" in cell:
            if row.get("data-policy"):
                key = (row["data-register"], row["data-policy"])
                self.summary.setdefault(key, {})[cell["data-count"]] = number(text)
            elif row.get("data-total") == "register":
                totals = self.register_totals.setdefault(row["data-register"], {})
                totals[cell["data-count"]] = number(text)
        if self._table.get("id") == "forecast-table" and "data-month" in cell:
            key = (row["data-register"], row["data-policy"])
            self.forecast.setdefault(key, {})[cell["data-month"]] = number(text)


def json_counts(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, int]]:
    """The JSON report's counts in the shape :attr:`PageDom.summary` has."""
    return {(p["register"], p["policy"]): dict(p["counts"]) for p in doc["policies"]}
