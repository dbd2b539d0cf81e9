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

from retention.destruction import COLUMNS, HEADINGS, Counts, Document, stamp

#: The text cell that starts a register/policy row; its six numbers follow the six headings.
ROW_MARK = "Policy "
TOTAL_MARK = "Total certificates: "
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
    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        self._title = title
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, latin1(f"{self._title} - page {self.page_no()}/{{nb}}"), align="C")


def render_pdf(doc: Document, path: Path) -> None:
    pdf = _Pdf(f"Certificate of destruction, {doc.file}")
    pdf.set_compression(False)
    pdf.set_creation_date(doc.exported_at)
    pdf.set_title("Certificate of destruction")
    pdf.set_subject(latin1(f"{doc.scope}, {doc.period}"))
    pdf.set_creator("retention")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, "Certificate of destruction", new_x="LMARGIN", new_y="NEXT")
    _pairs(pdf, [("Period", doc.period), ("Scope", doc.scope),
                 ("Exported at", stamp(doc.exported_at)),
                 ("Certificates", f"{doc.count} in {doc.companion}")])  # fmt: skip

    _heading(pdf, "Disposals by register and policy")
    if not doc.policies:
        _text(pdf, "No records were disposed of in this period.")
    width = pdf.epw / len(HEADINGS)
    for p in doc.policies:
        if pdf.will_page_break(24):
            pdf.add_page()
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 6, latin1(ROW_MARK + p.name), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 8)
        for heading in HEADINGS:
            pdf.cell(width, 5, heading, border=1, align="R", fill=False)
        pdf.ln()
        pdf.set_font("Helvetica", "", 10)
        counts = p.counts()
        for column in COLUMNS:
            pdf.cell(width, 6, str(counts[column]), border=1, align="R")
        pdf.ln()
        _text(pdf, f"Legal basis: {p.legal_basis}", size=8)
        pdf.ln(2)

    _heading(pdf, "Run history")
    _table(pdf, ("Run", "Job", "Started", "Finished", "Status", "Certificates"),
           (0.2, 0.16, 0.2, 0.2, 0.12, 0.12),
           [(r.run_id, r.job or "", stamp(r.started_at), stamp(r.finished_at), r.status,
             str(r.certificates)) for r in doc.runs],
           "No runs in this period.")  # fmt: skip

    _heading(pdf, "Approval history")
    _table(pdf, ("Plan", "Kind", "As of", "Approved by", "Approved at", "Comment"),
           (0.19, 0.08, 0.12, 0.18, 0.2, 0.23),
           [(a.plan_id, a.kind, stamp(a.as_of), a.approved_by or "not approved",
             stamp(a.approved_at), a.comment or "") for a in doc.approvals],
           "No plans in this period.")  # fmt: skip
    if doc.approvers:
        named = ", ".join(f"{name} ({n})" for name, n in doc.approvers)
        _text(pdf, f"Certificates naming their approver: {named}.")
    else:
        _text(pdf, "No certificate names an approver.")

    _heading(pdf, "Chain evidence")
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, f"{TOTAL_MARK}{doc.count}", new_x="LMARGIN", new_y="NEXT")
    chain: list[tuple[str, str]] = []
    if doc.count:
        chain.append(("Ledger sequence", f"{doc.first_seq} to {doc.last_seq}"))
        chain.append(("First hash", str(doc.first_hash)))
        chain.append(("Last hash", str(doc.last_hash)))
    chain.append(("Signing key id", doc.key_id))
    chain.append(("Certificates file", doc.companion))
    chain.append(("Its sha256", doc.companion_sha256))
    chain.append(("Manifest", doc.manifest))
    _pairs(pdf, chain)
    if doc.checkpoints:
        pdf.ln(1)
        _table(pdf, ("Checkpoint of run", "Sequence", "Count", "Signed at"),
               (0.3, 0.25, 0.15, 0.3),
               [(str(cp.get("run_id")), f"{cp.get('first_seq')} to {cp.get('last_seq')}",
                 str(cp.get("count")), str(cp.get("signed_at"))) for cp in doc.checkpoints],
               "")  # fmt: skip

    _heading(pdf, "Verification")
    _text(pdf, doc.statement)

    if pdf.will_page_break(70):
        pdf.add_page()
    _heading(pdf, "Signed")
    _text(pdf, "I confirm that the records summarised above were disposed of as stated.")
    pdf.ln(4)
    for label in ("Name", "Title", "Date", "Signature"):
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(30, 10, label)
        pdf.cell(pdf.epw - 30, 10, "", border="B", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    path.write_bytes(bytes(pdf.output()))


def read_pdf_counts(path: Path) -> tuple[int | None, Counts]:
    """The total and per-policy numbers a PDF rendered by :func:`render_pdf` prints."""
    shown = [_unescape(m.group(1)) for m in _SHOWN.finditer(path.read_bytes())]
    total: int | None = None
    counts: Counts = {}
    for at, text in enumerate(shown):
        if text.startswith(TOTAL_MARK):
            total = _number(text[len(TOTAL_MARK) :])
        elif text.startswith(ROW_MARK) and "/" in text:
            numbers = shown[at + 1 + len(HEADINGS) : at + 1 + 2 * len(HEADINGS)]
            values = [_number(n) for n in numbers]
            counts[text[len(ROW_MARK) :]] = {
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
    for label, value in pairs:
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(38, 5, latin1(label))
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
    try:
        return int(text.strip())
    except ValueError:
        return None
