"""The web workspace at the HTTP level (Flask's test client): sign-in, CSRF on every form,
role checks on the server, bad input and ended sessions, headers, language; each refusal
changes nothing."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from retention import api
from retention.decide.identity import Identity
from retention.errors import UsageError
from retention.web import accounts, create_app, uploads
from retention.web import throttle as throttling
from retention.workspace import Workspace
from tests.conftest import AS_OF
from tests.test_cli import SqliteCatalog, env, make_catalog

PASSWORD = "correct horse battery staple"
ROLES = {
    "rm1": "records-manager",
    "rm2": "records-manager",
    "view1": "viewer",
    "op1": "operator",
    "dpo1": "dpo",
}


@dataclass
class Site:
    cat: SqliteCatalog
    app: Flask
    plan_id: str

    def ws(self) -> Workspace:
        return Workspace.open(self.cat.root, env())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One catalog with a stored plan and the accounts, made once: each test works on a copy."""
    base = tmp_path_factory.mktemp("web-template")
    cat = make_catalog(base / "sq")
    with Workspace.open(cat.root, env()) as ws:
        made, _ = api.plan(ws, as_of=AS_OF)
        for name, role in ROLES.items():
            accounts.add(ws.state, name, role, PASSWORD)
    return base / "sq", made.plan_id


@pytest.fixture
def site(tmp_path: Path, prepared: tuple[Path, str]) -> Iterator[Site]:
    template, plan_id = prepared
    shutil.copytree(template, tmp_path / "sq")
    cat = SqliteCatalog(tmp_path / "sq" / "catalog", tmp_path / "sq" / "source.db",
                        tmp_path / "sq" / "state.db")  # fmt: skip
    for settings in [cat.root / "retention.yaml", *(cat.root / "connectors").glob("*.yaml")]:
        text = settings.read_text("utf-8").replace(str(template), str(tmp_path / "sq"))
        settings.write_text(text, "utf-8")
    app = create_app(cat.root, env(), SESSION_COOKIE_SECURE=False)
    yield Site(cat, app, plan_id)


def token(client: FlaskClient, path: str = "/signin") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def signed_in(site: Site, name: str) -> FlaskClient:
    client = site.app.test_client()
    answer = client.post(
        "/signin/local", data={"csrf_token": token(client), "name": name, "password": PASSWORD}
    )
    assert answer.status_code == 302, answer.text
    return client


def approvers(site: Site) -> list[Identity]:
    """Who approved the plan, as the engine recorded them."""
    with site.ws() as ws:
        review = api.approval_status(ws, site.plan_id).review
    assert review is not None
    return [verdict.by for verdict in review.approvals]


def local(name: str) -> Identity:
    return Identity(accounts.LOCAL_ISSUER, name, name, ROLES[name], True)  # type: ignore[arg-type]


def test_pages_need_a_sign_in_and_say_where_to(site: Site) -> None:
    client = site.app.test_client()
    for path in ("/plans", f"/plans/{site.plan_id}", "/holds", "/evidence"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer.location.startswith("/signin?next=")


@pytest.mark.parametrize(
    "target",
    ["/%09/evil.example", "/%0d/evil.example", "/%0a/evil.example", "//evil.example",
     "/\\evil.example", "https://evil.example/", "/ /evil.example"],
)  # fmt: skip
def test_sign_in_never_redirects_off_the_site(site: Site, target: str) -> None:
    """A ``next`` that a browser or Werkzeug would turn into another host (a tab or newline
    dropped from ``/<tab>/evil.example``) lands on the home page, and never fails."""
    client = site.app.test_client()
    page = client.get(f"/signin?next={target}")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    answer = client.post(
        "/signin/local", data={"csrf_token": found.group(1), "name": "rm1", "password": PASSWORD}
    )
    assert answer.status_code == 302
    assert answer.location == "/", answer.location


def test_local_sign_in_refuses_a_wrong_password_and_an_unknown_name(site: Site) -> None:
    client = site.app.test_client()
    for name, password in (("rm1", "wrong password!!"), ("nobody", PASSWORD)):
        answer = client.post(
            "/signin/local", data={"csrf_token": token(client), "name": name, "password": password}
        )
        assert answer.status_code == 401
        assert "wrong" in answer.text
    assert client.get("/plans").status_code == 302


def test_failed_sign_ins_are_throttled_per_name_until_the_window_passes(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five wrong passwords under one name (in any letter case) and the sixth attempt is
    refused, the right password included, without checking it; other names are not
    affected; after the window the right password signs in and clears the count."""
    now = [1000.0]
    throttle = throttling.Throttle(clock=lambda: now[0])
    site.app.extensions["retention_throttle"] = throttle
    checked: list[str] = []
    real_check = accounts.check

    def counted(engine: Any, name: str, password: str) -> Any:
        checked.append(name)
        return real_check(engine, name, password)

    monkeypatch.setattr(accounts, "check", counted)
    client = site.app.test_client()

    def attempt(name: str, password: str) -> Any:
        return client.post(
            "/signin/local", data={"csrf_token": token(client), "name": name, "password": password}
        )

    for name in ("rm1", "RM1", "rm1", "Rm1", "rm1"):
        assert attempt(name, "wrong password!!").status_code == 401
    assert len(checked) == 5
    refused = attempt("rm1", PASSWORD)
    assert refused.status_code == 429 and "try again in 15 minute(s)" in refused.text
    assert len(checked) == 5  # the password was not even checked
    assert attempt("dpo1", PASSWORD).status_code == 302  # another name signs in
    now[0] += throttling.WINDOW_SECONDS - 60
    assert "try again in 1 minute(s)" in attempt("rm1", PASSWORD).text
    now[0] += 61
    client = site.app.test_client()
    assert attempt("rm1", PASSWORD).status_code == 302
    assert throttle.wait("rm1", "127.0.0.1") == 0


def sign_in_from(app: Flask) -> Callable[[str, str, str], int]:
    """A local sign-in from a client ``address`` with a name and a password: its status."""

    def attempt(address: str, name: str, password: str) -> int:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        form = {"csrf_token": token(client), "name": name, "password": password}
        return int(client.post("/signin/local", data=form).status_code)

    return attempt


def test_a_guesser_cannot_keep_an_accounts_owner_out_from_elsewhere(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone who knows an account's name could otherwise keep its owner out for good, five
    wrong passwords a quarter of an hour. Failures count per source (an address; an IPv6 /64,
    which one host may hold whole): the owner signing in from another is let in. A guesser
    spread over many sources is stopped once the name has ten sources' worth of failures."""
    now = [1000.0]
    throttle = throttling.Throttle(clock=lambda: now[0])
    site.app.extensions["retention_throttle"] = throttle
    real_check = accounts.check
    monkeypatch.setattr(  # a wrong password fails at once: fifty argon2 hashes prove nothing
        accounts, "check",
        lambda engine, name, password: real_check(engine, name, password)
        if password == PASSWORD else None,
    )  # fmt: skip

    attempt = sign_in_from(site.app)
    for _ in range(throttling.MOST_FAILURES):
        assert attempt("192.0.2.7", "rm1", "wrong password!!") == 401
    assert attempt("192.0.2.7", "rm1", PASSWORD) == 429  # the guesser's source: refused
    assert attempt("198.51.100.4", "rm1", PASSWORD) == 302  # the owner, elsewhere: let in
    for host in range(1, throttling.MOST_FAILURES + 1):  # one /64, five addresses
        assert attempt(f"2001:db8:0:1::{host}", "dpo1", "wrong password!!") == 401
    assert attempt("2001:db8:0:1::99", "dpo1", PASSWORD) == 429
    assert attempt("2001:db8:0:2::1", "dpo1", PASSWORD) == 302
    sources = throttling.MOST_FAILURES_PER_NAME // throttling.MOST_FAILURES
    for n in range(sources):  # many sources: the name's own limit
        for _ in range(throttling.MOST_FAILURES):
            assert attempt(f"203.0.113.{n + 1}", "rm2", "wrong password!!") == 401
    assert attempt("198.51.100.4", "rm2", PASSWORD) == 429
    now[0] += throttling.WINDOW_SECONDS + 1
    assert attempt("198.51.100.4", "rm2", PASSWORD) == 302


def test_a_flood_of_made_up_names_does_not_erase_a_guessers_count() -> None:
    """A full throttle forgets a count still under its limit first: failures under made-up
    names (none throttled) do not wash out the count refusing a guesser under rm1."""
    now = [0.0]
    throttle = throttling.Throttle(clock=lambda: now[0])
    for _ in range(throttling.MOST_FAILURES):
        throttle.failed("rm1", "192.0.2.7")
    assert throttle.wait("rm1", "192.0.2.7") > 0
    for i in range(throttling.MOST_NAMES):
        throttle.failed(f"x{i}", "192.0.2.7")
    assert throttle.wait("rm1", "192.0.2.7") > 0
    assert len(throttle._failures) == 2 * throttling.MOST_NAMES


def test_a_name_the_database_finds_only_by_its_collation_signs_nobody_in(
    catalog: Path, environ: dict[str, str], backend: str
) -> None:
    """MariaDB's collation finds the account rm1 for "rm1 " or "RM1  " too, names the throttle
    counts apart: each would have had five guesses of its own. Only the account's own name
    signs in, on every backend."""
    with Workspace.open(catalog, environ) as ws:
        accounts.add(ws.state, "rm1", "records-manager", PASSWORD)
        for padded in ("rm1 ", "RM1  ", "Rm1"):
            assert accounts.check(ws.state, padded, PASSWORD) is None
        assert accounts.check(ws.state, "rm1", PASSWORD) is not None
    app = create_app(catalog, environ, SESSION_COOKIE_SECURE=False)

    attempt = sign_in_from(app)
    for _ in range(throttling.MOST_FAILURES):
        assert attempt("192.0.2.7", "rm1", "wrong password!!") == 401
    assert attempt("192.0.2.7", "rm1", PASSWORD) == 429
    for padded in ("rm1 ", "rm1  ", "RM1   "):
        assert attempt("192.0.2.7", padded, PASSWORD) == 401, padded


def test_a_browser_that_signed_in_before_is_not_kept_out_by_the_names_cap(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten sources' worth of failures refuse a name everywhere, which a guesser with ten
    addresses could keep up for good. A browser the name signed in from before carries a
    signed device cookie and is its own source: the owner gets in from a new address, a
    browser without the cookie (or with a forged one) does not."""
    now = [1000.0]
    site.app.extensions["retention_throttle"] = throttling.Throttle(clock=lambda: now[0])
    real_check = accounts.check
    monkeypatch.setattr(
        accounts, "check",
        lambda engine, name, password: real_check(engine, name, password)
        if password == PASSWORD else None,
    )  # fmt: skip
    owner = site.app.test_client()

    def from_owner(address: str, password: str) -> int:
        owner.environ_base["REMOTE_ADDR"] = address
        form = {"csrf_token": token(owner), "name": "rm1", "password": password}
        return int(owner.post("/signin/local", data=form).status_code)

    assert from_owner("198.51.100.4", PASSWORD) == 302
    assert owner.get_cookie("retention_device") is not None
    attempt = sign_in_from(site.app)
    sources = throttling.MOST_FAILURES_PER_NAME // throttling.MOST_FAILURES
    for n in range(sources):
        for _ in range(throttling.MOST_FAILURES):
            assert attempt(f"203.0.113.{n + 1}", "rm1", "wrong password!!") == 401
    assert attempt("198.51.100.77", "rm1", PASSWORD) == 429  # no cookie: the name's cap
    assert from_owner("198.51.100.99", PASSWORD) == 302  # the owner's browser: let in
    forged = site.app.test_client()
    forged.set_cookie("retention_device", "forged")
    forged.environ_base["REMOTE_ADDR"] = "198.51.100.88"
    form = {"csrf_token": token(forged), "name": "rm1", "password": PASSWORD}
    assert forged.post("/signin/local", data=form).status_code == 429
    for _ in range(throttling.MOST_FAILURES):  # the owner's browser has its own five
        assert from_owner("198.51.100.99", "wrong password!!") == 401
    assert from_owner("198.51.100.99", PASSWORD) == 429


def test_the_source_of_a_sign_in_is_its_address_or_its_ipv6_64() -> None:
    assert throttling.source_of("192.0.2.7") == "192.0.2.7"
    assert throttling.source_of("2001:db8:0:1::5") == throttling.source_of("2001:db8:0:1:ffff::")
    assert throttling.source_of("2001:db8:0:1::5") != throttling.source_of("2001:db8:0:2::5")
    assert throttling.source_of("::ffff:192.0.2.7") == "192.0.2.7"
    assert throttling.source_of(None) == throttling.source_of("") == "unknown"


def test_the_throttle_forgets_old_names_first_and_stays_bounded() -> None:
    now = [0.0]
    throttle = throttling.Throttle(clock=lambda: now[0])
    for i in range(throttling.MOST_NAMES + 10):
        throttle.failed(f"name{i}", "192.0.2.1")
    assert len(throttle._failures) == 2 * throttling.MOST_NAMES  # per source, and per name
    assert "name0" not in throttle._failures and ("name0", "192.0.2.1") not in throttle._failures
    assert f"name{throttling.MOST_NAMES + 9}" in throttle._failures


def test_every_page_reads_for_every_role(site: Site) -> None:
    for name in ROLES:
        client = signed_in(site, name)
        for path in (
            "/plans",
            f"/plans/{site.plan_id}",
            "/holds",
            "/evidence",
            "/plans?state=pending",
        ):
            assert client.get(path).status_code == 200, (name, path)


def test_a_records_manager_approves_with_a_comment(site: Site) -> None:
    client = signed_in(site, "rm1")
    path = f"/plans/{site.plan_id}"
    answer = client.post(
        f"{path}/approve", data={"csrf_token": token(client, path), "comment": "checked"}
    )
    assert answer.status_code == 302
    assert approvers(site) == [local("rm1")]
    assert "checked" in client.get(path).text


def test_disabling_or_demoting_an_account_ends_what_its_session_may_do(site: Site) -> None:
    """A session signed in before its account was disabled or demoted acts with the account
    as it is now: the disabled one is signed out, the demoted one refused, nothing approved."""
    gone, demoted = signed_in(site, "rm1"), signed_in(site, "rm2")
    path = f"/plans/{site.plan_id}"
    forms = {c: token(c, path) for c in (gone, demoted)}
    with site.ws() as ws:
        accounts.disable(ws.state, "rm1")
        accounts.add(ws.state, "rm2", "viewer", PASSWORD, replace=True)
    answer = gone.post(f"{path}/approve", data={"csrf_token": forms[gone]})
    assert answer.status_code == 401
    assert gone.get(path).location.startswith("/signin")
    answer = demoted.post(f"{path}/approve", data={"csrf_token": forms[demoted]})
    assert answer.status_code == 403
    assert approvers(site) == []


def test_account_names_differing_only_in_case_are_refused(site: Site) -> None:
    """``rm1`` and ``RM1`` would be one person with two approvals under four eyes."""
    with site.ws() as ws, pytest.raises(UsageError, match="differing only in case"):
        accounts.add(ws.state, "RM1", "records-manager", PASSWORD)


def test_a_viewers_approval_is_refused_with_403_and_changes_nothing(site: Site) -> None:
    client = signed_in(site, "view1")
    path = f"/plans/{site.plan_id}"
    page = client.get(path)
    assert 'id="approve"' not in page.text  # no button for the viewer ...
    answer = client.post(f"{path}/approve", data={"csrf_token": token(client, path)})
    assert answer.status_code == 403  # ... and the server refuses the request all the same
    assert approvers(site) == []
    for action, data in (
        ("exclude", {"policy": "xamk-alumni/alumni-membership", "key": "1", "reason": "x"}),
        ("reject", {"comment": "no"}),
    ):
        answer = client.post(f"{path}/{action}", data={"csrf_token": token(client, path), **data})
        assert answer.status_code == 403
    answer = client.post(
        "/holds",
        data={"csrf_token": token(client, "/holds"), "reason": "x", "register": "xamk-alumni"},
    )
    assert answer.status_code == 403
    with site.ws() as ws:
        assert ws.holds.all() == []


def test_an_operator_may_export_in_every_format_but_not_approve_or_hold(site: Site) -> None:
    with site.ws() as ws:
        api.run(ws, as_of=AS_OF)
    client = signed_in(site, "op1")
    path = f"/plans/{site.plan_id}"
    answer = client.post(f"{path}/approve", data={"csrf_token": token(client, path)})
    assert answer.status_code == 403
    for fmt, files in (("jsonl", 2), ("csv", 2), ("html", 3), ("pdf", 3)):
        answer = client.post(
            "/evidence/export", data={"csrf_token": token(client, "/evidence"), "format": fmt}
        )
        assert answer.status_code == 200 and answer.mimetype == "application/zip", fmt
        with zipfile.ZipFile(io.BytesIO(answer.data)) as archive:
            names = archive.namelist()
        assert len(names) == files and f"certificates.{fmt}.manifest.json" in names, names


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    client = signed_in(site, "rm1")
    path = f"/plans/{site.plan_id}"
    for data in ({}, {"csrf_token": "forged"}):
        answer = client.post(f"{path}/approve", data={"comment": "x", **data})
        assert answer.status_code == 400
        assert "could not be trusted" in answer.text and "Nothing was changed" in answer.text
    other = signed_in(site, "rm2")  # another session's token is no token of this one
    answer = client.post(f"{path}/approve", data={"csrf_token": token(other, path)})
    assert answer.status_code == 400
    assert approvers(site) == []
    answer = client.post("/holds", data={"reason": "x", "register": "xamk-alumni"})
    assert answer.status_code == 400
    with site.ws() as ws:
        assert ws.holds.all() == []


def test_an_ended_session_gets_a_clear_page_and_changes_nothing(site: Site) -> None:
    client = signed_in(site, "rm1")
    path = f"/plans/{site.plan_id}"
    csrf = token(client, path)
    with client.session_transaction() as session:
        session["since"] = 0  # signed in long ago: the session's lifetime is over
    answer = client.get(path)
    assert answer.status_code == 302 and "ended=1" in answer.location
    assert "session has ended" in client.get(answer.location).text
    with client.session_transaction() as session:
        session["since"] = 0
        session["user"] = {"iss": accounts.LOCAL_ISSUER, "sub": "rm1", "name": "rm1",
                           "roles": ["records-manager"]}  # fmt: skip
    answer = client.post(f"{path}/approve", data={"csrf_token": token(client, "/signin")})
    assert answer.status_code == 401 and "Sign in first" in answer.text
    assert approvers(site) == []
    fresh = site.app.test_client()
    answer = fresh.post(f"{path}/approve", data={"csrf_token": csrf})
    assert answer.status_code == 400 and "session has ended" in answer.text


def test_unknown_plans_and_forged_fields_get_a_page_that_changes_nothing(site: Site) -> None:
    client = signed_in(site, "rm1")
    for path in ("/plans/no-such-plan", "/plans/..%2F..%2Fetc", "/plans/P1/report.exe"):
        answer = client.get(path)
        assert answer.status_code == 404 and "Nothing was changed" in answer.text
    assert client.get("/plans?state=bogus").status_code == 400
    answer = client.post(
        "/plans/no-such-plan/approve", data={"csrf_token": token(client, "/plans")}
    )
    assert answer.status_code == 302
    assert "no plan" in client.get("/plans").text
    answer = client.post(
        f"/plans/{site.plan_id}/approve",
        data={"csrf_token": token(client, "/plans"), "comment": "x" * 5000},
    )
    assert answer.status_code == 400
    answer = client.post(
        "/evidence/export", data={"csrf_token": token(client, "/evidence"), "format": "exe"}
    )
    assert answer.status_code == 400
    answer = client.post(
        "/evidence/export",
        data={"csrf_token": token(client, "/evidence"), "format": "csv", "since": "yesterday"},
    )
    assert answer.status_code == 400
    assert approvers(site) == []


def test_a_hold_that_covers_nothing_says_so_before_it_is_saved(site: Site) -> None:
    client = signed_in(site, "rm1")
    form = {
        "csrf_token": token(client, "/holds"),
        "policy": "xamk-alumni/alumni-membership",
        "record": "999",
        "reason": "case 17/2026",
    }
    answer = client.post("/holds", data=form)
    assert answer.status_code == 409 and "covers no record today" in answer.text
    assert 'name="confirm" value="1"' in answer.text
    with site.ws() as ws:
        assert ws.holds.all() == []
    answer = client.post("/holds", data={**form, "confirm": "1"})
    assert answer.status_code == 302
    with site.ws() as ws:
        [hold] = ws.holds.all()
    assert hold.record_key == '["999"]' and hold.placed_by == "rm1"
    assert json.loads(hold.placed_identity or "{}")["issuer"] == accounts.LOCAL_ISSUER
    client.post(f"/holds/{hold.hold_id}/release", data={"csrf_token": token(client, "/holds")})
    with site.ws() as ws:
        assert ws.holds.all()[0].released_at is not None


def test_a_subject_hold_keeps_the_subject_out_of_urls_pages_and_logs(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    client = signed_in(site, "dpo1")
    answer = client.post(
        "/holds",
        data={
            "csrf_token": token(client, "/holds"),
            "subject": "020291-901B",
            "reason": "request 5",
        },
    )
    assert answer.status_code == 302 and "020291" not in answer.location
    page = client.get("/holds?all=1").text
    assert "020291-901B" not in page and "request 5" in page
    assert "020291-901B" not in capsys.readouterr().out


def test_an_exclusion_is_a_hold_on_that_record(site: Site) -> None:
    client = signed_in(site, "rm1")
    path = f"/plans/{site.plan_id}"
    answer = client.post(
        f"{path}/exclude",
        data={
            "csrf_token": token(client, path),
            "policy": "xamk-alumni/customer-contracts",
            "key": "HQ\nC-1",
            "reason": "disputed",
        },
    )
    assert answer.status_code == 302
    with site.ws() as ws:
        [hold] = ws.holds.all()
    assert hold.policy == "customer-contracts" and hold.record_key is not None
    assert hold.reason == "disputed" and hold.plan_id == site.plan_id
    page = client.get(path).text
    assert "Excluded a record" in page and "disputed" in page

    def listed(kind: str) -> str:
        found = re.search(
            rf'<table class="records" data-list="{kind}" '
            rf'data-policy="xamk-alumni/customer-contracts">(.*?)</table>', page, re.S,
        )  # fmt: skip
        return found.group(1) if found else ""

    assert "HQ / C-1" not in listed("due")  # the reviewer sees the plan as it will run
    assert "HQ / C-1" in listed("held") and hold.hold_id in listed("held")


def test_a_secret_persons_row_shows_key_and_decision_only(site: Site) -> None:
    page = signed_in(site, "rm1").get(f"/plans/{site.plan_id}").text
    row = re.search(r'<tr class="secret"><td class="mono">6</td>(.*?)</tr>', page, re.S)
    assert row is not None
    assert "2016-02-29" not in page  # the secret person's trigger date is nowhere


def test_headers_forbid_anything_external(site: Site) -> None:
    client = signed_in(site, "rm1")
    answer = client.get("/plans")
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'none'" in csp
    assert "http" not in csp
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "no-store" in answer.headers["Cache-Control"]
    assert "<script" not in answer.text
    assert re.findall(r'(?:href|src)="(https?:)', answer.text) == []


def test_the_session_cookie_is_secure_httponly_and_samesite(site: Site) -> None:
    app = create_app(site.cat.root, env())  # secure_cookies defaults to true
    client = app.test_client()
    answer = client.get("/signin", base_url="https://localhost")
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_language_follows_the_browser_and_the_switch(site: Site) -> None:
    client = site.app.test_client()
    assert "Kirjaudu sisään" in client.get("/signin", headers={"Accept-Language": "fi"}).text
    assert "Sign in" in client.get("/signin", headers={"Accept-Language": "en"}).text
    client.post("/language", data={"csrf_token": token(client), "lang": "fi", "next": "/signin"})
    page = client.get("/signin", headers={"Accept-Language": "en"}).text
    assert 'lang="fi"' in page and "Kirjaudu sisään" in page


def test_an_export_downloaded_here_verifies_here_and_a_changed_one_fails(site: Site) -> None:
    with site.ws() as ws:
        api.run(ws, as_of=AS_OF)
    client = signed_in(site, "rm1")
    answer = client.post(
        "/evidence/export", data={"csrf_token": token(client, "/evidence"), "format": "jsonl"}
    )
    data = answer.data
    page = client.post(
        "/evidence/verify",
        data={
            "csrf_token": token(client, "/evidence"),
            "files": (io.BytesIO(data), "certificates-jsonl.zip"),
        },
        content_type="multipart/form-data",
    )
    assert page.status_code == 200 and 'id="verified"' in page.text and "Verified" in page.text
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    name = "certificates.jsonl"
    assert b"interviewees" in files[name]
    files[name] = files[name].replace(b"interviewees", b"interviewers", 1)
    changed = io.BytesIO()
    with zipfile.ZipFile(changed, "w") as archive:
        for member, body in files.items():
            archive.writestr(member, body)
    page = client.post(
        "/evidence/verify",
        data={
            "csrf_token": token(client, "/evidence"),
            "files": (io.BytesIO(changed.getvalue()), "changed.zip"),
        },
        content_type="multipart/form-data",
    )
    assert "Verification failed" in page.text


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members:
            archive.writestr(name, body)
    return out.getvalue()


def _upload(client: Any, *files: tuple[bytes, str]) -> Any:
    return client.post(
        "/evidence/verify",
        data={
            "csrf_token": token(client, "/evidence"),
            "files": [(io.BytesIO(body), name) for body, name in files],
        },
        content_type="multipart/form-data",
    )


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    "members",
    [
        [("../evil.jsonl", b"{}")],
        [("..", b"{}")],
        [(".", b"{}")],
        [("a.jsonl", b"{}"), ("a.jsonl", b"{}")],
        [(f"{i}.jsonl", b"{}") for i in range(6)],
        [("sub/a.jsonl", b"{}")],
    ],
    ids=["parent", "dotdot", "dot", "repeated", "six", "folder"],
)
def test_a_zip_that_reaches_outside_is_refused(
    site: Site, members: list[tuple[str, bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad member is a clear 400 and writes nothing anywhere (the unpack folder is a
    temporary directory under TMPDIR, which the test points at an empty one)."""
    unpack = tmp_path / "unpack" / "here"
    unpack.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(unpack))
    client = signed_in(site, "rm1")
    answer = _upload(client, (_zip(members), "x.zip"))
    assert answer.status_code == 400
    assert list(unpack.iterdir()) == [] and list(unpack.parent.iterdir()) == [unpack]


def _bzip2_bomb(declared: int) -> bytes:
    """A zip whose one bzip2 member holds 64 MiB of zeros but declares ``declared`` bytes,
    with the CRC of what it declares: zipfile unpacks bzip2 in one piece before any check."""
    import bz2
    import zlib

    packed = bz2.compress(b"\0" * (64 * 1024 * 1024), 9)
    crc = zlib.crc32(b"\0" * declared)
    name = b"a.jsonl"
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 46, 0, 12, 0, 0, crc, len(packed),
                        declared, len(name), 0) + name + packed  # fmt: skip
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 46, 46, 0, 12, 0, 0, crc,
                          len(packed), declared, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


def _with_end_record(body: bytes, members: int) -> bytes:
    """``body``'s end record made to announce ``members`` members."""
    at = body.rfind(b"PK\x05\x06")
    return body[: at + 8] + struct.pack("<HH", members, members) + body[at + 12 :]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_bzip2_bomb(10), id="bzip2-bomb"),
        pytest.param(_with_end_record(_zip([("a.jsonl", b"{}")]), 50_000), id="many-members"),
        pytest.param(_zip([("a.jsonl", b"{}")])[:-30], id="truncated"),
        pytest.param(b"not a zip at all", id="not-a-zip"),
    ],
)
def test_a_hostile_zip_is_a_clear_400(site: Site, body: bytes) -> None:
    """Compression zipfile cannot bound, a directory announcing more members than an export
    has (refused before zipfile reads it), broken archives: each a 400, never a 500."""
    client = signed_in(site, "rm1")
    assert _upload(client, (body, "x.zip")).status_code == 400


def test_names_are_matched_whole_and_one_budget_covers_the_request(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not uploads.plain_name("a.jsonl\n") and not uploads.plain_name("..\n")
    assert uploads.plain_name("a.manifest.json") and not uploads.plain_name("...")
    monkeypatch.setattr(uploads, "UNPACKED_LIMIT", 1000)
    client = signed_in(site, "rm1")
    each = _zip([("a.jsonl", b"x" * 900)]), _zip([("b.jsonl", b"y" * 900)])
    assert _upload(client, (each[0], "one.zip"), (each[1], "two.zip")).status_code == 400


def test_an_upload_named_dot_dot_is_refused(site: Site) -> None:
    client = signed_in(site, "rm1")
    assert _upload(client, (b"{}", "..")).status_code == 400
    assert _upload(client, (b"{}", "a.jsonl"), (b"{}", "a.jsonl")).status_code == 400


def test_a_zip_that_unpacks_past_the_limit_is_refused_before_writing(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip bomb is refused from the sizes it declares: 2 MiB of zeros compress to a few
    kilobytes, and with a 1 MiB limit nothing is unpacked at all."""
    written: list[str] = []
    real_open = Path.open

    def watched(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "x" in mode or "w" in mode:
            written.append(self.name)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(uploads, "UNPACKED_LIMIT", 1024 * 1024)
    monkeypatch.setattr(Path, "open", watched)
    bomb = _zip([("a.jsonl", b"0" * (1024 * 1024)), ("b.manifest.json", b"0" * (1024 * 1024))])
    assert len(bomb) < 64 * 1024
    client = signed_in(site, "rm1")
    assert _upload(client, (bomb, "bomb.zip")).status_code == 400
    assert "a.jsonl" not in written and "b.manifest.json" not in written
    monkeypatch.setattr(uploads, "UNPACKED_LIMIT", 4 * 1024 * 1024)
    page = _upload(client, (bomb, "bomb.zip"))  # under the limit: unpacked and checked
    assert "a.jsonl" in written and "Verification failed" in page.text


def test_four_eyes_the_second_person_completes_and_the_first_cannot_twice(site: Site) -> None:
    settings = site.cat.root / "retention.yaml"
    settings.write_text(
        settings.read_text("utf-8") + "approvals:\n  two_people_registers: [xamk-alumni]\n",
        "utf-8",
    )
    path = f"/plans/{site.plan_id}"
    first = signed_in(site, "rm1")
    first.post(f"{path}/approve", data={"csrf_token": token(first, path)})
    page = first.get(path).text
    main = page[page.find("<main") :]
    assert "needs more approvals" in main and "1 more approval(s) from another person" in main, (
        main[:3000]
    )
    first.post(f"{path}/approve", data={"csrf_token": token(first, path)})
    assert approvers(site) == [local("rm1")]  # the same person twice is one pair of eyes
    second = signed_in(site, "dpo1")
    second.post(f"{path}/approve", data={"csrf_token": token(second, path)})
    assert approvers(site) == [local("rm1"), local("dpo1")]
    page = second.get(path).text
    assert "Your approval was recorded." in page and "Still needed" not in page


def test_an_approver_who_then_excludes_a_record_is_told_their_approval_no_longer_counts(
    site: Site,
) -> None:
    settings = site.cat.root / "retention.yaml"
    settings.write_text(
        settings.read_text("utf-8") + "approvals:\n  two_people_registers: [xamk-alumni]\n",
        "utf-8",
    )
    path = f"/plans/{site.plan_id}"
    client = signed_in(site, "rm1")
    client.post(f"{path}/approve", data={"csrf_token": token(client, path)})
    answer = client.post(
        f"{path}/exclude",
        data={"csrf_token": token(client, path), "policy": "xamk-alumni/alumni-membership",
              "key": "1", "reason": "complaint pending"},
    )  # fmt: skip
    assert answer.status_code == 302
    page = client.get(path).text
    main = page[page.find("<main") :]
    assert "2 more approval(s) from another person" in main, main[:3000]
    assert "the approval of the person who last changed the plan does not count" in main
    assert "(0 of 2 approvals)" in client.get("/plans").text


def test_a_rejection_needs_a_comment_and_ends_the_plan(site: Site) -> None:
    client = signed_in(site, "rm1")
    path = f"/plans/{site.plan_id}"
    client.post(f"{path}/reject", data={"csrf_token": token(client, path), "comment": ""})
    assert "Say why" in client.get(path).text
    client.post(f"{path}/reject", data={"csrf_token": token(client, path), "comment": "wrong"})
    page = client.get(path).text
    assert 'id="plan-state">rejected' in page and "Rejected: rm1" in page
    client.post(f"{path}/approve", data={"csrf_token": token(client, path)})
    assert approvers(site) == []


def test_users_add_reads_the_password_from_stdin_and_stores_only_a_hash(tmp_path: Path) -> None:
    import subprocess
    import sys

    cat = make_catalog(tmp_path / "sq")
    command = [
        sys.executable,
        "-m",
        "retention",
        "users",
        "add",
        "mia",
        "--role",
        "archivist",
        "--password-stdin",
        "--catalog",
        str(cat.root),
    ]
    done = subprocess.run(
        command,
        input="a long enough password\n",
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    short = subprocess.run(
        command,
        input="short\n",
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
        check=False,
    )
    assert short.returncode == 2 and "shorter than 12" in short.stderr
    assert cat.state.read_bytes().count(b"a long enough password") == 0
    with Workspace.open(cat.root, env()) as ws:
        assert accounts.check(ws.state, "mia", "a long enough password") == accounts.Account(
            "mia", "archivist"
        )
        assert accounts.check(ws.state, "mia", "a wrong password!") is None
        accounts.disable(ws.state, "mia")
        assert accounts.check(ws.state, "mia", "a long enough password") is None


def test_web_settings_errors_name_the_key(tmp_path: Path) -> None:
    from retention.errors import CatalogError, UsageError

    cat = make_catalog(tmp_path / "sq")
    settings = cat.root / "retention.yaml"
    base = settings.read_text("utf-8")
    settings.write_text(
        base + "web:\n  oidc:\n    issuer: http://idp.example\n"
        "    client_id: x\n    roles: {boss: [a]}\n",
        "utf-8",
    )
    with pytest.raises(CatalogError) as failed:
        create_app(cat.root, env())
    text = str(failed.value)
    assert "retention.yaml" in text and "issuer" in text and "boss" in text
    settings.write_text(
        base + "web:\n  oidc:\n    issuer: https://idp.example\n"
        "    client_id: x\n    client_secret_env: IDP_SECRET\n",
        "utf-8",
    )
    with pytest.raises(UsageError, match=r"web\.oidc\.client_secret_env: the variable IDP_SECRET"):
        create_app(cat.root, env())


def _post_routes(app: Flask, plan_id: str) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "POST" in (rule.methods or set()):
            values = {"plan_id": plan_id, "hold_id": "H-00000000"}
            paths.append(rule.build({k: values[k] for k in rule.arguments})[1])
    return paths


def test_every_form_is_refused_without_its_csrf_token(site: Site) -> None:
    client = signed_in(site, "rm1")
    paths = _post_routes(site.app, site.plan_id)
    assert len(paths) >= 10
    for path in paths:
        answer = client.post(path, data={"comment": "x", "reason": "x", "lang": "fi"})
        assert answer.status_code == 400, path
    assert approvers(site) == [] and client.get("/plans").status_code == 200


def test_every_action_checks_the_role_on_the_server(site: Site) -> None:
    """A viewer may read and verify; every other POST of a signed-in page is refused."""
    client = signed_in(site, "view1")
    open_to_all = {"/signin/local", "/signout", "/language", "/evidence/verify"}
    refused = [p for p in _post_routes(site.app, site.plan_id) if p not in open_to_all]
    assert len(refused) >= 6
    for path in refused:
        answer = client.post(path, data={"csrf_token": token(client, "/plans"), "format": "csv",
                                         "reason": "x", "comment": "x"})  # fmt: skip
        assert answer.status_code == 403, path
    assert approvers(site) == []
    with site.ws() as ws:
        assert ws.holds.all() == []


def test_a_plans_reports_download_in_the_pages_language(site: Site) -> None:
    client = signed_in(site, "view1")
    for fmt, marker in (("json", b'"plan_id"'), ("csv", b"register,policy"), ("html", b"<html")):
        answer = client.get(f"/plans/{site.plan_id}/report.{fmt}")
        assert answer.status_code == 200 and marker in answer.data, fmt
        assert answer.headers["Content-Disposition"].startswith("attachment"), fmt
    finnish = client.get(f"/plans/{site.plan_id}/report.html", headers={"Accept-Language": "fi"})
    assert b"Toimeenpanosuunnitelma" in finnish.data
    assert client.get("/plans/P20990101-00000000/report.csv").status_code == 404


def test_a_proof_downloaded_here_verifies_with_only_the_public_key(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from retention.evidence import signing
    from retention.evidence.proof import verify_proof

    person = "030392-902C"
    with site.ws() as ws:
        api.run(ws, as_of=AS_OF)
        assert api.erase(ws, person, as_of=AS_OF).exit_code == 0
        public_key = signing.load_public(ws.public_key_path)
        subject_ref = ws.secret.subject_ref(person)
        seqs = ws.ledger.seqs_of_subject(subject_ref)
    assert seqs
    client = signed_in(site, "rm1")
    answer = client.post(
        "/evidence/prove",
        data={"csrf_token": token(client, "/evidence"), "subject": person},
    )
    assert answer.status_code == 200, answer.text[:2000]
    assert answer.mimetype == "application/json"
    assert "proof.json" in answer.headers["Content-Disposition"]
    proof = json.loads(answer.data)
    assert [e["header"]["subject_ref"] for e in proof["certificates"]] == [subject_ref] * len(seqs)
    assert person.encode() not in answer.data
    (tmp_path / "proof.json").write_bytes(answer.data)
    report = verify_proof(tmp_path / "proof.json", public_key)
    assert report.ok and report.faults == [] and report.certificates == len(seqs)
    assert person not in capsys.readouterr().out
    # One record by its policy and key: the same proof the command line writes.
    answer = client.post(
        "/evidence/prove",
        data={"csrf_token": token(client, "/evidence"), "policy": "xamk-alumni/alumni-membership",
              "key": "1"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text[:2000]
    (tmp_path / "record.json").write_bytes(answer.data)
    assert verify_proof(tmp_path / "record.json", public_key).ok
    # Changed, it no longer verifies.
    changed = json.loads(answer.data)
    changed["certificates"][0]["leaf_index"] += 1
    (tmp_path / "changed.json").write_text(json.dumps(changed), "utf-8")
    assert not verify_proof(tmp_path / "changed.json", public_key).ok


def test_a_proof_needs_csrf_and_the_export_permission_and_names_no_subject(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    with site.ws() as ws:
        api.run(ws, as_of=AS_OF)
    client = signed_in(site, "rm1")
    answer = client.post("/evidence/prove", data={"subject": "030392-902C"})
    assert answer.status_code == 400 and b"certificates" not in answer.data
    viewer = signed_in(site, "view1")
    assert 'id="prove-form"' not in viewer.get("/evidence").text
    answer = viewer.post(
        "/evidence/prove",
        data={"csrf_token": token(viewer, "/evidence"), "subject": "030392-902C"},
    )
    assert answer.status_code == 403
    # A subject with no certificate: a page that says so, naming the subject by reference only.
    answer = client.post(
        "/evidence/prove",
        data={"csrf_token": token(client, "/evidence"), "subject": "999999-999X"},
    )
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert "no certificate of subject reference" in answer.text
    assert "999999-999X" not in answer.text
    answer = client.post("/evidence/prove", data={"csrf_token": token(client, "/evidence")})
    assert answer.status_code == 400 and "Give a data subject" in answer.text
    out = capsys.readouterr().out
    assert "030392-902C" not in out and "999999-999X" not in out
    # The subject travels only in the form body: the route takes nothing in its URL, and no
    # GET would put the form's fields in a query string.
    (rule,) = [r for r in site.app.url_map.iter_rules() if r.endpoint == "pages.prove"]
    assert rule.rule == "/evidence/prove" and not rule.arguments
    assert "GET" not in (rule.methods or set())


def test_metrics_are_served_without_sign_in_and_parse(site: Site) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with site.ws() as ws:
        api.run(ws, as_of=AS_OF, job="nightly")
    answer = site.app.test_client().get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    success = families["retention_last_success_timestamp_seconds"].samples
    assert [(s.labels, s.value > 0) for s in success] == [({"job": "nightly"}, True)]
    assert families["retention_state_readable"].samples[0].value == 1
    assert "default-src 'self'" in answer.headers["Content-Security-Policy"]


def test_metrics_can_require_a_sign_in_or_be_off(site: Site) -> None:
    settings = site.cat.root / "retention.yaml"
    text = settings.read_text("utf-8")
    for value, anonymous, member in (("signed-in", 302, 200), ("off", 404, 404)):
        web = "web:\n  secure_cookies: false\n  metrics: " + value + "\n"
        settings.write_text(text.replace("web:\n", web, 1) if "web:\n" in text else text + web)
        app = create_app(site.cat.root, env(), SESSION_COOKIE_SECURE=False)
        assert app.test_client().get("/metrics").status_code == anonymous
        client = app.test_client()
        client.post("/signin/local", data={"csrf_token": token(client), "name": "view1",
                                           "password": PASSWORD})  # fmt: skip
        assert client.get("/metrics").status_code == member
