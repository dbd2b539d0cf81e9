"""Notifications: a real SMTP server (aiosmtpd, STARTTLS and AUTH) and a real webhook receiver
get the messages, in both languages, with no personal value in any of them; a notifier
that fails never changes the run it reports on."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import ipaddress
import json
import re
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from retention import api, stopping
from retention.catalog.loading import load_catalog
from retention.errors import CatalogError
from retention.observe import metrics as metrics_module
from retention.observe.due import send_due
from retention.observe.notify import verify_signature
from retention.scheduler import run_job
from retention.workspace import Workspace
from tests.conftest import SECRET, build_sources, write_catalog

SMTP_USER, SMTP_PASSWORD = "retention", "correct horse battery staple"
HOOK_SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RETENTION_SECRET", SECRET)
    monkeypatch.setenv("T_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("T_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("T_HOOK_SECRET", HOOK_SECRET)
    stopping.clear()
    metrics_module.process_metrics(serving=False)
    yield
    stopping.clear()


# -- a real SMTP server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    rcpt: list[str]
    message: EmailMessage
    tls: bool
    authenticated: bool


@dataclass
class Inbox:
    """What the SMTP server accepted."""

    port: int
    ca_file: Path
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        secure, authenticated = session.ssl is not None, bool(session.authenticated)
        self.messages.append(Received(list(envelope.rcpt_tos), parsed, secure, authenticated))
        return "250 OK"

    def of(self, event: str) -> list[Received]:
        return [m for m in self.messages if m.message["X-Retention-Event"] == event]


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(), SMTP_PASSWORD.encode())  # fmt: skip
    return AuthResult(success=ok)


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1 that requires STARTTLS and a password."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Inbox(free_port(), cert)
    controller = Controller(
        box, hostname="127.0.0.1", port=box.port, tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_required=True, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# -- a real webhook receiver ----------------------------------------------------------------


@dataclass
class Hooks:
    url: str
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 204

    def of(self, event: str) -> list[dict[str, Any]]:
        return [json.loads(body) for headers, body in self.deliveries
                if headers["Retention-Event"] == event]  # fmt: skip


def signed_by_secret(headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check, written from the documentation, not with the package's code."""
    timestamp = headers["Retention-Timestamp"]
    expected = hmac.new(HOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest("v1=" + expected.hexdigest(),
                                         headers["Retention-Signature"])  # fmt: skip


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    """An HTTP server in a thread recording every POST, answering ``hooks.status``."""
    found = Hooks("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.deliveries.append((dict(self.headers.items()), body))
            self.send_response(found.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/retention"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def notify_block(
    inbox_port: int, ca_file: Path | None, hook_url: str, language: str = "en",
    *, attempts: int = 2, records_managers: str = '{"*": [records@example.fi]}',
) -> str:  # fmt: skip
    ca = f"      ca_file: {ca_file}\n" if ca_file else ""
    return (
        "notify:\n"
        f"  language: {language}\n"
        "  workspace_url: https://retention.example.fi/workspace\n"
        f"  attempts: {attempts}\n"
        "  backoff_seconds: 0\n"
        "  email:\n"
        "      host: 127.0.0.1\n"
        f"      port: {inbox_port}\n{ca}"
        "      from: retention@example.fi\n"
        "      username_env: T_SMTP_USER\n"
        "      password_env: T_SMTP_PASSWORD\n"
        "      to: [ops@example.fi]\n"
        f"      records_managers: {records_managers}\n"
        "      timeout_seconds: 10\n"
        "  webhooks:\n"
        f"    - url: {hook_url}\n"
        "      secret_env: T_HOOK_SECRET\n"
    )


# -- the demo's people --------------------------------------------------------------------

PERSONAL = re.compile(
    r"name|mail|phone|hetu|address|iban|passport|person_id|student_number|username|kin|"
    r"card_number|notes|motivation|special_needs|answer|user_agent"
)


def people_values(root: Path) -> set[str]:
    """Every value of a personal column in the demo's sources (names, e-mail addresses,
    identity codes, phone numbers, addresses, ...), at least four characters long."""
    found: set[str] = set()
    for db in (root / "demo").glob("*.db"):
        engine = sa.create_engine(f"sqlite:///{db}")
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                columns = [c for c in table.columns if PERSONAL.search(c.name)]
                if not columns:
                    continue
                for row in conn.execute(sa.select(*columns)):
                    found.update(str(v) for v in row if v is not None and len(str(v)) >= 4)
        engine.dispose()
    for part in list(found):  # a full name's parts are names too
        found.update(p for p in re.split(r"[\s,]+", part) if len(p) >= 4 and p.isalpha())
    return found


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The shipped five-register catalog with the demo's synthetic people, ready to run,
    with a review job besides its nightly one."""
    from retention.demo.cycle import shipped_catalog
    from retention.demo.data import build_demo_shares, build_demo_sources

    root = tmp_path / "demo-catalog"
    with shipped_catalog() as shipped:
        shutil.copytree(shipped, root)
    (root / "retention.yaml").write_text(
        (root / "retention.yaml").read_text()
        .replace("${RETENTION_STATE:-sqlite:///retention-state.db}",
                 f"sqlite:///{tmp_path / 'state.db'}"),
        encoding="utf-8",
    )  # fmt: skip
    (root / "jobs" / "review.yaml").write_text(
        'id: review\nschedule: "0 6 * * 1"\npolicies: ["*"]\nmode: review\n', encoding="utf-8"
    )
    day = load_catalog(root, {"RETENTION_SECRET": SECRET}).today()[0]
    build_demo_sources(root, day)
    build_demo_shares(root, day)
    api.init(root, {"RETENTION_SECRET": SECRET})
    return root


def texts(inbox: Inbox, hooks: Hooks) -> list[str]:
    """Every message as sent: each e-mail whole (headers and body) and each webhook body."""
    mails = [
        "\n".join(f"{name}: {value}" for name, value in r.message.items())  # headers decoded
        + "\n"
        + r.message.get_content()
        for r in inbox.messages
    ]
    return mails + [body.decode("utf-8") for _, body in hooks.deliveries]


@pytest.mark.parametrize("language", ["en", "fi"])
def test_every_event_reaches_mail_and_webhook_without_personal_data(
    demo: Path, inbox: Inbox, hooks: Hooks, language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the demo's five registers: a review job's plan waiting, a run that fails in one
    policy, a plan about to expire, a hold about to lapse and the digest each arrive by
    STARTTLS-and-password SMTP (to the records managers or operators, in the configured
    language, with the expected headers) and as a signed webhook; no message holds any
    value of the demo's people."""
    with (demo / "retention.yaml").open("a", encoding="utf-8") as settings:
        settings.write(notify_block(inbox.port, inbox.ca_file, hooks.url, language,
                                    records_managers='{"xamk-alumni": [alumni@example.fi], '
                                    '"*": [kirjaamo@example.fi]}'))  # fmt: skip
    assert run_job(str(demo), "review") == 0
    waiting = inbox.of("plan-waiting")
    assert len(waiting) == 1
    mail = waiting[0]
    assert mail.tls and mail.authenticated
    assert sorted(mail.rcpt) == ["alumni@example.fi", "kirjaamo@example.fi"]
    headers = mail.message
    assert headers["From"] == "retention@example.fi"
    assert headers["Content-Language"] == language
    assert headers["Auto-Submitted"] == "auto-generated"
    assert headers["Message-ID"] and headers["Date"]
    plan_id = hooks.of("plan-waiting")[0]["data"]["plan_id"]
    body = headers.get_content()
    assert plan_id in headers["Subject"]
    assert f"https://retention.example.fi/workspace/plans/{plan_id}" in body
    assert ("odottaa tarkastustasi" if language == "fi" else "waits for your review") in (
        headers["Subject"])  # fmt: skip

    # A nightly run in which one policy's date arithmetic fails: the operators hear of it.
    from retention.catalog import clock
    from retention.catalog.clock import Duration

    real = clock.expires_on

    def overflowing(trigger: Any, retain: Duration, count_from: Any = "event") -> Any:
        if retain == Duration(years=10):
            raise OverflowError("date value out of range")
        return real(trigger, retain, count_from)

    with monkeypatch.context() as patched:
        patched.setattr(clock, "expires_on", overflowing)
        assert run_job(str(demo), "nightly") == 4
    failed = inbox.of("run-failed")
    assert len(failed) == 1 and failed[0].rcpt == ["ops@example.fi"]
    payload = hooks.of("run-failed")[0]["data"]
    assert payload["exit_code"] == 4 and payload["status"] == "partial"
    assert {p["status"] for p in payload["policies"]} == {"failed"}
    assert ("epäonnistui" if language == "fi" else "failed") in failed[0].message["Subject"]

    # The day's notices: the plan expiring, a hold lapsing, the digest.
    with Workspace.open(demo) as ws:
        pending = api.plans(ws, job="review", state="pending")[0]
        zone = dt.datetime.now().astimezone().tzinfo
        del zone
        announce = pending.expires_at.astimezone(
            __import__("zoneinfo").ZoneInfo(ws.catalog.settings.timezone)
        ).date() - dt.timedelta(days=2)
        api.place_hold(ws, reason="Audit of Aino Virtanen's case", placed_by="Pirjo Kirjaaja",
                       register="xamk-alumni", until=announce + dt.timedelta(days=14))  # fmt: skip
    sent = send_due(demo, today=announce)
    assert {n.event for n in sent} == {"plan-expiring", "hold-lapsing", "digest"}
    assert len(inbox.of("plan-expiring")) == 1
    assert inbox.of("hold-lapsing")[0].rcpt == ["alumni@example.fi"]
    assert inbox.of("digest")[0].rcpt == ["ops@example.fi"]
    assert hooks.of("hold-lapsing")[0]["data"]["scope"] == "register"

    # Every webhook delivery is signed with the shared secret, and verifies.
    assert len(hooks.deliveries) == len(inbox.messages) == 5
    for headers_, body_ in hooks.deliveries:
        assert signed_by_secret(headers_, body_)
        assert verify_signature(HOOK_SECRET.encode(), headers_, body_)
        assert not verify_signature(b"another secret", headers_, body_)
        assert not verify_signature(HOOK_SECRET.encode(), headers_, body_ + b" ")

    # No personal value anywhere: not the people's, not the hold's reason or placer.
    people = people_values(demo)
    assert len(people) > 100
    people |= {"Aino Virtanen", "Virtanen", "Pirjo", "Kirjaaja"}
    for text in texts(inbox, hooks):
        leaked = sorted(value for value in people if value in text)
        assert not leaked, leaked


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    build_sources(source)
    return write_catalog(tmp_path / "catalog", source, f"sqlite:///{tmp_path / 'state.db'}")


def certificates(root: Path) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(load_catalog(root).state_url)
    with engine.connect() as conn:
        query = "SELECT register, policy, record_ref FROM certificates ORDER BY seq"
        rows = conn.execute(sa.text(query)).all()
    engine.dispose()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_failing_notifier_changes_nothing_of_the_run(
    tmp_path: Path, hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails in one policy, told through a mail server that refuses connections,
    a webhook receiver answering 500 and an e-mail notifier that raises outright, exits and
    certifies exactly as the same run told through nobody: each notifier was tried as often
    as ``attempts`` says, and its failure is counted in the textfile."""
    from retention.catalog import clock
    from retention.catalog.clock import Duration
    from retention.observe import notify as notify_module

    real = clock.expires_on

    def overflowing(trigger: Any, retain: Duration, count_from: Any = "event") -> Any:
        if retain == Duration(years=20):
            raise OverflowError("date value out of range")
        return real(trigger, retain, count_from)

    monkeypatch.setattr(clock, "expires_on", overflowing)
    plain, told = [], []
    for name, block in (("plain", ""), ("told", notify_block(free_port(), None, hooks.url,
                                                            attempts=3))):  # fmt: skip
        source = f"sqlite:///{tmp_path / name}-source.db"
        build_sources(source)
        root = write_catalog(tmp_path / name, source, f"sqlite:///{tmp_path / name}-state.db")
        with (root / "retention.yaml").open("a", encoding="utf-8") as settings:
            settings.write("metrics_textfile: metrics/retention.prom\n" + block)
        (plain if name == "plain" else told).append(root)
    hooks.status = 500
    assert run_job(str(plain[0]), "nightly") == 4
    assert run_job(str(told[0]), "nightly") == 4
    assert certificates(told[0]) == certificates(plain[0])  # one secret: the same references
    assert len(certificates(told[0])) == 9
    assert len(hooks.deliveries) == 3  # three attempts, each answered 500
    assert len({headers["Retention-Delivery"] for headers, _ in hooks.deliveries}) == 1
    prom = (told[0] / "metrics" / "retention.prom").read_text()
    assert (
        'retention_notifications_total{channel="email",event="run-failed",outcome="failed"} 1.0'
        in prom
    )
    assert (
        'retention_notifications_total{channel="webhook",event="run-failed",outcome="failed"} 1.0'
        in prom
    )

    def raising(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the notifier")

    monkeypatch.setattr(notify_module, "send_email", raising)
    monkeypatch.setattr(notify_module, "send_webhook", raising)
    assert run_job(str(told[0]), "nightly") == 4
    assert run_job(str(plain[0]), "nightly") == 4
    assert certificates(told[0]) == certificates(plain[0])


def test_the_cli_run_tells_of_its_failure(catalog: Path, inbox: Inbox, hooks: Hooks) -> None:
    """``retention run --job nightly`` from cron (here: in a subprocess) that is refused —
    its catalog names a column the source lacks — tells the operators, and exits as before."""
    import os
    import subprocess
    import sys

    with (catalog / "retention.yaml").open("a", encoding="utf-8") as settings:
        settings.write(notify_block(inbox.port, inbox.ca_file, hooks.url))
    policy = catalog / "policies" / "amkoodari.yaml"
    policy.write_text(policy.read_text().replace("key: id", "key: no_such_column"))
    env = {**os.environ, "RETENTION_SECRET": SECRET}
    done = subprocess.run([sys.executable, "-m", "retention", "run", "--job", "nightly",
                           "--catalog", str(catalog)], env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(inbox.of("run-failed")) == 1
    data = hooks.of("run-failed")[0]["data"]
    assert data["error"] == "CatalogError" and data["exit_code"] == 2
    assert "no_such_column" not in json.dumps(data)  # the kind of failure, not its text


def test_a_plan_made_at_the_command_line_asks_for_review(
    catalog: Path, inbox: Inbox, hooks: Hooks
) -> None:
    """``retention plan`` from cron or by hand stores a plan that waits for approval, as a
    review job's does: the records managers are told, with its id, as the scheduler tells
    them."""
    import os
    import subprocess
    import sys

    with (catalog / "retention.yaml").open("a", encoding="utf-8") as settings:
        settings.write(notify_block(inbox.port, inbox.ca_file, hooks.url))
    env = {**os.environ, "RETENTION_SECRET": SECRET}
    done = subprocess.run([sys.executable, "-m", "retention", "plan", "--job", "nightly",
                           "--catalog", str(catalog), "--json"], env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan_id = json.loads(done.stdout.strip().splitlines()[-1])["plan_id"]
    assert len(inbox.of("plan-waiting")) == 1
    (told,) = hooks.of("plan-waiting")
    assert told["data"]["plan_id"] == plan_id


def test_starttls_is_never_skipped(catalog: Path, hooks: Hooks, tmp_path: Path) -> None:
    """A mail server that offers no STARTTLS gets nothing: the message is not sent in the
    clear, and the failure is logged and counted, not raised."""
    plain_box = Inbox(free_port(), tmp_path / "none.pem")
    controller = Controller(plain_box, hostname="127.0.0.1", port=plain_box.port)
    controller.start()
    try:
        with (catalog / "retention.yaml").open("a", encoding="utf-8") as settings:
            settings.write(notify_block(plain_box.port, None, hooks.url))
        from retention.observe.due import send_test

        delivered = send_test(catalog)
    finally:
        controller.stop()
    assert delivered == {"email": False, "webhook0": True}
    assert plain_box.messages == []


def test_notify_settings_errors_name_the_key(catalog: Path) -> None:
    """A misspelt key of the notify: block, and records managers of a register the catalog
    does not have, are errors naming retention.yaml and the key."""
    settings = catalog / "retention.yaml"
    original = settings.read_text()
    settings.write_text(original + "notify:\n  emial: {host: x}\n")
    with pytest.raises(CatalogError) as bad_key:
        load_catalog(catalog)
    assert "retention.yaml" in str(bad_key.value) and "emial" in str(bad_key.value)
    settings.write_text(original + "notify:\n  email:\n    host: x\n    from: a@example.fi\n"
                        "    records_managers: {xamk-alumnii: [b@example.fi]}\n")  # fmt: skip
    with pytest.raises(CatalogError) as bad_register:
        load_catalog(catalog)
    text = str(bad_register.value)
    assert "notify.email.records_managers.xamk-alumnii" in text and "xamk-alumni" in text
    settings.write_text(original + "notify:\n  webhooks:\n    - url: ftp://x\n"
                        "      secret_env: S\n")  # fmt: skip
    with pytest.raises(CatalogError) as bad_url:
        load_catalog(catalog)
    assert "url" in str(bad_url.value)


def test_notify_due_from_the_command_line(catalog: Path, inbox: Inbox, hooks: Hooks) -> None:
    """``retention notify --due --as-of D`` sends the notices of day D once: on the day two
    days before a pending plan expires it announces it; on another day it does not."""
    from click.testing import CliRunner

    from retention.cli import cli

    with (catalog / "retention.yaml").open("a", encoding="utf-8") as settings:
        settings.write(notify_block(inbox.port, inbox.ca_file, hooks.url))
    with Workspace.open(catalog) as ws:
        made, _ = api.plan(ws)
        status = api.plans(ws)[0]
        zone = __import__("zoneinfo").ZoneInfo(ws.catalog.settings.timezone)
    assert status.plan_id == made.plan_id
    announce = status.expires_at.astimezone(zone).date() - dt.timedelta(days=2)
    runner = CliRunner()
    before = (announce - dt.timedelta(days=1)).isoformat()
    other = runner.invoke(cli, ["notify", "--due", "--no-digest", "--catalog", str(catalog),
                                "--as-of", before])  # fmt: skip
    assert other.exit_code == 0, other.output
    assert inbox.messages == []
    result = runner.invoke(cli, ["notify", "--due", "--catalog", str(catalog),
                                 "--as-of", announce.isoformat()])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [m.message["X-Retention-Event"] for m in inbox.messages] == ["plan-expiring", "digest"]
    assert made.plan_id in inbox.of("plan-expiring")[0].message["Subject"]
    assert inbox.of("plan-expiring")[0].rcpt == ["records@example.fi"]


def test_the_scheduler_sends_the_days_notices_at_daily_at(catalog: Path) -> None:
    """With ``notify:``, the scheduler fires the day's notices at ``daily_at`` in the
    catalog's zone, beside (not among) the catalog's jobs; a reload without ``notify:``
    removes that firing."""
    from retention.scheduler import NOTICES_JOB, NOTICES_STORE, Scheduler

    settings = catalog / "retention.yaml"
    original = settings.read_text()
    settings.write_text(original + "notify:\n  daily_at: '06:45'\n")
    scheduler = Scheduler(catalog)
    scheduler.start(paused=True)
    try:
        assert set(scheduler.next_fire_times()) == {"nightly"}
        job = scheduler._aps.get_job(NOTICES_JOB, jobstore=NOTICES_STORE)
        assert job is not None
        fire = job.trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC))
        assert (fire.hour, fire.minute, str(fire.tzinfo)) == (6, 45, "Europe/Helsinki")
        settings.write_text(original)
        assert scheduler.reload()
        assert scheduler._aps.get_job(NOTICES_JOB, jobstore=NOTICES_STORE) is None
        assert set(scheduler.next_fire_times()) == {"nightly"}
    finally:
        scheduler.stop()
