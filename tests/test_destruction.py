"""Certificates of destruction (.html, .pdf): the numbers they print, and their verification."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pypdf
import pytest
from freezegun import freeze_time

from retention import api
from retention.errors import UsageError
from retention.evidence import signing
from retention.evidence.certificate import canonical
from retention.evidence.destruction import COLUMNS, read_html_counts, stamp
from retention.evidence.export import companion_path, manifest_path
from retention.evidence.pdf import latin1, read_pdf_counts
from retention.workspace import Workspace
from tests.conftest import AS_OF, SECRET, build_sources, write_catalog

BASIS = "GDPR 6(1)(f) — jäsenrekisteri, säilytys § 2"  # an em dash is not Latin-1; ä and § are


def ledger_counts(ws: Workspace, register: str | None = None) -> dict[str, dict[str, int]]:
    """What the ledger itself says, counted the plain way, for comparison with a document."""
    counts: dict[str, Counter[str]] = {}
    for cert in ws.ledger.iter_certificates(register=register):
        tally = counts.setdefault(f"{cert['register']}/{cert['policy']}", Counter())
        tally[cert["action"]] += 1
        tally[cert["reason"]] += 1
        tally["total"] += 1
    return {name: {c: tally[c] for c in COLUMNS} for name, tally in counts.items()}


def sqlite_catalog(base: Path) -> Path:
    """A ready SQLite catalog whose alumni policy names :data:`BASIS`."""
    base.mkdir(parents=True, exist_ok=True)
    source = f"sqlite:///{base / 'source.db'}"
    build_sources(source)
    return name_basis(write_catalog(base / "catalog", source, f"sqlite:///{base / 'state.db'}"))


def name_basis(root: Path, legal_basis: str = BASIS) -> Path:
    """Give the catalog's alumni policy ``legal_basis`` (with characters outside ASCII)."""
    policies = root / "policies" / "xamk.yaml"
    text = policies.read_text(encoding="utf-8")
    policies.write_text(text.replace('"GDPR 6(1)(f)"', json.dumps(legal_basis)), encoding="utf-8")
    return root


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


def resign(path: Path, key_path: Path) -> None:
    """Re-sign a document's manifest over its current bytes, as a faulty exporter would."""
    import hashlib

    mpath = manifest_path(path)
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    manifest["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    body = {k: v for k, v in manifest.items() if k != "signature"}
    manifest["signature"] = signing.sign(signing.load_private(key_path), canonical(body))
    mpath.write_text(json.dumps(manifest), encoding="utf-8")


def test_html_and_pdf_print_the_ledgers_counts_history_and_statement(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """Both documents print the ledger's counts, every run and approval, and verify."""
    with Workspace.open(name_basis(catalog), environ) as ws:
        made, _ = api.plan(ws, as_of=AS_OF)
        approval = api.approve(ws, made.plan_id, by="Tietosuojavastaava Mäki",
                               comment="hyväksytty")  # fmt: skip
        first = api.run_plan(ws, made.plan_id, as_of=AS_OF)
        second = api.run(ws, as_of=AS_OF)  # disposes of nothing: still part of the history
        expected = ledger_counts(ws)
        html = api.export(ws, tmp_path / "out" / "destruction.html")
        pdf = api.export(ws, tmp_path / "out" / "destruction.pdf")
        html_report = api.verify_file(tmp_path / "out" / "destruction.html", ws.public_key_path)
        pdf_report = api.verify_file(tmp_path / "out" / "destruction.pdf", ws.public_key_path)
        key_id = signing.key_id(signing.load_public(ws.public_key_path))
    assert second.disposed == 0
    assert expected["xamk-alumni/alumni-membership"]["anonymised"] == 3
    assert sum(c["total"] for c in expected.values()) == 9
    assert html_report.ok, html_report.faults
    assert pdf_report.ok, pdf_report.faults
    assert html["count"] == pdf["count"] == 9 and html["counts"] == pdf["counts"] == expected

    doc = tmp_path / "out" / "destruction.html"
    assert read_html_counts(doc) == (9, expected)
    page = doc.read_text(encoding="utf-8")
    for text in (first.run_id, second.run_id, made.plan_id, "Tietosuojavastaava Mäki",
                 "hyväksytty", stamp(approval.approved_at), "@media print",
                 "These 9 certificates", f"public key whose id is {key_id}",
                 "retention verify destruction.html --public-key", "Signature"):  # fmt: skip
        assert text in page, text
    assert "<script" not in page and "http" not in page.split("<body>")[1]  # self-contained

    out = tmp_path / "out" / "destruction.pdf"
    assert out.read_bytes().startswith(b"%PDF-")
    assert read_pdf_counts(out) == (9, expected)
    text = " ".join(pdf_text(out).split())
    for fragment in (
        "Certificate of destruction", "Policy xamk-alumni/alumni-membership",
        "Deleted Anonymised Archived Retention Erasure request Total", "0 3 0 3 0 3",
        "GDPR 6(1)(f) - jäsenrekisteri, säilytys § 2", first.run_id, second.run_id,
        "Tietosuojavastaava Mäki", "Total certificates: 9", "These 9 certificates",
        f"whose id is {key_id}", "retention verify destruction.pdf --public-key",
        "Name", "Title", "Date", "Signature",
    ):  # fmt: skip
        assert fragment in text, fragment
    companion = companion_path(out)
    lines = companion.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 9 and pdf["certificates"]["file"] == companion.name  # type: ignore[index]


def test_register_filter_and_empty_period(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """--register keeps one register's rows; a period with no disposals still verifies as 0."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        expected = ledger_counts(ws, register="amkoodari")
        one = api.export(ws, tmp_path / "one.pdf", register="amkoodari")
        empty = api.export(ws, tmp_path / "empty.html", date(2001, 1, 1), date(2001, 12, 31))
        reports = [api.verify_file(tmp_path / n, ws.public_key_path) for n in
                   ("one.pdf", "empty.html")]  # fmt: skip
    assert all(r.ok for r in reports), [r.faults for r in reports]
    assert list(expected) == ["amkoodari/interviewees"] and one["counts"] == expected
    assert read_pdf_counts(tmp_path / "one.pdf") == (3, expected)
    assert "xamk-alumni" not in pdf_text(tmp_path / "one.pdf")
    assert empty["count"] == 0 and empty["counts"] == {}
    assert read_html_counts(tmp_path / "empty.html") == (0, {})
    page = (tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "No records were disposed of in this period." in page
    assert "No runs in this period." in page and "These 0 certificates" in page
    assert companion_path(tmp_path / "empty.html").read_bytes() == b""


def test_pdf_is_byte_for_byte_repeatable_and_latin1(tmp_path: Path) -> None:
    """The same ledger exported at the same moment gives the same PDF (its date is the export's)."""
    root = sqlite_catalog(tmp_path / "sq")
    with Workspace.open(root, {"RETENTION_SECRET": SECRET}) as ws:
        api.run(ws, as_of=AS_OF)
        with freeze_time("2026-11-30 08:15:00"):
            api.export(ws, tmp_path / "a" / "destruction.pdf")
            api.export(ws, tmp_path / "b" / "destruction.pdf")
        with freeze_time("2026-12-01 08:15:00"):
            api.export(ws, tmp_path / "c" / "destruction.pdf")
    a, b, c = ((tmp_path / n / "destruction.pdf").read_bytes() for n in "abc")
    assert a == b and a != c
    assert b"/CreationDate (D:20261130081500Z" in a
    assert latin1("Väinö Åström — “x” ÿ 日") == 'Väinö Åström - "x" ÿ ?'


@pytest.mark.parametrize("lang", ["en", "fi"])
@pytest.mark.parametrize("suffix", [".html", ".pdf"])
def test_document_verifies_alone_in_a_fresh_directory_and_names_each_altered_file(
    suffix: str, lang: str, tmp_path: Path
) -> None:
    """Only the export files and the public key, no catalog: exit 0 in either language (the
    numbers are read back from the Finnish document as from the English one); one byte
    changed in the document, its certificates or its manifest: exit 1 naming that file."""
    root = sqlite_catalog(tmp_path / "sq")
    out = tmp_path / "made" / f"destruction{suffix}"
    with Workspace.open(root, {"RETENTION_SECRET": SECRET}) as ws:
        api.run(ws, as_of=AS_OF)
        expected = ledger_counts(ws)
        api.export(ws, out, lang=lang)
    reader = read_html_counts if suffix == ".html" else read_pdf_counts
    assert reader(out) == (9, expected)
    shown = out.read_text(encoding="utf-8") if suffix == ".html" else pdf_text(out)
    title = {"en": "Certificate of destruction", "fi": "Hävittämispöytäkirja"}
    assert title[lang] in shown and title["en" if lang == "fi" else "fi"] not in shown
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    files = [out, companion_path(out), manifest_path(out)]
    for path in files:
        shutil.copyfile(path, auditor / path.name)
    shutil.copyfile(root / "keys" / "signing.pub.pem", auditor / "key.pub.pem")
    cmd = [sys.executable, "-m", "retention", "verify", out.name, "--public-key", "key.pub.pem"]

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, cwd=auditor, env={}, capture_output=True, text=True, check=False, timeout=60
        )

    ok = verify()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"verified export {out.name}: 9 certificates, 1 checkpoints" in ok.stdout
    assert not (auditor / "retention-state.db").exists()  # no state database was made
    for path in files:
        copy = auditor / path.name
        original = copy.read_bytes()
        at = len(original) // 2
        copy.write_bytes(original[:at] + bytes([original[at] ^ 0x01]) + original[at + 1 :])
        bad = verify()
        copy.write_bytes(original)
        assert bad.returncode == 1, (path.name, bad.stdout, bad.stderr)
        assert f"FAIL {path.name}" in bad.stdout, (path.name, bad.stdout)
        assert "FAILED export" in bad.stdout
    (auditor / companion_path(out).name).unlink()
    gone = verify()
    assert gone.returncode == 1 and f"{companion_path(out).name} is missing" in gone.stdout


@pytest.mark.parametrize(
    ("suffix", "old", "new"),
    [
        (".html", b'data-count="anonymised">3<', b'data-count="anonymised">4<'),
        (".pdf", b"(Total certificates: 9) Tj", b"(Total certificates: 8) Tj"),
    ],
)
def test_printed_numbers_that_differ_from_the_certificates_fail_even_when_signed(
    suffix: str, old: bytes, new: bytes, tmp_path: Path
) -> None:
    """A document whose printed numbers are not its certificates' fails, though it is signed."""
    root = sqlite_catalog(tmp_path / "sq")
    out = tmp_path / f"destruction{suffix}"
    with Workspace.open(root, {"RETENTION_SECRET": SECRET}) as ws:
        api.run(ws, as_of=AS_OF)
        api.export(ws, out)
        key_path, pub_path = ws.key_path, ws.public_key_path
    content = out.read_bytes()
    assert content.count(old) == 1
    out.write_bytes(content.replace(old, new))
    resign(out, key_path)
    report = api.verify_file(out, pub_path)
    assert len(report.faults) == 1, report.faults
    fault = report.faults[0]
    assert fault.startswith(f"{out.name}: prints")
    assert ("anonymised 4" in fault) if suffix == ".html" else ("prints 8 certificates" in fault)


def test_unknown_suffix_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """--out FILE.docx: exit 2 naming the file, and no file, manifest or state appears."""
    root = sqlite_catalog(tmp_path / "sq")
    out = tmp_path / "audit" / "destruction.docx"
    proc = subprocess.run(
        [sys.executable, "-m", "retention", "certificates", "export", "--catalog", str(root),
         "--out", str(out)],
        cwd=tmp_path, env={}, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "destruction.docx" in proc.stderr and ".pdf" in proc.stderr
    assert not (tmp_path / "audit").exists()
    with Workspace.open(root, {}) as ws, pytest.raises(UsageError, match="unknown export"):
        api.export(ws, tmp_path / "x.txt")
    assert not (tmp_path / "x.txt").exists()


def run_row(page: str, run_id: str) -> str:
    """The text of the run history row of ``run_id``, tags stripped, spaces collapsed."""
    import re

    found = re.search(rf'<tr data-run="{run_id}">(.*?)</tr>', page, re.DOTALL)
    assert found is not None, run_id
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_each_run_names_the_approved_plan_it_executed_and_its_approver(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """approve + run --plan: the run's row names that plan, its approver and approval time, in
    the HTML and the PDF; a run without an approved plan says so; a run's internal plan is
    never listed as an approval."""
    with Workspace.open(catalog, environ) as ws:
        made, _ = api.plan(ws, as_of=AS_OF)
        approved = api.approve(ws, made.plan_id, by="Tietosuojavastaava Mäki",
                               comment="tarkastettu")  # fmt: skip
        executed = api.run_plan(ws, made.plan_id, as_of=AS_OF)
        scheduled = api.run(ws, job="nightly", as_of=AS_OF)
        api.export(ws, tmp_path / "destruction.html")
        api.export(ws, tmp_path / "destruction.pdf")
        reports = [api.verify_file(tmp_path / n, ws.public_key_path)
                   for n in ("destruction.html", "destruction.pdf")]  # fmt: skip
    assert all(r.ok for r in reports), [r.faults for r in reports]
    assert executed.disposed == 9 and executed.plan_id != made.plan_id
    approved_at = stamp(approved.approved_at)

    page = (tmp_path / "destruction.html").read_text(encoding="utf-8")
    row = run_row(page, executed.run_id)
    for text in (made.plan_id, "Tietosuojavastaava Mäki", approved_at, "9"):
        assert text in row, (text, row)
    assert "not approved" not in row
    unapproved = run_row(page, scheduled.run_id)
    assert "not approved" in unapproved and "nightly" in unapproved
    assert "Tietosuojavastaava" not in unapproved
    for internal in (executed.plan_id, scheduled.plan_id):  # the runs' own records of decisions
        assert internal not in page.split('id="approvals"')[1]
    approvals = page.split('id="approvals"')[1].split("</table>")[0]
    assert made.plan_id in approvals and executed.run_id in approvals
    assert "tarkastettu" in approvals

    text = " ".join(pdf_text(tmp_path / "destruction.pdf").split())
    history = text.split("Run history")[1].split("Approval history")[0]
    first, second = history.index(executed.run_id), history.index(scheduled.run_id)
    assert first < second
    row_text = history[first:second]
    for fragment in (made.plan_id, "Tietosuojavastaava Mäki", approved_at):
        assert fragment in row_text, (fragment, row_text)
    assert "not approved" in history[second:]
    approval_text = text.split("Approval history")[1].split("Chain evidence")[0]
    assert made.plan_id in approval_text and executed.run_id in approval_text
    assert executed.plan_id not in approval_text and scheduled.plan_id not in approval_text


def test_language_comes_from_lang_else_report_language(tmp_path: Path) -> None:
    """`certificates export` speaks report_language (here fi) unless --lang says otherwise;
    an unknown language exits 2 before anything is written."""
    root = sqlite_catalog(tmp_path / "sq")
    settings = root / "retention.yaml"
    settings.write_text(settings.read_text() + "report_language: fi\n", encoding="utf-8")
    with Workspace.open(root, {"RETENTION_SECRET": SECRET}) as ws:
        api.run(ws, as_of=AS_OF)

    def export(name: str, *more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "retention", "certificates", "export", "--catalog",
             str(root), "--out", str(tmp_path / name), *more],
            cwd=tmp_path, env={"RETENTION_SECRET": SECRET}, capture_output=True, text=True,
            check=False, timeout=60,
        )  # fmt: skip

    assert export("default.html").returncode == 0
    assert export("english.html", "--lang", "en").returncode == 0
    refused = export("swedish.html", "--lang", "sv")
    assert refused.returncode == 2 and not (tmp_path / "swedish.html").exists()
    default = (tmp_path / "default.html").read_text(encoding="utf-8")
    english = (tmp_path / "english.html").read_text(encoding="utf-8")
    assert '<html lang="fi">' in default and "Hävitetyt tiedot rekistereittäin" in default
    assert '<html lang="en">' in english and "Disposals by register and policy" in english
    assert read_html_counts(tmp_path / "default.html") == read_html_counts(
        tmp_path / "english.html"
    )


def test_the_certificate_uses_only_known_message_ids() -> None:
    """Every t("…") of the certificate's template and PDF names a message in both languages."""
    import re

    from retention.i18n import MESSAGES

    evidence = Path(__file__).parent.parent / "retention" / "evidence"
    sources = [evidence / "templates" / "destruction.html.j2", evidence / "pdf.py"]
    used: set[str] = set()
    for source in sources:
        used |= set(re.findall(r"""\bt\(\s*["'](\w+)["']\s*[,)]""", source.read_text()))
    assert len(used) > 30 and all(m.startswith("cert_") for m in used), used
    assert used <= set(MESSAGES), used - set(MESSAGES)
