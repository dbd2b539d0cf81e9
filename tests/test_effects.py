"""What an action changes, shown per policy in the plan report and the certificate of
destruction: the columns per strategy, the columns left, the archive package, the register."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pypdf

from retention import api
from retention.evidence.effects import effect_of
from retention.reports.formats import write_report
from retention.workspace import Workspace
from tests.conftest import AS_OF

ARCHIVE_POLICY = """\
register:
  id: haastattelut
  name: Haastatteluaineisto
  controller: Metropolia
  source: "Tiedonohjaussuunnitelma 2024, tehtäväluokka 05.01"
policies:
  - id: interview-archive
    connector: crm
    table: interviewees
    key: id
    until: 2022-06-30
    action: archive
    then: delete
"""
#: Values of the source rows: none may appear in a report or a certificate.
PERSONAL = ("aino@example.fi", "Aino", "010190-900A", "note about", "Kalle")
REWRITTEN = (
    "first_name (erase: emptied); email (erase: emptied); birth_date (year: only the year is "
    "kept); person_id (pseudonym: replaced by a keyed pseudonym); notes (redact: a value is "
    "replaced by [redacted]; an empty cell stays empty)"
)
LEFT = "Leaves as they are: kind, turvakielto, membership_ended_on."


def changes_of(page: str, name: str) -> str:
    """The text of the ``data-changes`` list of ``name``, tags stripped, spaces collapsed."""
    found = re.search(rf'<ul class="changes" data-changes="{name}">(.*?)</ul>', page, re.DOTALL)
    assert found is not None, name
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_plan_reports_say_what_each_action_changes(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """JSON (additive keys), CSV (added columns) and HTML (en, fi) name the rewritten columns
    with their strategies, the columns left as they are (as the source describes the table),
    the archive package's columns and format, and the register's controller and records plan;
    never a value."""
    (catalog / "policies" / "amkoodari.yaml").write_text(ARCHIVE_POLICY, encoding="utf-8")
    reports = [tmp_path / n for n in ("plan.json", "plan.csv", "plan.html")]
    with Workspace.open(catalog, environ) as ws:
        made, _ = api.plan(ws, as_of=AS_OF, report=reports[0], more_reports=reports[1:])
        write_report(ws, made.plan_id, tmp_path / "fi.html", lang="fi")

    doc = json.loads(reports[0].read_text(encoding="utf-8"))
    by_policy = {p["policy"]: p for p in doc["policies"]}
    alumni = by_policy["alumni-membership"]["changes"]
    assert alumni["anonymise"] == [
        {"column": "first_name", "strategy": "erase"}, {"column": "email", "strategy": "erase"},
        {"column": "birth_date", "strategy": "year"},
        {"column": "person_id", "strategy": "pseudonym"}, {"column": "notes", "strategy": "redact"},
    ]  # fmt: skip
    assert alumni["key"] == ["id"] and alumni["columns_from"] == "source"
    assert alumni["untouched"] == ["kind", "turvakielto", "membership_ended_on"]
    assert alumni["deletes_record"] is False and alumni["archive"] is None
    contracts = by_policy["customer-contracts"]["changes"]
    assert contracts["deletes_record"] is True and contracts["anonymise"] == []
    archive = by_policy["interview-archive"]["changes"]["archive"]
    assert archive["format"] == "BagIt (RFC 8493)" and archive["columns"] == ["id", "name"]
    assert by_policy["interview-archive"]["changes"]["then"] == "delete"
    assert doc["registers"]["xamk-alumni"] == {
        "name": "Alumnirekisteri", "controller": "Kaakkois-Suomen Ammattikorkeakoulu Oy",
        "records_plan": "Alumnit ja asiakkuudet, tietosuojailmoitus 8.12.2022",
        "statutory": False,
    }  # fmt: skip
    assert by_policy["alumni-membership"]["counts"]["expire"] == 3  # the old keys are still there

    with reports[1].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    alumni_rows = [r for r in rows if r["policy"] == "alumni-membership"]
    assert len(alumni_rows) == 3
    for row in alumni_rows:
        assert row["changes"] == (
            "anonymise: first_name=erase, email=erase, birth_date=year, person_id=pseudonym, "
            "notes=redact; key kept: id; untouched: kind, turvakielto, membership_ended_on"
        )
        assert row["controller"] == "Kaakkois-Suomen Ammattikorkeakoulu Oy"
        assert row["register_name"] == "Alumnirekisteri"
        assert row["records_plan"] == "Alumnit ja asiakkuudet, tietosuojailmoitus 8.12.2022"
    archived = next(r for r in rows if r["policy"] == "interview-archive")["changes"]
    assert archived == "archive: BagIt (RFC 8493) package, columns id, name; then delete: whole row"

    page = reports[2].read_text(encoding="utf-8")
    shown = changes_of(page, "xamk-alumni/alumni-membership")
    assert REWRITTEN in shown and LEFT in shown and "Keeps the key id" in shown
    assert "every column of the row" in changes_of(page, "xamk-alumni/customer-contracts")
    packaged = changes_of(page, "haastattelut/interview-archive")
    assert "BagIt (RFC 8493)" in packaged and "columns id, name" in packaged
    assert "deletes the whole record" in packaged
    assert "Tiedonohjaussuunnitelma 2024, tehtäväluokka 05.01" in page
    finnish = changes_of((tmp_path / "fi.html").read_text(encoding="utf-8"),
                         "xamk-alumni/alumni-membership")  # fmt: skip
    assert "Anonymisoi: muuttaa sarakkeet first_name (erase: tyhjennetään)" in finnish
    assert "Jättää ennalleen: kind, turvakielto, membership_ended_on." in finnish

    for path in [*reports, tmp_path / "fi.html"]:
        text = path.read_text(encoding="utf-8")
        for value in PERSONAL:
            assert value not in text, (path.name, value)


def test_the_certificate_of_destruction_says_what_was_changed_and_whose_register(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """Per register its controller, name and records plan; per policy the columns rewritten
    and how, the columns left and the columns the certificates name; HTML and PDF alike."""
    with Workspace.open(catalog, environ) as ws:
        api.run(ws, as_of=AS_OF)
        api.export(ws, tmp_path / "destruction.html")
        api.export(ws, tmp_path / "destruction.pdf")
    page = (tmp_path / "destruction.html").read_text(encoding="utf-8")
    shown = changes_of(page, "xamk-alumni/alumni-membership")
    assert REWRITTEN in shown and LEFT in shown
    assert "Columns the certificates name as anonymised: birth_date, email, first_name, notes, " \
        "person_id." in shown  # fmt: skip
    meta = re.search(r'<dl class="register-meta" data-register="xamk-alumni">(.*?)</dl>', page,
                     re.DOTALL)  # fmt: skip
    assert meta is not None
    for text in ("Alumnirekisteri", "Kaakkois-Suomen Ammattikorkeakoulu Oy",
                 "Alumnit ja asiakkuudet, tietosuojailmoitus 8.12.2022"):  # fmt: skip
        assert text in meta.group(1), text

    pages = pypdf.PdfReader(tmp_path / "destruction.pdf").pages
    pdf = " ".join(" ".join(page.extract_text() for page in pages).split())
    for text in (REWRITTEN, LEFT, "Kaakkois-Suomen Ammattikorkeakoulu Oy",
                 "Alumnit ja asiakkuudet, tietosuojailmoitus 8.12.2022"):  # fmt: skip
        assert text in pdf, text
    for value in PERSONAL:
        assert value not in page and value not in pdf


def test_without_the_source_the_columns_the_policy_names_are_shown_and_said_to_be(
    catalog: Path, environ: dict[str, str]
) -> None:
    """A source that cannot be described: the columns left are those the policy names (the
    trigger, the secret and match columns), and the sentence says where they came from."""
    with Workspace.open(catalog, environ) as ws:
        bound = next(b for b in ws.catalog.policies if b.policy.id == "alumni-membership")
    effect = effect_of(bound, None)
    assert effect.columns_from == "policy"
    assert effect.untouched == ("membership_ended_on", "turvakielto", "kind")
    assert effect.as_json()["columns_from"] == "policy"


def test_a_rule_changed_since_the_plan_is_not_described_as_the_plans(
    catalog: Path, environ: dict[str, str], tmp_path: Path
) -> None:
    """The report of an older plan, and a certificate of older disposals, whose rule has
    changed since say nothing of the new rule's columns: JSON ``changes`` is null, the page
    says the rule is gone; the certificate keeps the columns its certificates name."""
    with Workspace.open(catalog, environ) as ws:
        made, _ = api.plan(ws, as_of=AS_OF)
        api.run(ws, as_of=AS_OF)
    policies = catalog / "policies" / "xamk.yaml"
    text = policies.read_text(encoding="utf-8")
    policies.write_text(text.replace("notes: redact", "notes: erase"), encoding="utf-8")
    with Workspace.open(catalog, environ) as ws:
        write_report(ws, made.plan_id, tmp_path / "old.json")
        write_report(ws, made.plan_id, tmp_path / "old.html")
        api.export(ws, tmp_path / "destruction.html")
    doc = json.loads((tmp_path / "old.json").read_text(encoding="utf-8"))
    by_policy = {p["policy"]: p for p in doc["policies"]}
    assert by_policy["alumni-membership"]["changes"] is None
    assert by_policy["customer-contracts"]["changes"]["deletes_record"] is True
    page = (tmp_path / "old.html").read_text(encoding="utf-8")
    assert "no longer holds the rule" in changes_of(page, "xamk-alumni/alumni-membership")
    certified = changes_of((tmp_path / "destruction.html").read_text(encoding="utf-8"),
                           "xamk-alumni/alumni-membership")  # fmt: skip
    assert "no longer holds the rule" in certified and "notes (erase" not in certified
    assert "Columns the certificates name as anonymised: birth_date, email" in certified
