"""The web workspace in a real browser: Playwright drives Debian's Chromium through sign-in
at a real OpenID Connect provider run here (``oidc-provider-mock``), as each role; axe-core
checks every page; screenshots of the main pages are written for a reviewer.

One browser, one provider and one server for the module: each person is a browser context
of their own (their own cookies). Screenshots go to ``$RETENTION_TEST_OUTPUT`` (default
``test-output/``, git-ignored) under ``web/``.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from retention import api
from retention.web import accounts, create_app
from retention.workspace import Workspace
from tests.conftest import AS_OF
from tests.test_cli import SqliteCatalog, env, make_catalog, retention

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# One story in order (sign-in, exclusion, four eyes, the run): pytest-xdist's `loadfile`
# (pyproject.toml) gives the whole module to one worker.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="no chromium on PATH (CI installs Debian's chromium package)",
)
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]  # fmt: skip
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
OUTPUT = Path(os.environ.get("RETENTION_TEST_OUTPUT", Path(__file__).parent.parent / "test-output"))
PASSWORD = "correct horse battery staple"
#: The people at the identity provider, and the groups the catalog maps to roles.
PEOPLE = {
    "anna": {"name": "Anna Arkistolainen", "groups": ["retention-records-managers"]},
    "ben": {"name": "Ben Bergström", "groups": ["retention-records-managers", "staff"]},
    "cara": {"name": "Cara Colliander", "groups": ["retention-records-managers"]},
    "vera": {"name": "Vera Viewer", "groups": ["staff"]},
    "olli": {"name": "Olli Outsider", "groups": ["somebody-else"]},
}


@dataclass
class Site:
    cat: SqliteCatalog
    url: str
    issuer: str
    browser: Any
    plan_id: str
    axe: str
    findings: dict[str, list[str]] = field(default_factory=dict)

    def ws(self) -> Workspace:
        return Workspace.open(self.cat.root, env())


def _web_settings(issuer: str) -> str:
    return f"""
web:
  secure_cookies: false  # the tests' server speaks plain http on localhost
  oidc:
    issuer: {issuer}
    client_id: retention-tests
    client_secret_env: RETENTION_OIDC_SECRET
    roles_claim: groups
    roles:
      records-manager: [retention-records-managers]
      viewer: [staff]
approvals:
  two_people_registers: [xamk-alumni]  # four eyes on the register the plan disposes of
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from oidc_provider_mock import User, run_server_in_thread
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    base = tmp_path_factory.mktemp("web")
    cat = make_catalog(base / "sq")
    users = [User(sub=sub, claims=claims) for sub, claims in PEOPLE.items()]
    with run_server_in_thread(user_claims=users) as provider:
        issuer = f"http://localhost:{provider.server_port}"
        settings = cat.root / "retention.yaml"
        settings.write_text(settings.read_text("utf-8") + _web_settings(issuer), "utf-8")
        environ = {**env(), "RETENTION_OIDC_SECRET": "client-secret-of-the-tests"}
        with Workspace.open(cat.root, environ) as ws:
            made, _ = api.plan(ws, as_of=AS_OF)
            accounts.add(ws.state, "lea", "records-manager", PASSWORD)
        app = create_app(cat.root, environ)
        server = make_server("localhost", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=FLAGS
            )
            try:
                yield Site(cat, f"http://localhost:{server.server_port}", issuer, browser,
                           made.plan_id, AXE.read_text("utf-8"))  # fmt: skip
            finally:
                browser.close()
                server.shutdown()


def signed_in(site: Site, sub: str, locale: str = "en-GB") -> Any:
    """A browser context of its own for ``sub``, signed in at the identity provider."""
    context = site.browser.new_context(locale=locale)
    page = context.new_page()
    page.goto(f"{site.url}/signin")
    page.click("#signin-oidc")
    page.wait_for_url(f"{site.issuer}/**")
    page.click(f'button[name="sub"][value="{sub}"]')
    page.wait_for_url(f"{site.url}/**")
    return page


def checked(site: Site, page: Any, name: str) -> None:
    """axe-core in the page: no serious or critical violation; then a screenshot."""
    page.evaluate(site.axe)
    result = page.evaluate("async () => await axe.run(document)")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    site.findings[name] = bad
    folder = OUTPUT / "web"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    assert bad == [], (name, bad)
    assert len(result["passes"]) > 10  # axe really ran its rules on the page


def plan_state(site: Site) -> Any:
    with site.ws() as ws:
        return next(p for p in api.plans(ws) if p.plan_id == site.plan_id)


def test_a_records_manager_signs_in_and_every_page_is_accessible(site: Site) -> None:
    page = signed_in(site, "anna")
    assert page.url == f"{site.url}/plans"
    assert "Anna Arkistolainen" in page.inner_text("header")
    checked(site, page, "plans")
    page.click(f"a[href='/plans/{site.plan_id}']")
    assert page.inner_text("#plan-state") == "pending"
    changes = page.inner_text("article[data-policy='xamk-alumni/alumni-membership'] .changes")
    assert "email (erase: emptied)" in changes and "person_id (pseudonym" in changes
    checked(site, page, "plan")
    page.goto(f"{site.url}/holds")
    checked(site, page, "holds")
    page.goto(f"{site.url}/evidence")
    assert page.locator("#forecast-chart rect.bar").count() > 0
    checked(site, page, "evidence")
    page.goto(f"{site.url}/plans/no-such-plan")
    checked(site, page, "error-404")
    page.context.close()


def approvers(site: Site) -> list[tuple[str, str]]:
    review = plan_state(site).review
    return [(v.by.issuer, v.by.subject) for v in review.approvals]


def test_an_exclusion_makes_its_author_the_plans_last_changer(site: Site) -> None:
    page = signed_in(site, "anna")
    page.goto(f"{site.url}/plans/{site.plan_id}")
    page.select_option("#exclude-policy", "xamk-alumni/customer-contracts")
    page.fill("#exclude-key", "HQ\nC-1")
    page.fill("#exclude-reason", "Disputed in case 17/2026")
    page.click("#exclude")
    assert "a hold keeps it" in page.inner_text("main")
    assert "Excluded a record: Anna Arkistolainen" in page.inner_text("#decisions")
    status = plan_state(site)
    assert status.changed_by is not None and status.changed_by.subject == "anna"
    with site.ws() as ws:
        [hold] = api.holds(ws)
    assert hold.policy == "customer-contracts" and hold.placed_by == "Anna Arkistolainen"
    page.goto(f"{site.url}/holds")
    assert "Disputed in case 17/2026" in page.inner_text("#holds")
    page.goto(f"{site.url}/plans/{site.plan_id}")
    page.click("#approve")  # four eyes: who changed the plan cannot approve it
    assert page.locator(".message.error").count() == 1
    assert approvers(site) == []
    page.context.close()


def test_two_records_managers_complete_a_four_eyes_approval(site: Site) -> None:
    page = signed_in(site, "ben")
    page.goto(f"{site.url}/plans/{site.plan_id}")
    page.fill("#approve-comment", "Checked against the records plan")
    page.click("#approve")
    assert "needs more approvals" in page.inner_text("main")
    assert "from another person" in page.inner_text("#missing")
    assert plan_state(site).state == "pending"
    page.context.close()
    page = signed_in(site, "cara")
    page.goto(f"{site.url}/plans/{site.plan_id}")
    page.click("#approve")
    assert "Your approval was recorded." in page.inner_text("main")
    assert page.inner_text("#plan-state") == "approved"
    checked(site, page, "plan-approved")
    assert approvers(site) == [(site.issuer, "ben"), (site.issuer, "cara")]
    page.context.close()


def test_a_viewer_sees_the_plan_but_its_approval_is_refused(site: Site) -> None:
    before = plan_state(site)
    page = signed_in(site, "vera")
    page.goto(f"{site.url}/plans/{site.plan_id}")
    assert page.locator("#approve").count() == 0 and page.locator("#exclude").count() == 0
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(f"{site.url}/plans/{site.plan_id}/approve",
                               form={"csrf_token": token, "comment": "me too"})  # fmt: skip
    assert answer.status == 403
    assert plan_state(site) == before
    page.goto(f"{site.url}/plans/{site.plan_id}/approve")  # a GET: not how approving works
    assert "not how this page is used" in page.inner_text("main")
    page.context.close()


def test_a_person_without_a_role_is_refused_at_sign_in(site: Site) -> None:
    page = signed_in(site, "olli")
    assert "no role in this workspace" in page.inner_text("main")
    page.goto(f"{site.url}/plans")
    assert page.url.startswith(f"{site.url}/signin")
    page.context.close()


def test_a_local_account_signs_in_in_finnish(site: Site) -> None:
    context = site.browser.new_context(locale="fi-FI")
    page = context.new_page()
    page.goto(f"{site.url}/plans")
    assert page.url.startswith(f"{site.url}/signin")
    assert page.inner_text("h1") == "Kirjaudu sisään"
    checked(site, page, "signin-fi")
    page.fill("#name", "lea")
    page.fill("#password", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(f"{site.url}/plans")
    assert page.inner_text("h1") == "Toimeenpanosuunnitelmat"
    checked(site, page, "plans-fi")
    page.goto(f"{site.url}/plans/{site.plan_id}")
    checked(site, page, "plan-fi")
    page.goto(f"{site.url}/holds")
    checked(site, page, "holds-fi")
    page.goto(f"{site.url}/evidence")
    checked(site, page, "evidence-fi")
    page.click("header button[lang=en]")
    assert page.inner_text("h1") == "Evidence"
    context.close()


def test_the_run_of_the_plan_keeps_the_excluded_record_and_names_both_approvers(
    site: Site,
) -> None:
    done = retention("run", "--plan", site.plan_id, "--json", cwd=site.cat.root)
    assert done.returncode == 0, done.stdout + done.stderr
    with site.ws() as ws:
        [run] = api.status(ws, 1).runs
        certificates = [c for c in ws.ledger.iter_certificates() if c["run_id"] == run["run_id"]]
    assert run["executed_plan"] == site.plan_id and certificates
    engine = sa.create_engine(site.cat.source_url)
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT site, case_no FROM contracts")).all()
    engine.dispose()
    assert ("HQ", "C-1") in kept  # excluded: held through the run
    assert ("B", "C-1") not in kept  # the plan's other due contract is gone
    for certificate in certificates:
        named = [(a["issuer"], a["subject"], a["name"], a["authenticated"])
                 for a in certificate["approvals"]]  # fmt: skip
        assert named == [(site.issuer, "ben", "Ben Bergström", True),
                         (site.issuer, "cara", "Cara Colliander", True)]  # fmt: skip
