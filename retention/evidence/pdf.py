"""The certificate of destruction as a PDF, and the numbers it prints read back.

Rendered with fpdf2 (pure Python, no browser) in its core Helvetica and Courier fonts, whose
Latin-1 covers Finnish ä, ö and å; any other character is spelled in ASCII or replaced by
``?``. The file is deterministic: its creation date is the export time, and its content
streams are left uncompressed, so ``verify`` can read the printed counts back with a regular
expression instead of a PDF library.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from fpdf import FPDF

from retention.evidence.destruction import (
    COLUMNS,
    HEADINGS,
    Counts,
    Document,
    PolicyTally,
    stamp,
)
from retention.i18n import LANGUAGES, MESSAGES, Messages

#: The text cells that start a register/policy row, one per language; its six numbers follow
#: the six headings. The total is printed after one of the total marks.
ROW_MARKS = tuple(MESSAGES["cert_row_mark"][lang] for lang in LANGUAGES)
TOTAL_MARKS = tuple(MESSAGES["cert_total_mark"][lang] for lang in LANGUAGES)
_SPELLED = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"',
            "\u201d": '"', "\u2026": "...", "\u00a0": " ", "\u202f": " "}  # fmt: skip
_SHOWN = re.compile(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj", re.DOTALL)
_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def latin1(text: str) -> str:
    """``text`` in characters the core fonts have: Latin-1 (ä, ö, å stay as they are)."""
    out = []
    for char in text:
        char = _SPELLED.get(char, char)
        if len(char) == 1 and ord(char) > 0xFF:
            char = unicodedata.normalize("NFKD", char)
            char = "".join(c for c in char if ord(c) <= 0xFF and not unicodedata.combining(c))
        out.append(char or "?")
    return "".join(out)


class _Pdf(FPDF):
    def __init__(self, title: str, t: Messages) -> None:
        super().__init__(format="A4")
        self._title, self._t = title, t
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        page = f"{self.page_no()}/{{nb}}"
        self.cell(0, 5, latin1(self._t("cert_page", title=self._title, page=page)), align="C")


def render_pdf(doc: Document, path: Path) -> None:
    t = doc.t
    title = t("cert_title")
    pdf = _Pdf(f"{title}, {doc.file}", t)
    pdf.set_compression(False)
    pdf.set_creation_date(doc.exported_at)
    pdf.set_title(latin1(title))
    pdf.set_lang(doc.language)
    pdf.set_subject(latin1(f"{doc.scope}, {doc.period}"))
    pdf.set_creator("retention")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, latin1(title), new_x="LMARGIN", new_y="NEXT")
    _pairs(pdf, [(t("cert_period"), doc.period), (t("cert_scope"), doc.scope),
                 (t("cert_exported_at"), stamp(doc.exported_at)),
                 (t("cert_certificates"),
                  f"{t.number(doc.count)} {t('cert_in_file')} {doc.companion}")])  # fmt: skip

    _heading(pdf, t("cert_disposals"))
    if not doc.policies:
        _text(pdf, t("cert_no_disposals"))
    width = pdf.epw / len(HEADINGS)
    grouped = doc.by_plan_class()
    for label, group in grouped:
        if label or len(grouped) > 1:  # a hävitysluettelo lists disposals by plan class
            if pdf.will_page_break(30):
                pdf.add_page()
            pdf.set_font("Helvetica", "B", 11)
            shown = label or t("cert_no_plan_class")
            pdf.multi_cell(0, 6, latin1(f"{t('cert_plan_class')}: {shown}"),
                           new_x="LMARGIN", new_y="NEXT")  # fmt: skip
        for p in group:
            _policy_counts(pdf, t, p, width)

    if doc.policies:
        _heading(pdf, t("cert_changed"))
        for register, entry, group in doc.by_register():
            pdf.set_font("Helvetica", "B", 11)
            gone = t("cert_not_in_catalog")
            name = f"{entry.name} ({register})" if entry else f"{register} {gone}"
            pdf.multi_cell(0, 6, latin1(name), new_x="LMARGIN", new_y="NEXT")
            if entry is not None:
                _pairs(pdf, [(t("cert_controller"), entry.controller),
                             (t("cert_records_plan"), entry.source)])  # fmt: skip
            for p in group:
                pdf.set_font("Helvetica", "B", 9)
                pdf.cell(0, 5, latin1(p.name), new_x="LMARGIN", new_y="NEXT")
                for sentence in doc.changed(p):
                    _text(pdf, f"- {sentence}", size=8)
                pdf.ln(1)

    _heading(pdf, t("cert_runs"))
    if not doc.runs:
        _text(pdf, t("cert_no_runs"))
    for r in doc.runs:  # three lines a run: ids stay whole, a year of nightly runs stays short
        if pdf.will_page_break(16):
            pdf.add_page()
        pdf.set_font("Helvetica", "B", 9)
        head = (f"{t('cert_run')} {r.run_id} - {t.word('run_status', r.status)} - "
                f"{t('cert_count')}: {t.number(r.certificates)}")  # fmt: skip
        pdf.cell(0, 5, latin1(head), new_x="LMARGIN", new_y="NEXT")
        if r.executed_plan:
            approval = (
                f"{t('cert_executed_plan')}: {r.executed_plan} - {t('cert_approved_by')}"
                f": {r.approved_by} - {t('cert_approved_at')}: {stamp(r.approved_at)}"
            )
        else:
            approval = t("cert_unapproved")
        _text(pdf, approval, size=8)
        times = [f"{t('cert_started')}: {stamp(r.started_at)}",
                 f"{t('cert_finished')}: {stamp(r.finished_at)}"]  # fmt: skip
        if r.job:
            times.insert(0, f"{t('cert_job')}: {r.job}")
        _text(pdf, " - ".join(times), size=8)
        pdf.ln(1.5)

    _heading(pdf, t("cert_approvals"))
    _text(pdf, t("cert_approvals_text"), size=8)
    pdf.ln(1)
    _table(pdf, (t("cert_plan"), t("cert_as_of"), t("cert_approved_by"), t("cert_approved_at"),
                 t("cert_comment"), t("cert_executed_by")),
           (0.18, 0.1, 0.17, 0.17, 0.2, 0.18),
           [(a.plan_id, stamp(a.as_of), a.approved_by or "", stamp(a.approved_at),
             a.comment or "", a.executed_run or t("cert_not_executed"))
            for a in doc.approvals],
           t("cert_no_approvals"))  # fmt: skip
    if doc.approvers:
        _text(pdf, t("cert_approvers", names=doc.approver_list))
    else:
        _text(pdf, t("cert_no_approvers"))

    _heading(pdf, t("cert_chain"))
    pdf.set_font("Helvetica", "B", 10)
    total = latin1(f"{t('cert_total_mark')}{t.number(doc.count)}")
    pdf.cell(0, 6, total, new_x="LMARGIN", new_y="NEXT")
    chain: list[tuple[str, str]] = []
    if doc.count:
        chain.append((t("cert_sequence"), t("cert_range", first=doc.first_seq,
                                             last=doc.last_seq)))  # fmt: skip
        chain.append((t("cert_first_hash"), str(doc.first_hash)))
        chain.append((t("cert_last_hash"), str(doc.last_hash)))
    chain.append((t("cert_key_id"), doc.key_id))
    chain.append((t("cert_file"), doc.companion))
    chain.append((t("cert_file_sha256"), doc.companion_sha256))
    chain.append((t("cert_manifest"), doc.manifest))
    _pairs(pdf, chain)
    if doc.checkpoints:
        pdf.ln(1)
        _table(pdf, (t("cert_checkpoint_run"), t("cert_checkpoint_sequence"),
                     t("cert_checkpoint_count"), t("cert_checkpoint_signed")),
               (0.3, 0.25, 0.15, 0.3),
               [(str(cp.get("run_id")),
                 t("cert_range", first=cp.get("first_seq"), last=cp.get("last_seq")),
                 str(cp.get("count")), str(cp.get("signed_at"))) for cp in doc.checkpoints],
               "")  # fmt: skip

    _heading(pdf, t("cert_verification"))
    _text(pdf, doc.statement)

    if pdf.will_page_break(70):
        pdf.add_page()
    _heading(pdf, t("cert_signed"))
    _text(pdf, t("cert_confirm"))
    pdf.ln(4)
    for label in ("cert_name", "cert_role", "cert_date", "cert_signature"):
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(35, 10, latin1(t(label)))
        pdf.cell(pdf.epw - 35, 10, "", border="B", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    _text(pdf, t("cert_footer"), size=8)
    path.write_bytes(bytes(pdf.output()))


def _policy_counts(pdf: Any, t: Messages, p: PolicyTally, width: float) -> None:
    """One policy's row of counts, with its legal basis."""
    if pdf.will_page_break(24):
        pdf.add_page()
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, latin1(t("cert_row_mark") + p.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    for heading in HEADINGS:
        pdf.cell(width, 5, latin1(t(heading)), border=1, align="R", fill=False)
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    counts = p.counts()
    for column in COLUMNS:
        pdf.cell(width, 6, latin1(t.number(counts[column])), border=1, align="R")
    pdf.ln()
    basis = p.legal_basis or t("cert_no_basis")
    _text(pdf, f"{t('cert_legal_basis')}: {basis}", size=8)
    pdf.ln(2)


def read_pdf_counts(path: Path) -> tuple[int | None, Counts]:
    """The total and per-policy numbers a PDF rendered by :func:`render_pdf` prints, in
    either language: the marks of every language are recognised, and a number may be
    grouped (1,234 or 1 234)."""
    shown = [_unescape(m.group(1)) for m in _SHOWN.finditer(path.read_bytes())]
    total: int | None = None
    counts: Counts = {}
    for at, text in enumerate(shown):
        total_mark = next((m for m in TOTAL_MARKS if text.startswith(m)), None)
        row_mark = next((m for m in ROW_MARKS if text.startswith(m)), None)
        if total_mark is not None:
            total = _number(text[len(total_mark) :])
        elif row_mark is not None and "/" in text:
            numbers = shown[at + 1 + len(HEADINGS) : at + 1 + 2 * len(HEADINGS)]
            values = [_number(n) for n in numbers]
            counts[text[len(row_mark) :]] = {
                c: v for c, v in zip(COLUMNS, values, strict=False) if v is not None
            }
    return total, counts


def _heading(pdf: FPDF, text: str) -> None:
    if pdf.will_page_break(20):
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, latin1(text), border="B", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _text(pdf: FPDF, text: str, size: float = 10) -> None:
    pdf.set_font("Helvetica", "", size)
    pdf.multi_cell(0, size * 0.5, latin1(text), align="L", new_x="LMARGIN", new_y="NEXT")


def _pairs(pdf: FPDF, pairs: list[tuple[str, str]]) -> None:
    pdf.set_font("Helvetica", "B", 9)
    width = max([38.0, *(pdf.get_string_width(latin1(label)) + 3 for label, _ in pairs)])
    for label, value in pairs:
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(width, 5, latin1(label))
        pdf.set_font("Courier" if _hexlike(value) else "Helvetica", "", 9)
        pdf.multi_cell(0, 5, latin1(value), new_x="LMARGIN", new_y="NEXT")


def _table(
    pdf: FPDF,
    headings: tuple[str, ...],
    shares: tuple[float, ...],
    rows: list[tuple[str, ...]],
    empty: str,
) -> None:
    if not rows:
        if empty:
            _text(pdf, empty)
        return
    pdf.set_font("Helvetica", "", 8)
    with pdf.table(
        col_widths=shares, text_align="LEFT", line_height=4.5, first_row_as_headings=True
    ) as table:
        for cells in [headings, *rows]:
            row: Any = table.row()
            for cell in cells:
                row.cell(latin1(cell))


def _hexlike(value: str) -> bool:
    return len(value) >= 16 and all(c in "0123456789abcdef" for c in value)


def _unescape(raw: bytes) -> str:
    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return _ESCAPES.get(code, b"" if code in (b"\n", b"\r") else code)

    return _ESCAPE.sub(one, raw).decode("latin-1")


def _number(text: str) -> int | None:
    """A printed count: 1234, 1,234 or 1 234."""
    try:
        return int("".join(text.replace(",", "").split()))
    except ValueError:
        return None
