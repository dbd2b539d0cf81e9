"""The real command line, run as a subprocess so exit codes, streams and files are the real ones.

Most tests build a small SQLite catalog of their own (fast); one test runs plan → run → verify
on every backend. Each command gets an explicit environment holding only ``PATH`` (and
``RETENTION_SECRET`` where the command needs it), never the developer's shell.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention.state.database import certificates, plans
from tests.conftest import AS_OF, SECRET, build_sources, write_catalog
from tests.terminal import on_terminal

PROJECT = Path(__file__).resolve().parents[1]
DAY = AS_OF.isoformat()
POLICY_NAMES = (
    "amkoodari/interviewees",
    "xamk-alumni/alumni-membership",
    "xamk-alumni/customer-contracts",
    "xamk-alumni/project-contracts",
)
# Every personal value of the conftest source data that a log line could leak.
PERSONAL = (
    *("Aino", "Eero", "Helmi", "Onni", "Väinö", "Lumi", "Kalle", "Ville", "Elli"),
    *(f"{n}@example.fi" for n in ("aino", "eero", "helmi", "onni", "vaino", "lumi")),
    *("010190-900A", "020291-901B", "030392-902C", "040493-903D", "050594-904E", "060695-905F"),
)
PLAN_ID = re.compile(r"\bP\d{8}-[0-9a-f]{8}\b")
RUN_ID = re.compile(r"\bR\d{8}-[0-9a-f]{8}\b")
HOLD_ID = re.compile(r"\bH-[0-9a-f]{8}\b")


@dataclass(frozen=True)
class SqliteCatalog:
    """A catalog on SQLite files: the catalog directory, its source file and its state file."""

    root: Path
    source: Path
    state: Path

    @property
    def source_url(self) -> str:
        return f"sqlite:///{self.source}"

    @property
    def state_url(self) -> str:
        return f"sqlite:///{self.state}"


def make_catalog(base: Path, max_alumni: int = 100) -> SqliteCatalog:
    """Fill a fresh SQLite source and write a ready catalog (state and key) beside it."""
    base.mkdir(parents=True, exist_ok=True)
    cat = SqliteCatalog(base / "catalog", base / "source.db", base / "state.db")
    build_sources(cat.source_url)
    write_catalog(cat.root, cat.source_url, cat.state_url, max_alumni=max_alumni)
    return cat


@pytest.fixture
def sq(tmp_path: Path) -> SqliteCatalog:
    """A ready SQLite catalog in ``tmp_path/sq``."""
    return make_catalog(tmp_path / "sq")


def env(secret: str | None = SECRET) -> dict[str, str]:
    """The whole environment a command sees: PATH, and the secret unless it is None."""
    out = {"PATH": os.environ.get("PATH", os.defpath)}
    if secret is not None:
        out["RETENTION_SECRET"] = secret
    return out


def retention(
    *args: str | Path,
    cwd: Path,
    environ: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m retention ARGS`` and return the finished process (never raises on exit)."""
    return subprocess.run(
        [sys.executable, "-m", "retention", *map(str, args)],
        cwd=cwd,
        env=env() if environ is None else environ,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def on(
    cat: SqliteCatalog, *args: str | Path, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command against ``cat`` with ``--catalog`` (it must follow the subcommand)."""
    head, tail = _split_subcommand(args)
    return retention(*head, "--catalog", cat.root, *tail, cwd=cat.root.parent, environ=environ)


def _split_subcommand(args: tuple[str | Path, ...]) -> tuple[list[str | Path], list[str | Path]]:
    groups = {"hold", "certificates"}
    n = 2 if args and args[0] in groups else 1
    return list(args[:n]), list(args[n:])


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(url: str, table: str) -> list[dict[str, Any]]:
    """Every row of ``table``, ordered by its primary key."""
    engine = sa.create_engine(url)
    try:
        md = sa.MetaData()
        t = sa.Table(table, md, autoload_with=engine)
        with engine.connect() as conn:
            query = sa.select(t).order_by(*t.primary_key.columns)
            return [dict(r) for r in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def count(url: str, table: sa.Table) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
    finally:
        engine.dispose()


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes, to prove a directory was left alone."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# --- help -------------------------------------------------------------------------------------


def test_help_lists_every_command(tmp_path: Path) -> None:
    """`retention --help` exits 0 and names every command of the CLI."""
    proc = retention("--help", cwd=tmp_path, environ=env(None))
    assert proc.returncode == 0, explain(proc)
    for command in ("init", "check", "plan", "run", "hold", "certificates", "verify", "demo"):
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.MULTILINE), command


def test_subcommand_help_describes_its_options(tmp_path: Path) -> None:
    """`retention plan --help` exits 0 and documents --catalog, --policy, --as-of and --report."""
    proc = retention("plan", "--help", cwd=tmp_path, environ=env(None))
    assert proc.returncode == 0, explain(proc)
    for option in ("--catalog", "--job", "--policy", "--as-of", "--report"):
        assert option in proc.stdout


# --- check ------------------------------------------------------------------------------------


def test_check_accepts_a_valid_catalog(sq: SqliteCatalog) -> None:
    """`check` on a valid catalog exits 0 and summarises policies, connectors and jobs."""
    proc = on(sq, "check", environ=env(None))
    assert proc.returncode == 0, explain(proc)
    assert "is valid: 4 policies, 1 connectors, 1 jobs" in proc.stdout
    for name in POLICY_NAMES:
        assert f"ok  {name}:" in proc.stdout


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_check_lists_every_static_problem_with_file_line_policy_and_key(sq: SqliteCatalog) -> None:
    """An unknown key in one file and a bad duration in another: exit 2, both on stderr, located."""
    _edit(
        sq.root / "policies" / "amkoodari.yaml",
        "    action: delete\n",
        "    action: delete\n    colour: blue\n",
    )
    _edit(sq.root / "policies" / "xamk.yaml", "retain: P10Y", "retain: ten years")
    proc = on(sq, "check", environ=env(None))
    assert proc.returncode == 2, explain(proc)
    assert "2 problems in the catalog" in proc.stderr
    assert re.search(
        r"policies/amkoodari\.yaml:\d+: policy interviewees: key 'colour': unknown key", proc.stderr
    )
    assert re.search(
        r"policies/xamk\.yaml:\d+: policy customer-contracts: key 'retain': 'ten years' is not "
        r"a period: write it like '10 years'",
        proc.stderr,
    )
    assert proc.stdout == ""


def test_check_names_a_column_missing_from_the_live_source(sq: SqliteCatalog) -> None:
    """A trigger column the table lacks: exit 2, naming file, policy, key and the real columns."""
    _edit(sq.root / "policies" / "xamk.yaml", "trigger: membership_ended_on", "trigger: ended")
    proc = on(sq, "check", environ=env(None))
    assert proc.returncode == 2, explain(proc)
    assert re.search(
        r"policies/xamk\.yaml(:\d+)?: policy alumni-membership: key 'trigger': column 'ended' "
        r"does not exist in table 'alumni'",
        proc.stderr,
    )
    assert "membership_ended_on" in proc.stderr  # the message lists the columns that do exist


def test_check_lists_static_and_live_problems_in_one_pass(sq: SqliteCatalog) -> None:
    """A missing column, an unknown key and a bad duration elsewhere are all listed at once."""
    _edit(sq.root / "policies" / "amkoodari.yaml", "key: id", "key: interviewee_id")
    _edit(
        sq.root / "policies" / "xamk.yaml", "    legal_basis:", "    colour: blue\n    legal_basis:"
    )
    _edit(sq.root / "policies" / "xamk.yaml", "retain: P10Y", "retain: ten years")
    proc = on(sq, "check", environ=env(None))
    assert proc.returncode == 2, explain(proc)
    assert "key 'colour'" in proc.stderr and "'ten years'" in proc.stderr
    assert "column 'interviewee_id' does not exist" in proc.stderr


def test_check_refuses_a_python_yaml_tag_without_running_it(sq: SqliteCatalog) -> None:
    """A `!!python/object/apply:os.system` tag: exit 2 naming file and line; nothing runs."""
    (sq.root / "policies" / "zz-evil.yaml").write_text(
        "register:\n"
        "  id: evil\n"
        "  name: Evil\n"
        "  controller: x\n"
        "  source: y\n"
        "policies:\n"
        "  - id: boom\n"
        "    connector: crm\n"
        '    description: !!python/object/apply:os.system ["touch MARKER"]\n'
        "    table: interviewees\n"
        "    key: id\n"
        "    until: 2022-06-30\n"
        "    action: delete\n",
        encoding="utf-8",
    )
    for cwd in (sq.root.parent, sq.root):
        proc = retention("check", "--catalog", sq.root, cwd=cwd, environ=env(None))
        assert proc.returncode == 2, explain(proc)
        assert "policies/zz-evil.yaml:9: invalid YAML: tag" in proc.stderr
        assert "is not allowed" in proc.stderr
    assert list(sq.root.parent.rglob("MARKER")) == []


# --- plan -------------------------------------------------------------------------------------


def test_plan_writes_json_csv_and_html_reports_and_changes_no_source_byte(
    sq: SqliteCatalog,
) -> None:
    """`plan --report` writes each format, exits 0, and leaves the SQLite source file identical."""
    before = sha256(sq.source)
    out = sq.root.parent / "reports"
    procs = {
        suffix: on(sq, "plan", "--as-of", DAY, "--report", out / f"plan.{suffix}")
        for suffix in ("json", "csv", "html")
    }
    for suffix, proc in procs.items():
        assert proc.returncode == 0, explain(proc)
        assert f"report: {out / f'plan.{suffix}'}" in proc.stdout.replace("\n", "")
    assert sha256(sq.source) == before

    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert PLAN_ID.fullmatch(doc["plan_id"]) and doc["as_of"] == DAY
    assert doc["plan_id"] in procs["json"].stdout
    by_policy = {p["policy"]: p for p in doc["policies"]}
    assert by_policy["alumni-membership"]["counts"] == {
        "scanned": 5, "expire": 3, "retain": 2, "held": 0, "done": 0,
    }  # fmt: skip
    assert sorted(r["key"] for r in by_policy["alumni-membership"]["records"]) == ["1", "2", "6"]

    with (out / "plan.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header, body = list(reader.fieldnames or []), list(reader)
    for column in ("register", "policy", "action", "key", "decision", "expires_on", "hold"):
        assert column in header
    due = sum(p["counts"]["expire"] + p["counts"]["held"] for p in doc["policies"])
    assert len(body) == due == 9
    assert {row["decision"] for row in body} == {"expire"}
    assert ("customer-contracts", '["B", "C-1"]') in {(r["policy"], r["key"]) for r in body}

    html = (out / "plan.html").read_text(encoding="utf-8")
    plan_id = PLAN_ID.search(procs["html"].stdout)
    assert plan_id is not None and plan_id.group(0) in html
    summary = re.search(
        r'<tr data-register="xamk-alumni" data-policy="alumni-membership">.*?</tr>', html, re.DOTALL
    )
    assert summary is not None
    assert re.findall(r'<td class="n" data-count="\w+">(\d+)</td>', summary.group(0)) == [
        "5", "3", "2", "0", "0",
    ]  # fmt: skip


@pytest.mark.parametrize("command", ["plan", "run"])
@pytest.mark.parametrize("secret", [None, "too-short"], ids=["unset", "short"])
def test_commands_that_write_refuse_without_the_secret(
    sq: SqliteCatalog, command: str, secret: str | None
) -> None:
    """`plan`/`run` without a usable RETENTION_SECRET exit 2 naming it and change nothing."""
    before = sha256(sq.source)
    report = sq.root.parent / "plan.json"
    extra = ["--report", report] if command == "plan" else []
    proc = on(sq, command, "--as-of", DAY, *extra, environ=env(secret))
    assert proc.returncode == 2, explain(proc)
    assert "RETENTION_SECRET" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert count(sq.state_url, plans) == 0
    assert count(sq.state_url, certificates) == 0
    assert sha256(sq.source) == before
    assert not report.exists()


@pytest.mark.parametrize("command", ["plan", "run"])
def test_unknown_policy_is_refused_with_the_catalog_s_policies(
    sq: SqliteCatalog, command: str
) -> None:
    """`--policy nope` exits 2, lists every policy of the catalog, and changes nothing."""
    before = sha256(sq.source)
    proc = on(sq, command, "--as-of", DAY, "--policy", "nope")
    assert proc.returncode == 2, explain(proc)
    assert "no policy matches 'nope'" in proc.stderr
    for name in POLICY_NAMES:
        assert name in proc.stderr
    assert sha256(sq.source) == before
    assert count(sq.state_url, plans) == 0


@pytest.mark.parametrize("command", ["plan", "run"])
def test_impossible_as_of_date_is_refused(sq: SqliteCatalog, command: str) -> None:
    """`--as-of 2026-13-01` exits 2 with a message naming the bad value, before any work."""
    proc = on(sq, command, "--as-of", "2026-13-01")
    assert proc.returncode == 2, explain(proc)
    assert "'2026-13-01' is not a date" in proc.stderr
    assert count(sq.state_url, plans) == 0


def test_policy_selection_narrows_the_plan(sq: SqliteCatalog) -> None:
    """`--policy REGISTER` plans only that register's policies."""
    report = sq.root.parent / "plan.json"
    proc = on(sq, "plan", "--as-of", DAY, "--policy", "amkoodari", "--report", report)
    assert proc.returncode == 0, explain(proc)
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert [p["policy"] for p in doc["policies"]] == ["interviewees"]


# --- run --------------------------------------------------------------------------------------


def test_run_disposes_once_and_a_second_run_disposes_of_nothing(sq: SqliteCatalog) -> None:
    """The first `run` exits 0 and reports 9 disposed; the second exits 0 and reports 0."""
    first = on(sq, "run", "--as-of", DAY)
    assert first.returncode == 0, explain(first)
    assert "disposed of 9 records; status completed (exit 0)" in first.stdout
    assert rows(sq.source_url, "interviewees") == []
    second = on(sq, "run", "--as-of", DAY)
    assert second.returncode == 0, explain(second)
    assert "disposed of 0 records; status completed (exit 0)" in second.stdout
    assert count(sq.state_url, certificates) == 9


def test_safety_valve_exits_3_and_leaves_the_policy_s_table_alone(tmp_path: Path) -> None:
    """More due alumni than max_per_run: `run` exits 3 and the alumni table is unchanged."""
    cat = make_catalog(tmp_path / "valve", max_alumni=2)
    before = rows(cat.source_url, "alumni")
    proc = on(cat, "run", "--as-of", DAY)
    assert proc.returncode == 3, explain(proc)
    assert "max_per_run is 2" in proc.stdout
    assert "status stopped (exit 3)" in proc.stdout
    assert rows(cat.source_url, "alumni") == before
    assert rows(cat.source_url, "interviewees") == []  # the other policies still ran


def test_run_logs_json_lines_with_the_run_id_and_no_personal_data(sq: SqliteCatalog) -> None:
    """With stderr not a terminal, `run` logs JSON lines, each with the run id, and no names."""
    proc = on(sq, "run", "--as-of", DAY)
    assert proc.returncode == 0, explain(proc)
    run_id = RUN_ID.search(proc.stdout)
    assert run_id is not None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    # The catalog was initialised without the secret: this first use records its fingerprint
    # and says so once, before the run begins.
    events = [json.loads(line) for line in lines]
    assert events[0]["event"] == "SecretFingerprintRecorded" and "run_id" not in events[0]
    events = events[1:]
    assert {e["event"] for e in events} >= {"RunStarted", "PolicyFinished", "RunFinished"}
    assert all(e.get("run_id") == run_id.group(0) for e in events), lines
    for value in PERSONAL:
        assert value not in proc.stderr
        assert value not in proc.stdout


# --- holds ------------------------------------------------------------------------------------


def test_hold_add_list_plan_release_cycle(sq: SqliteCatalog) -> None:
    """A record hold is listed, makes its record `held` (with the hold id), and is released."""
    added = on(
        sq, "hold", "add", "--policy", "alumni-membership", "--record", "1",
        "--reason", "litigation", "--by", "alice",
    )  # fmt: skip
    assert added.returncode == 0, explain(added)
    found = HOLD_ID.search(added.stdout)
    assert found is not None
    hold_id = found.group(0)

    listed = on(sq, "hold", "list", environ=env(None))
    assert listed.returncode == 0, explain(listed)
    line = next(x for x in listed.stdout.splitlines() if hold_id in x)
    assert "alumni-membership" in line and "litigation" in line and "alice" in line

    report = sq.root.parent / "plan.json"
    planned = on(sq, "plan", "--as-of", DAY, "--report", report)
    assert planned.returncode == 0, explain(planned)
    doc = json.loads(report.read_text(encoding="utf-8"))
    alumni = next(p for p in doc["policies"] if p["policy"] == "alumni-membership")
    assert alumni["counts"]["held"] == 1 and alumni["counts"]["expire"] == 2
    assert {"key": "1", "decision": "held", "hold": hold_id}.items() <= next(
        r for r in alumni["records"] if r["key"] == "1"
    ).items()

    released = on(sq, "hold", "release", hold_id, "--by", "bob", environ=env(None))
    assert released.returncode == 0, explain(released)
    assert f"released hold {hold_id}" in released.stdout
    active = on(sq, "hold", "list", environ=env(None))
    assert active.returncode == 0 and hold_id not in active.stdout
    everything = on(sq, "hold", "list", "--all", environ=env(None))
    assert everything.returncode == 0 and hold_id in everything.stdout

    again = on(sq, "hold", "release", hold_id, environ=env(None))
    assert again.returncode == 2, explain(again)
    assert f"no active hold {hold_id!r}" in again.stderr


def test_a_hold_says_what_it_covers_and_one_covering_nothing_needs_force(
    sq: SqliteCatalog,
) -> None:
    """A mistyped subject or a key that does not exist is refused (exit 2, nothing stored)
    unless --force; a hold that covers records says how many, per policy."""
    for typo in (
        ("--subject", "KK-10002"),
        ("--policy", "alumni-membership", "--record", "999"),
        ("--register", "amkoodari", "--subject", "010190-900A"),  # a person not in that register
    ):
        refused = on(sq, "hold", "add", *typo, "--reason", "litigation")
        assert refused.returncode == 2, explain(refused)
        assert "covers no record today" in refused.stderr and "--force" in refused.stderr
    listed = on(sq, "hold", "list", "--all", environ=env(None))
    assert HOLD_ID.search(listed.stdout) is None

    forced = on(sq, "hold", "add", "--subject", "KK-10002", "--reason", "later", "--force")
    assert forced.returncode == 0, explain(forced)
    assert "covers 0 record(s) today" in forced.stdout
    assert "warning: this hold covers no record today" in forced.stderr

    person = on(sq, "hold", "add", "--subject", "010190-900A", "--reason", "litigation")
    assert person.returncode == 0, explain(person)
    assert "covers 1 record(s) today" in person.stdout
    assert "xamk-alumni/alumni-membership 1" in person.stdout
    assert "010190-900A" not in person.stdout  # the person is named only by the operator


def test_hold_without_scope_is_refused(sq: SqliteCatalog) -> None:
    """`hold add` with only a reason exits 2 naming the scope options, and stores nothing."""
    proc = on(sq, "hold", "add", "--reason", "litigation")
    assert proc.returncode == 2, explain(proc)
    assert "at least one scope" in proc.stderr and "--register" in proc.stderr
    listed = on(sq, "hold", "list", "--all", environ=env(None))
    assert HOLD_ID.search(listed.stdout) is None


def test_hold_list_shows_bracketed_text_verbatim(sq: SqliteCatalog) -> None:
    """A reason or name with square brackets is listed as typed, never read as console markup."""
    reason, by = "court order [/b] see [red]case 12", "[bold]bob"
    added = on(sq, "hold", "add", "--register", "amkoodari", "--reason", reason, "--by", by)
    assert added.returncode == 0, explain(added)
    listed = on(sq, "hold", "list", environ=env(None))
    assert listed.returncode == 0, explain(listed)
    assert reason in listed.stdout and by in listed.stdout


def test_hold_with_a_partial_composite_key_is_refused(sq: SqliteCatalog) -> None:
    """One --record value for a two-column key exits 2; a hold that can never match is refused."""
    proc = on(
        sq, "hold", "add", "--policy", "customer-contracts", "--record", "HQ",
        "--reason", "litigation",
    )  # fmt: skip
    assert proc.returncode == 2, explain(proc)


# --- certificates and verify ------------------------------------------------------------------


def test_export_verifies_with_only_the_public_key_and_names_an_edited_certificate(
    sq: SqliteCatalog, tmp_path: Path
) -> None:
    """An export verifies with only the public key; one changed byte: exit 1 naming the cert."""
    assert on(sq, "run", "--as-of", DAY).returncode == 0
    out = tmp_path / "audit" / "certs.jsonl"
    exported = on(sq, "certificates", "export", "--out", out, environ=env(None))
    assert exported.returncode == 0, explain(exported)
    assert "exported 9 certificates" in exported.stdout
    assert (tmp_path / "audit" / "certs.jsonl.manifest.json").is_file()

    auditor = tmp_path / "auditor"
    auditor.mkdir()
    pub = auditor / "signing.pub.pem"
    shutil.copyfile(sq.root / "keys" / "signing.pub.pem", pub)
    ok = retention("verify", out, "--public-key", pub, cwd=auditor, environ=env(None))
    assert ok.returncode == 0, explain(ok)
    assert f"verified export {out}: 9 certificates, 1 checkpoints" in ok.stdout.replace("\n", "")

    lines = out.read_bytes().split(b"\n")
    target = json.loads(lines[3])
    at = lines[3].index(b'"record_ref":"') + len(b'"record_ref":"')
    old = lines[3][at : at + 1]
    lines[3] = lines[3][:at] + (b"0" if old != b"0" else b"1") + lines[3][at + 1 :]
    out.write_bytes(b"\n".join(lines))
    bad = retention("verify", out, "--public-key", pub, cwd=auditor, environ=env(None))
    assert bad.returncode == 1, explain(bad)
    assert f"certificate {target['certificate_id']} (seq {target['seq']})" in bad.stdout
    assert "altered" in bad.stdout and "FAILED export" in bad.stdout


def test_verify_ledger_passes_after_a_run_and_fails_on_a_tampered_certificate(
    sq: SqliteCatalog,
) -> None:
    """`verify` exits 0 on an intact ledger and 1 naming a certificate whose stored body changed."""
    assert on(sq, "run", "--as-of", DAY).returncode == 0
    ok = on(sq, "verify", environ=env(None))
    assert ok.returncode == 0, explain(ok)
    assert "verified ledger: 9 certificates, 1 checkpoints" in ok.stdout

    engine = sa.create_engine(sq.state_url)
    with engine.begin() as conn:
        row = conn.execute(sa.select(certificates).where(certificates.c.seq == 4)).one()
        body = json.loads(row.body)
        body["action"] = "archived"
        conn.execute(
            sa.update(certificates).where(certificates.c.seq == 4).values(body=json.dumps(body))
        )
    engine.dispose()
    bad = on(sq, "verify", environ=env(None))
    assert bad.returncode == 1, explain(bad)
    assert any(
        body["certificate_id"] in line and "altered" in line
        for line in bad.stdout.splitlines()
        if line.startswith("FAIL")
    ), bad.stdout
    assert "FAILED ledger" in bad.stdout


def test_verify_names_a_missing_export_file(sq: SqliteCatalog) -> None:
    """`verify FILE` for a file that does not exist exits 2 with a message, not a traceback."""
    proc = on(sq, "verify", sq.root.parent / "nope.jsonl", environ=env(None))
    assert proc.returncode == 2, explain(proc)
    assert "no such export file" in proc.stderr and "Traceback" not in proc.stderr


# --- plan → run → verify on every backend -----------------------------------------------------


def test_plan_run_verify_on_every_backend(catalog: Path, backend: str, tmp_path: Path) -> None:
    """On SQLite, PostgreSQL and MariaDB the CLI plans 9, disposes of 9 and verifies the ledger."""
    report = tmp_path / "plan.json"
    planned = retention(
        "plan", "--catalog", catalog, "--as-of", DAY, "--report", report, cwd=tmp_path
    )
    assert planned.returncode == 0, explain(planned)
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert sum(p["counts"]["expire"] for p in doc["policies"]) == 9

    ran = retention("run", "--catalog", catalog, "--as-of", DAY, cwd=tmp_path)
    assert ran.returncode == 0, explain(ran)
    assert "disposed of 9 records" in ran.stdout

    verified = retention("verify", "--catalog", catalog, cwd=tmp_path, environ=env(None))
    assert verified.returncode == 0, explain(verified)
    assert "verified ledger: 9 certificates, 1 checkpoints" in verified.stdout


# --- init -------------------------------------------------------------------------------------


def test_init_creates_settings_state_and_key_pair_and_keeps_them(tmp_path: Path) -> None:
    """`init` in an empty directory makes settings, state and a 0600 key; a rerun keeps the key."""
    home = tmp_path / "fresh"
    home.mkdir()
    first = retention("init", cwd=home, environ=env(None))
    assert first.returncode == 0, explain(first)
    private, public = home / "keys" / "signing.pem", home / "keys" / "signing.pub.pem"
    assert (home / "retention.yaml").is_file()
    assert (home / "retention-state.db").is_file()
    assert private.is_file() and public.is_file()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    pem = public.read_text(encoding="ascii")
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert pem.strip() in first.stdout
    assert "(created)" in first.stdout

    key_bytes = private.read_bytes()
    second = retention("init", cwd=home, environ=env(None))
    assert second.returncode == 0, explain(second)
    assert "(kept)" in second.stdout
    assert pem.strip() in second.stdout
    assert private.read_bytes() == key_bytes and public.read_text(encoding="ascii") == pem


# --- demo -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built as a wheel and installed (not editable) into a folder of its own."""
    where = tmp_path_factory.mktemp("installed")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", where / "dist", PROJECT], check=True)
    (wheel,) = (where / "dist").glob("retention-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", where / "site", wheel], check=True)
    return where / "site"


def test_demo_runs_the_whole_cycle_twice(tmp_path: Path, installed: Path) -> None:
    """`demo` plans, approves, runs the approved plan and exports the evidence, twice over,
    from an installed package in an empty directory: the catalog travels with the package."""
    anywhere = tmp_path / "anywhere"
    anywhere.mkdir()
    environ = {**env(None), "PYTHONPATH": str(installed)}
    which = subprocess.run(
        [sys.executable, "-c", "import retention; print(retention.__file__)"],
        cwd=anywhere, env=environ, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(which.stdout.strip()).is_relative_to(installed)
    workdir = tmp_path / "demo"
    for attempt in (1, 2):
        proc = retention(
            "demo", "--workdir", workdir, "--as-of", DAY, cwd=anywhere, environ=environ
        )
        assert proc.returncode == 0, f"attempt {attempt}: {explain(proc)}"
        reports = workdir / "reports"
        for name in (
            "plan.html", "plan.fi.html", "plan.json", "certificates.jsonl",
            "certificates.jsonl.manifest.json", "certificates.pdf",
            "certificates.pdf.certificates.jsonl",
        ):  # fmt: skip
            assert (reports / name).is_file(), name
        assert "verify: ledger verified" in proc.stdout
        doc = json.loads((reports / "plan.json").read_text(encoding="utf-8"))
        assert doc["as_of"] == DAY and PLAN_ID.fullmatch(doc["plan_id"])
        assert "records plan: 5 plans" in proc.stdout  # the TOS files and schemas travel too
        assert doc["records_plan"]["coverage"]["covered"] == 15
        assert "Toimeenpanosuunnitelma" in (reports / "plan.fi.html").read_text(encoding="utf-8")
        certificates = [
            json.loads(line)
            for line in (reports / "certificates.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        assert certificates
        assert {(c["plan_id"], c["approved_by"]) for c in certificates} == {
            (doc["plan_id"], "Demo Records Manager")
        }
        # The generated secret is its owner's alone, whatever the umask.
        assert stat.S_IMODE((workdir / ".demo-secret").stat().st_mode) == 0o600


def test_demo_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    """`demo --workdir` on an existing non-demo directory exits 2 and leaves its files untouched."""
    mine = tmp_path / "mine"
    (mine / "policies").mkdir(parents=True)
    (mine / "important.txt").write_text("do not delete\n", encoding="utf-8")
    (mine / "policies" / "ours.yaml").write_text("register: {}\n", encoding="utf-8")
    before = snapshot(mine)
    proc = retention("demo", "--workdir", mine, "--as-of", DAY, cwd=PROJECT, environ=env(None))
    assert proc.returncode == 2, explain(proc)
    assert "is not a demo workspace" in proc.stderr
    assert snapshot(mine) == before
    assert sorted(p.name for p in mine.iterdir()) == ["important.txt", "policies"]


# --- machine-readable output -------------------------------------------------------------------


def test_every_line_of_the_readme_cron_recipe_file_parses_as_json(
    sq: SqliteCatalog, tmp_path: Path
) -> None:
    """The README's cron line, as written, appends stdout and stderr to one file: after a run
    that disposes, a run with nothing to do and one that cannot start, every line parses."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    (cron,) = [x for x in readme.splitlines() if x.strip().startswith("30 2 * * *")]
    command = cron.split("&&", 1)[1].strip()
    log = tmp_path / "retention.jsonl"
    shell = (
        command.replace("RETENTION_SECRET=... ", "")
        .replace(".venv/bin/retention", f"{sys.executable} -m retention")
        .replace("/var/log/retention.jsonl", str(log))
    )
    assert "--json" in shell and f">> {log} 2>&1" in shell
    shell = shell.replace("--job nightly", f"--job nightly --as-of {DAY}")
    for secret, expected in ((SECRET, 0), (SECRET, 0), (None, 2)):
        environ = env(secret)
        proc = subprocess.run(["/bin/sh", "-c", shell], cwd=sq.root, env=environ, check=False)
        assert proc.returncode == expected
    lines = log.read_text(encoding="utf-8").splitlines()
    parsed = [json.loads(line) for line in lines]  # every line, or this fails
    summaries = [p for p in parsed if p["event"] == "Summary"]
    assert [s["exit_code"] for s in summaries] == [0, 0]
    assert summaries[0]["disposed"] == 9 and summaries[1]["disposed"] == 0
    assert {p["policy"] for p in summaries[0]["policies"]} == {
        name.split("/")[1] for name in POLICY_NAMES
    }
    (error,) = [p for p in parsed if p["event"] == "Error"]
    assert error["exit_code"] == 2 and "RETENTION_SECRET" in error["message"]
    assert any(p["event"] == "RunFinished" for p in parsed)  # the log lines are there too


def test_quiet_prints_nothing_on_success_and_json_reports_a_bad_option(sq: SqliteCatalog) -> None:
    quiet = on(sq, "run", "--as-of", DAY, "--quiet")
    assert quiet.returncode == 0, explain(quiet)
    assert quiet.stdout == ""
    assert all(json.loads(x)["level"] != "info" for x in quiet.stderr.splitlines())
    bad = on(sq, "plan", "--json", "--as-of", "22.11.2026")
    assert bad.returncode == 2 and bad.stdout == ""
    (line,) = bad.stderr.splitlines()
    assert json.loads(line)["event"] == "Error" and "22.11.2026" in json.loads(line)["message"]


# --- small things a user trips over ------------------------------------------------------------


def test_every_option_of_every_command_says_what_it_is_for() -> None:
    """`--help` of each command describes each option; dates name their format; the
    top-level help lists the exit codes and how to turn on shell completion."""
    import click

    from retention.cli import cli

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")
        else:
            yield path, command

    for path, command in walk(cli, "retention"):
        assert command.help, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts[0]}"
                if param.callback is not None and "date" in getattr(param.callback, "__name__", ""):
                    assert param.metavar == "YYYY-MM-DD", f"{path} {param.opts[0]}"
    top = retention("--help", cwd=PROJECT, environ=env(None)).stdout
    for code in range(6):
        assert f"{code} " in top.split("Exit codes:")[1]
    assert "_RETENTION_COMPLETE=bash_source" in top.replace("\n", " ")


def test_explain_of_a_key_that_does_not_exist_exits_2(sq: SqliteCatalog) -> None:
    missing = on(sq, "explain", "alumni-membership", "999", "--as-of", DAY)
    assert missing.returncode == 2, explain(missing)
    assert "no record with key 999" in missing.stderr
    present = on(sq, "explain", "alumni-membership", "1", "--as-of", DAY)
    assert present.returncode == 0, explain(present)


def test_verify_of_a_file_outside_a_catalog_asks_for_the_key(tmp_path: Path) -> None:
    export = tmp_path / "certificates.jsonl"
    export.write_text("", encoding="utf-8")
    proc = retention("verify", export, cwd=tmp_path, environ=env(None))
    assert proc.returncode == 2, explain(proc)
    assert "--public-key" in proc.stderr and "not a catalog" not in proc.stderr


def test_forecast_never_cuts_policy_names_to_one_prefix(sq: SqliteCatalog) -> None:
    """On a 120- or 80-column terminal every policy's whole name is on the screen."""
    for cols in (120, 80):
        command = [sys.executable, "-m", "retention", "forecast", "--catalog", sq.root,
                   "--as-of", DAY]  # fmt: skip
        code, lines = on_terminal(command, env(), cols=cols)
        assert code == 0, lines
        for name in POLICY_NAMES:
            assert any(line.startswith(name) for line in lines), (cols, name, lines)


def test_hold_list_and_status_show_who_and_which_plan(sq: SqliteCatalog) -> None:
    added = on(sq, "hold", "add", "--policy", "alumni-membership", "--record", "1",
               "--reason", "litigation", "--by", "alice")  # fmt: skip
    hold_id = HOLD_ID.search(added.stdout)
    assert hold_id is not None
    released = on(sq, "hold", "release", hold_id.group(0), "--by", "bob", environ=env(None))
    assert released.returncode == 0, explain(released)
    listed = on(sq, "hold", "list", "--all", environ={**env(None), "COLUMNS": "250"})
    lines = listed.stdout.splitlines()
    at = next(i for i, x in enumerate(lines) if hold_id.group(0) in x)
    assert "alice" in lines[at] and "bob" in lines[at]  # who placed it, who released it
    stamps = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d[+-]\d{4}", lines[at + 1])
    assert len(stamps) == 2  # and when, on the row's second line

    planned = on(sq, "plan", "--as-of", DAY, "--json")
    plan_id = json.loads(planned.stdout)["plan_id"]
    assert on(sq, "approve", plan_id, "--by", "Riikka Records").returncode == 0
    assert on(sq, "run", "--plan", plan_id, "--as-of", DAY).returncode == 0
    status = on(sq, "status", environ={**env(None), "COLUMNS": "250"})
    assert status.returncode == 0, explain(status)
    assert f"{plan_id} (approved by Riikka Records)" in status.stdout
    for column in ("held", "changed"):
        assert column in status.stdout


def test_init_scaffolds_an_example_whose_printed_steps_reach_a_plan(tmp_path: Path) -> None:
    """A records manager starting from an empty folder: `init --generate-secret`, then the
    three printed steps exactly, end in a successful plan with due records; the secret is
    never printed, and keys, secret and state are ignored by git."""
    home = tmp_path / "catalog"
    made = retention("init", "--catalog", home, "--generate-secret", cwd=tmp_path,
                     environ=env(None))  # fmt: skip
    assert made.returncode == 0, explain(made)
    secret_file = home / "keys" / "retention-secret"
    secret = secret_file.read_text(encoding="ascii").strip()
    assert len(secret) == 64 and secret not in made.stdout + made.stderr
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    ignored = (home / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {"keys/", "*.db", "reports/", "archive/"} <= set(ignored)
    assert "max_due_share: 0.8" in (home / "retention.yaml").read_text(encoding="utf-8")
    steps = made.stdout.split("Next steps:")[1].splitlines()
    commands = [line.split(". ", 1)[1].split("   #")[0] for line in steps if line[:4].strip()
                in ("1.", "2.", "3.")]  # fmt: skip
    assert len(commands) == 3 and commands[0].startswith("export RETENTION_SECRET=")
    script = " && ".join(
        c.replace("retention ", f"{sys.executable} -m retention ", 1) for c in commands
    )
    done = subprocess.run(
        ["/bin/sh", "-c", script], cwd=tmp_path, env=env(None), capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "plan.html").read_text(encoding="utf-8")
    assert "former-members" in report
    again = retention("init", "--catalog", home, cwd=tmp_path, environ=env(secret))
    assert again.returncode == 0, explain(again)
    assert "example:" not in again.stdout  # a catalog with files is never scaffolded again


def test_a_usage_error_under_json_is_one_json_line_and_dates_stay_in_range(
    sq: SqliteCatalog,
) -> None:
    bogus = on(sq, "run", "--json", "--bogus")
    assert bogus.returncode == 2 and bogus.stdout == ""
    (line,) = bogus.stderr.splitlines()
    assert json.loads(line)["event"] == "Error" and "--bogus" in json.loads(line)["message"]
    ancient = on(sq, "certificates", "export", "--since", "0001-01-01", "--out", "e.jsonl")
    assert ancient.returncode == 2, explain(ancient)
    assert "outside the years 1000-9000" in ancient.stderr
