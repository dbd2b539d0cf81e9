"""Loading a catalog directory (SPEC §1–4): every bad input is a Problem naming where it is."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from retention.catalog.loading import Catalog, load_catalog
from retention.errors import CatalogError, Problem, UsageError

CONNECTOR = """\
id: crm
kind: sql
url: ${CRM_URL:-sqlite:///demo/crm.db}
"""

JOB = """\
id: nightly
schedule: "30 2 * * *"
timezone: Europe/Helsinki
policies: ["*"]
mode: enforce
"""

REGISTER_HEAD = """\
register:
  id: {register}
  name: Alumnirekisteri
  controller: Kaakkois-Suomen Ammattikorkeakoulu Oy
  source: "Alumnit ja asiakkuudet, tietosuojailmoitus 8.12.2022"
policies:
"""

BASE_POLICY: dict[str, str] = {
    "id": "alumni-membership",
    "connector": "crm",
    "table": "alumni",
    "key": "id",
    "trigger": "membership_ended_on",
    "retain": "P0D",
    "action": "delete",
}


def policy(**fields: str | None) -> str:
    """One policy as a YAML list item: BASE_POLICY with ``fields`` replaced (None drops a key)."""
    merged = {**BASE_POLICY, **fields}
    lines = [f"{name}: {value}" for name, value in merged.items() if value is not None]
    return "  - " + "\n    ".join(lines) + "\n"


def policy_file(register: str, *policies: str) -> str:
    """A policies/ file: a register block followed by the given policy items."""
    return REGISTER_HEAD.format(register=register) + "".join(policies)


BASE_FILES: dict[str, str] = {
    "connectors/crm.yaml": CONNECTOR,
    "policies/xamk-alumni.yaml": policy_file("xamk-alumni", policy()),
    "jobs/nightly.yaml": JOB,
}


def write(root: Path, relative: str, text: str) -> Path:
    """Write ``text`` (dedented) to ``root/relative`` and return the path."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def make_catalog(
    root: Path, files: Mapping[str, str | None] | None = None, *, base: bool = True
) -> Path:
    """A catalog directory: the valid base files (unless ``base`` is false) overlaid by ``files``.

    A ``None`` value removes that base file.
    """
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    contents = {**(BASE_FILES if base else {}), **(files or {})}
    for relative, text in contents.items():
        if text is not None:
            write(root, relative, text)
    return root


def problems_of(root: Path, environ: Mapping[str, str] | None = None) -> tuple[Problem, ...]:
    """The problems load_catalog reports for ``root`` (it must fail)."""
    with pytest.raises(CatalogError) as info:
        load_catalog(root, environ={} if environ is None else environ)
    return info.value.problems


def only_problem(root: Path, environ: Mapping[str, str] | None = None) -> Problem:
    """The single problem load_catalog reports for ``root``."""
    problems = problems_of(root, environ)
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    return problems[0]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``text`` containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def load(root: Path, environ: Mapping[str, str] | None = None) -> Catalog:
    """load_catalog with an explicit (by default empty) environment."""
    return load_catalog(root, environ={} if environ is None else environ)


# --- a valid catalog and selecting from it ------------------------------------------------


def test_minimal_catalog_loads(tmp_path: Path) -> None:
    """A connector, a register with one policy and a job load into typed, frozen objects."""
    catalog = load(make_catalog(tmp_path))
    assert set(catalog.sources) == {"crm"}
    assert set(catalog.registers) == {"xamk-alumni"}
    assert [p.name for p in catalog.policies] == ["xamk-alumni/alumni-membership"]
    bound = catalog.policies[0]
    assert bound.file == "policies/xamk-alumni.yaml"
    assert bound.policy.key == ("id",)
    assert str(bound.policy.retain) == "P0D"
    assert set(catalog.jobs) == {"nightly"}
    assert catalog.settings.timezone == "Europe/Helsinki"


def test_full_policy_example_from_spec_loads(tmp_path: Path) -> None:
    """The SPEC §3 anonymise example, with match, subject, count_from and composite key, loads."""
    text = policy_file(
        "xamk-alumni",
        policy(
            description="Alumni data is kept for the duration of alumni membership.",
            key="[office, id]",
            subject="person_id",
            match="{kind: [alumni, friend], active: false}",
            count_from="year_end",
            action="anonymise",
            anonymise="{first_name: erase, birth_date: year, person_id: pseudonym, notes: redact}",
            max_per_run="5000",
            legal_basis='"GDPR 6(1)(f)"',
        ),
    )
    catalog = load(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    loaded = catalog.policies[0].policy
    assert loaded.key == ("office", "id")
    assert loaded.match == {"kind": ("alumni", "friend"), "active": False}
    assert loaded.anonymise["birth_date"] == "year"
    assert loaded.count_from == "year_end"
    assert loaded.max_per_run == 5000


@pytest.fixture
def two_registers(tmp_path: Path) -> Catalog:
    """Two registers that both have a policy called ``contacts``."""
    files = {
        "policies/xamk-alumni.yaml": policy_file(
            "xamk-alumni", policy(), policy(id="contacts", table="contacts")
        ),
        "policies/amkoodari.yaml": policy_file(
            "amkoodari",
            policy(id="contacts", table="projects"),
            policy(id="applicants", table="applicants"),
        ),
    }
    return load(make_catalog(tmp_path, files))


def test_select_by_register_and_policy(two_registers: Catalog) -> None:
    """REGISTER/POLICY selects exactly that policy, even when the id alone is ambiguous."""
    chosen = two_registers.select(["xamk-alumni/contacts"])
    assert [p.name for p in chosen] == ["xamk-alumni/contacts"]


def test_select_by_unique_policy_id(two_registers: Catalog) -> None:
    """A policy id that is unique in the catalog selects that policy."""
    assert [p.name for p in two_registers.select(["applicants"])] == ["amkoodari/applicants"]


def test_select_by_register_glob_and_star(two_registers: Catalog) -> None:
    """A glob over register ids selects their policies; ``*`` selects all, in catalog order."""
    assert [p.name for p in two_registers.select(["xamk-*"])] == [
        "xamk-alumni/alumni-membership",
        "xamk-alumni/contacts",
    ]
    everything = [p.name for p in two_registers.select(["*"])]
    assert sorted(everything) == sorted(p.name for p in two_registers.policies)
    assert len(everything) == 4
    assert [p.name for p in two_registers.select()] == everything


def test_select_by_register_id_and_deduplicates(two_registers: Catalog) -> None:
    """A bare register id selects its policies; naming a policy twice selects it once."""
    chosen = two_registers.select(["amkoodari", "amkoodari/contacts"])
    assert [p.name for p in chosen] == ["amkoodari/contacts", "amkoodari/applicants"]


def test_ambiguous_policy_id_is_a_usage_error(two_registers: Catalog) -> None:
    """An id used in two registers raises UsageError listing the qualified names."""
    with pytest.raises(UsageError, match="ambiguous") as info:
        two_registers.select(["contacts"])
    assert "xamk-alumni/contacts" in str(info.value)
    assert "amkoodari/contacts" in str(info.value)


def test_unknown_policy_name_is_a_usage_error(two_registers: Catalog) -> None:
    """A name that matches nothing raises UsageError naming what the catalog has."""
    with pytest.raises(UsageError, match="no policy matches 'nope'"):
        two_registers.select(["nope"])


def test_unknown_job_is_a_usage_error(two_registers: Catalog) -> None:
    """Catalog.job names the jobs that exist when asked for one that does not."""
    assert two_registers.job("nightly").schedule == "30 2 * * *"
    with pytest.raises(UsageError, match="nightly"):
        two_registers.job("weekly")


# --- unknown keys -------------------------------------------------------------------------


def test_unknown_key_in_policy_names_key_and_allowed_keys(tmp_path: Path) -> None:
    """A misspelt ``retian:`` is reported at its line with the policy and the allowed keys."""
    text = policy_file("xamk-alumni", policy(retain=None, retian="P10Y"))
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.policy == "alumni-membership"
    assert problem.key == "retian"
    assert problem.line == line_of(text, "retian:")
    assert "unknown key" in problem.message
    for allowed in ("retain", "trigger", "until", "count_from", "anonymise"):
        assert allowed in problem.message


def test_unknown_key_in_register_block(tmp_path: Path) -> None:
    """An unknown key in ``register:`` is reported with the register's allowed keys."""
    text = policy_file("xamk-alumni", policy()).replace(
        "  controller:", "  owner: Xamk\n  controller:"
    )
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.key == "register.owner"
    assert problem.line == line_of(text, "owner:")
    assert problem.policy is None
    assert "statutory" in problem.message
    assert "controller" in problem.message


def test_unknown_key_in_connector(tmp_path: Path) -> None:
    """An unknown key in a connector file names the file, line, key and the allowed keys."""
    text = CONNECTOR + "pasword: hunter2\n"
    problem = only_problem(make_catalog(tmp_path, {"connectors/crm.yaml": text}))
    assert problem.file == "connectors/crm.yaml"
    assert problem.key == "pasword"
    assert problem.line == 4
    assert "url" in problem.message
    assert "unknown key" in problem.message


def test_unknown_key_in_job(tmp_path: Path) -> None:
    """An unknown key in a job file names the file, line, key and the allowed keys."""
    text = JOB + "retries: 3\n"
    problem = only_problem(make_catalog(tmp_path, {"jobs/nightly.yaml": text}))
    assert problem.file == "jobs/nightly.yaml"
    assert problem.key == "retries"
    assert problem.line == 6
    assert "schedule" in problem.message


def test_unknown_key_in_settings(tmp_path: Path) -> None:
    """An unknown key in retention.yaml names the file, line, key and the allowed keys."""
    text = "state: sqlite:///state.db\ntimezon: Europe/Helsinki\n"
    problem = only_problem(make_catalog(tmp_path, {"retention.yaml": text}))
    assert problem.file == "retention.yaml"
    assert problem.key == "timezon"
    assert problem.line == 2
    assert "timezone" in problem.message


def test_unknown_top_level_key_in_policy_file(tmp_path: Path) -> None:
    """A policies/ file with an unknown top-level key names it and lists register, policies."""
    text = "defaults: {}\n" + policy_file("xamk-alumni", policy())
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.key == "defaults"
    assert problem.line == 1
    assert "register" in problem.message
    assert "policies" in problem.message


# --- one policy's rule is wrong -----------------------------------------------------------


def policy_problem(tmp_path: Path, **fields: str | None) -> tuple[Problem, str]:
    """The single problem of a catalog whose only policy has ``fields`` changed, and its text."""
    text = policy_file("xamk-alumni", policy(**fields))
    return only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text})), text


def assert_at(problem: Problem, key: str, line: int | None) -> None:
    """The problem is in the base policy file, on policy alumni-membership, at ``key``/``line``."""
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.policy == "alumni-membership"
    assert problem.key == key
    assert problem.line == line


def test_bad_duration(tmp_path: Path) -> None:
    """``retain: P10X`` is reported at the retain key with the accepted forms."""
    problem, text = policy_problem(tmp_path, retain="P10X")
    assert_at(problem, "retain", line_of(text, "retain:"))
    assert "P10X" in problem.message
    assert "ISO-8601" in problem.message


def test_bad_until_date(tmp_path: Path) -> None:
    """``until: 2022-13-01`` is reported at the until key."""
    problem, text = policy_problem(tmp_path, trigger=None, retain=None, until="2022-13-01")
    assert_at(problem, "until", line_of(text, "until:"))
    assert "month" in problem.message


def test_until_and_trigger_retain_together(tmp_path: Path) -> None:
    """Giving both until and trigger+retain is one problem at the until key."""
    problem, text = policy_problem(tmp_path, until="2022-06-30")
    assert_at(problem, "until", line_of(text, "until:"))
    assert "not both" in problem.message


def test_neither_until_nor_trigger_retain(tmp_path: Path) -> None:
    """A policy with no clock at all says trigger is missing, at the policy's line."""
    problem, text = policy_problem(tmp_path, trigger=None, retain=None)
    assert_at(problem, "trigger", line_of(text, "- id:"))
    assert "missing" in problem.message


def test_trigger_without_retain(tmp_path: Path) -> None:
    """A trigger without retain says retain is missing."""
    problem, _ = policy_problem(tmp_path, retain=None)
    assert problem.key == "retain"
    assert "missing" in problem.message


def test_permanent_admits_only_archive(tmp_path: Path) -> None:
    """``retain: permanent`` with ``action: delete`` is refused at the retain key."""
    problem, text = policy_problem(tmp_path, retain="permanent")
    assert_at(problem, "retain", line_of(text, "retain:"))
    assert "archive" in problem.message
    assert "delete" in problem.message


def test_then_without_archive(tmp_path: Path) -> None:
    """``then:`` on a policy whose action is not archive is refused at the then key."""
    problem, text = policy_problem(tmp_path, then="delete")
    assert_at(problem, "then", line_of(text, "then:"))
    assert "archive" in problem.message


def test_anonymise_action_needs_columns(tmp_path: Path) -> None:
    """``action: anonymise`` without an ``anonymise:`` mapping is refused at the anonymise key."""
    problem, text = policy_problem(tmp_path, action="anonymise")
    assert_at(problem, "anonymise", line_of(text, "- id:"))
    assert "column" in problem.message


def test_unknown_anonymise_strategy(tmp_path: Path) -> None:
    """An unknown strategy is reported at that column, listing the strategies that exist."""
    problem, text = policy_problem(tmp_path, action="anonymise", anonymise="{email: shred}")
    assert_at(problem, "anonymise.email", line_of(text, "anonymise:"))
    for strategy in ("erase", "redact", "year", "pseudonym"):
        assert strategy in problem.message


def test_anonymising_a_key_column(tmp_path: Path) -> None:
    """Rewriting a primary-key column is refused: the record could no longer be found."""
    problem, text = policy_problem(
        tmp_path, key="[id, office]", action="anonymise", anonymise="{office: erase}"
    )
    assert_at(problem, "anonymise", line_of(text, "anonymise:"))
    assert "office" in problem.message
    assert "key column" in problem.message


def test_anonymise_mapping_on_a_delete_policy(tmp_path: Path) -> None:
    """An ``anonymise:`` mapping on a policy that does not anonymise is refused."""
    problem, _ = policy_problem(tmp_path, anonymise="{email: erase}")
    assert problem.key == "anonymise"


def test_year_end_with_until(tmp_path: Path) -> None:
    """``count_from: year_end`` with ``until`` is refused at the count_from key."""
    problem, text = policy_problem(
        tmp_path, trigger=None, retain=None, until="2022-06-30", count_from="year_end"
    )
    assert_at(problem, "count_from", line_of(text, "count_from:"))


def test_unknown_action_lists_actions(tmp_path: Path) -> None:
    """An unknown action names the actions that exist."""
    problem, text = policy_problem(tmp_path, action="shred")
    assert_at(problem, "action", line_of(text, "action:"))
    for action in ("anonymise", "delete", "archive", "review"):
        assert action in problem.message


def test_bad_policy_id(tmp_path: Path) -> None:
    """A policy id with spaces or capitals is refused at the id key."""
    problem, text = policy_problem(tmp_path, id='"Alumni Membership"')
    assert problem.key == "id"
    assert problem.line == line_of(text, "- id:")


def test_second_policy_problem_names_that_policy(tmp_path: Path) -> None:
    """A problem in the second policy of a file names the second policy and its line."""
    text = policy_file("xamk-alumni", policy(), policy(id="contacts", table="c", retain="P1X"))
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.policy == "contacts"
    assert problem.key == "retain"
    assert problem.line == line_of(text, "retain:", occurrence=2)


# --- duplicates ---------------------------------------------------------------------------


def test_duplicate_policy_id_in_register(tmp_path: Path) -> None:
    """The same policy id twice in one register is reported at the second one."""
    text = policy_file("xamk-alumni", policy(), policy(table="other"))
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.policy == "alumni-membership"
    assert problem.key == "id"
    assert problem.line == line_of(text, "- id:", occurrence=2)
    assert "duplicate" in problem.message


def test_same_policy_id_in_two_registers_is_fine(tmp_path: Path) -> None:
    """Policy ids are scoped by register: the same id in two registers loads."""
    other = policy_file("amkoodari", policy(table="projects"))
    catalog = load(make_catalog(tmp_path, {"policies/amkoodari.yaml": other}))
    assert len(catalog.policies) == 2


def test_duplicate_register_across_files(tmp_path: Path) -> None:
    """A register id defined in two files is reported in the later file, naming the first."""
    copy = policy_file("xamk-alumni", policy(table="other"))
    problem = only_problem(make_catalog(tmp_path, {"policies/zz-copy.yaml": copy}))
    assert problem.file == "policies/zz-copy.yaml"
    assert problem.key == "register"
    assert problem.line == 1
    assert "xamk-alumni" in problem.message
    assert "policies/xamk-alumni.yaml" in problem.message


def test_duplicate_connector_id(tmp_path: Path) -> None:
    """Two connector files with one id are reported in the later file, naming the first."""
    problem = only_problem(make_catalog(tmp_path, {"connectors/zz-crm.yaml": CONNECTOR}))
    assert problem.file == "connectors/zz-crm.yaml"
    assert problem.key == "id"
    assert problem.line == 1
    assert "connectors/crm.yaml" in problem.message


def test_duplicate_job_id(tmp_path: Path) -> None:
    """Two job files with one id are reported in the later file, naming the first."""
    problem = only_problem(make_catalog(tmp_path, {"jobs/zz-nightly.yaml": JOB}))
    assert problem.file == "jobs/zz-nightly.yaml"
    assert problem.key == "id"
    assert problem.line == 1
    assert "jobs/nightly.yaml" in problem.message


def test_duplicate_key_in_one_mapping(tmp_path: Path) -> None:
    """A key given twice in one YAML mapping is an error at the second occurrence, not last-wins."""
    text = policy_file("xamk-alumni", policy()).replace(
        "    retain: P0D\n", "    retain: P0D\n    retain: P10Y\n"
    )
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.line == line_of(text, "retain: P10Y")
    assert "duplicate key 'retain'" in problem.message


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """A YAML merge (``<<: *base``) whose keys are overridden is not a duplicate-key error."""
    text = policy_file("xamk-alumni", policy().replace("  - id:", "  - &base\n    id:"))
    text += "  - <<: *base\n    id: contacts\n    table: contacts\n"
    catalog = load(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    second = catalog.select(["contacts"])[0].policy
    assert second.table == "contacts"
    assert second.connector == "crm"
    assert str(second.retain) == "P0D"


def test_duplicate_key_next_to_a_merge_is_still_an_error(tmp_path: Path) -> None:
    """Merging ``<<: *base`` does not hide a key the mapping itself gives twice."""
    text = policy_file("xamk-alumni", policy().replace("  - id:", "  - &base\n    id:"))
    text += "  - <<: *base\n    id: contacts\n    table: contacts\n    table: other\n"
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.line == line_of(text, "table: other")
    assert "duplicate key 'table'" in problem.message


# --- references between files -------------------------------------------------------------


def test_unknown_connector_reference(tmp_path: Path) -> None:
    """A policy naming a connector that does not exist is reported at its connector key."""
    problem, text = policy_problem(tmp_path, connector="erp")
    assert_at(problem, "connector", line_of(text, "connector:"))
    assert "'erp'" in problem.message
    assert "crm" in problem.message


def test_unknown_connector_kind_lists_known_kinds(tmp_path: Path) -> None:
    """A connector of an unknown kind is reported at its kind key, listing the known kinds."""
    text = "id: share\nkind: ftp\nurl: ftp://example.org\n"
    problem = only_problem(make_catalog(tmp_path, {"connectors/share.yaml": text}))
    assert problem.file == "connectors/share.yaml"
    assert problem.key == "kind"
    assert problem.line == 2
    assert "'ftp'" in problem.message
    assert "sql" in problem.message


def test_broken_connector_does_not_also_orphan_its_policies(tmp_path: Path) -> None:
    """A connector file that fails to load is one problem, not one more per policy using it."""
    text = CONNECTOR.replace("kind: sql", "kind: ftp")
    problem = only_problem(make_catalog(tmp_path, {"connectors/crm.yaml": text}))
    assert problem.file == "connectors/crm.yaml"
    assert problem.key == "kind"


def test_job_naming_missing_policy(tmp_path: Path) -> None:
    """A job naming a policy that does not exist is reported in the job file at policies."""
    text = JOB.replace('["*"]', '["xamk-alumni/nope"]')
    problem = only_problem(make_catalog(tmp_path, {"jobs/nightly.yaml": text}))
    assert problem.file == "jobs/nightly.yaml"
    assert problem.key == "policies"
    assert "xamk-alumni/nope" in problem.message


def test_job_naming_ambiguous_policy(tmp_path: Path) -> None:
    """A job naming a policy id used in two registers is reported as ambiguous."""
    files = {
        "policies/xamk-alumni.yaml": policy_file("xamk-alumni", policy(id="contacts")),
        "policies/amkoodari.yaml": policy_file("amkoodari", policy(id="contacts", table="p")),
        "jobs/nightly.yaml": JOB.replace('["*"]', "[contacts]"),
    }
    problem = only_problem(make_catalog(tmp_path, files))
    assert problem.file == "jobs/nightly.yaml"
    assert problem.key == "policies"
    assert "ambiguous" in problem.message


def test_broken_policy_file_does_not_also_fail_the_jobs(tmp_path: Path) -> None:
    """A policy file that fails to load is one problem, not one more per job selecting from it."""
    text = policy_file("xamk-alumni", policy(retain="P10X"))
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.key == "retain"


@pytest.mark.parametrize("schedule", ['"61 2 * * *"', '"30 2 * *"', '"every night"'])
def test_bad_cron(tmp_path: Path, schedule: str) -> None:
    """A schedule that is not a valid five-field cron expression is reported at schedule."""
    text = JOB.replace('"30 2 * * *"', schedule)
    problem = only_problem(make_catalog(tmp_path, {"jobs/nightly.yaml": text}))
    assert problem.file == "jobs/nightly.yaml"
    assert problem.key == "schedule"
    assert problem.line == 2
    assert "cron" in problem.message


def test_unknown_mode(tmp_path: Path) -> None:
    """A job mode other than enforce, dry-run or review is reported at mode."""
    text = JOB.replace("mode: enforce", "mode: yolo")
    problem = only_problem(make_catalog(tmp_path, {"jobs/nightly.yaml": text}))
    assert problem.key == "mode"
    assert "dry-run" in problem.message


def test_unknown_timezone_in_job(tmp_path: Path) -> None:
    """An unknown IANA zone in a job is reported at its timezone key."""
    text = JOB.replace("Europe/Helsinki", "Mars/Olympus_Mons")
    problem = only_problem(make_catalog(tmp_path, {"jobs/nightly.yaml": text}))
    assert problem.file == "jobs/nightly.yaml"
    assert problem.key == "timezone"
    assert problem.line == 3
    assert "Mars/Olympus_Mons" in problem.message


def test_unknown_timezone_in_settings(tmp_path: Path) -> None:
    """An unknown zone in retention.yaml is reported at its timezone key."""
    text = "timezone: Europe/Mikkeli\n"
    problem = only_problem(make_catalog(tmp_path, {"retention.yaml": text}))
    assert problem.file == "retention.yaml"
    assert problem.key == "timezone"
    assert problem.line == 1


# --- two policies destroying the same rows ------------------------------------------------


def test_overlapping_destroying_policies_with_different_rules(tmp_path: Path) -> None:
    """Two enabled policies destroying the same rows by different rules are a problem."""
    text = policy_file(
        "xamk-alumni",
        policy(id="customers", table="contacts", match="{type: customer}", retain="P2Y"),
        policy(id="everyone", table="contacts", retain="P5Y"),
    )
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.policy == "everyone"
    assert problem.key == "match"
    assert "xamk-alumni/customers" in problem.message


@pytest.mark.parametrize(
    "difference",
    [
        {"unless": "[{column: litigation, equals: 1, reason: litigation}]"},
        {"trigger": "[ended_on, paid_on]", "trigger_rule": "earliest"},
    ],
)
def test_overlap_that_differs_only_in_an_exception_or_trigger_rule(
    tmp_path: Path, difference: dict[str, str]
) -> None:
    """An `unless` exception or a trigger rule is part of the rule: a twin without it clashes."""
    twin = {"trigger": "[ended_on, paid_on]"} if "trigger_rule" in difference else {}
    text = policy_file(
        "xamk-alumni",
        policy(id="strict", table="contacts", **twin),
        policy(id="lenient", table="contacts", **difference),
    )
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert (problem.policy, problem.key) == ("lenient", "match")


@pytest.mark.parametrize("key", ["enabled", "statutory"])
def test_yes_and_no_are_not_booleans(tmp_path: Path, key: str) -> None:
    """Only true/false are booleans: `enabled: no` is an error, not a silently disabled rule."""
    if key == "enabled":
        text = policy_file("xamk-alumni", policy(enabled="no"))
    else:
        text = policy_file("xamk-alumni", policy()).replace(
            "policies:", "  statutory: no\npolicies:"
        )
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.key is not None and problem.key.endswith(key)


def test_overlap_through_a_list_match_across_registers(tmp_path: Path) -> None:
    """A match list sharing a value with another register's match on the same table overlaps."""
    files = {
        "policies/xamk-alumni.yaml": policy_file(
            "xamk-alumni", policy(table="contacts", match="{type: [customer, alumni]}")
        ),
        "policies/amkoodari.yaml": policy_file(
            "amkoodari",
            policy(
                id="x",
                table="contacts",
                match="{type: alumni}",
                action="anonymise",
                anonymise="{email: erase}",
            ),
        ),
    }
    problem = only_problem(make_catalog(tmp_path, files))
    assert problem.file == "policies/xamk-alumni.yaml"  # files load in name order
    assert problem.policy == "alumni-membership"
    assert "amkoodari/x (policies/amkoodari.yaml:" in problem.message


def test_disjoint_matches_do_not_overlap(tmp_path: Path) -> None:
    """Policies on one table whose match filters cannot both hold may have different rules."""
    text = policy_file(
        "xamk-alumni",
        policy(id="customers", table="contacts", match="{type: customer}", retain="P2Y"),
        policy(id="projects", table="contacts", match="{type: project}", retain="P5Y"),
    )
    catalog = load(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert len(catalog.policies) == 2


def test_overlap_is_fine_on_another_table_disabled_or_review_only(tmp_path: Path) -> None:
    """Overlapping rows are allowed on another table, or when one policy destroys nothing."""
    text = policy_file(
        "xamk-alumni",
        policy(id="a", table="contacts"),
        policy(id="c", table="people", retain="P5Y"),
        policy(id="d", table="contacts", retain="P9Y", enabled="false"),
        policy(id="e", table="contacts", retain="P9Y", action="review"),
    )
    catalog = load(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert len(catalog.policies) == 4


def test_overlap_with_the_same_rule_is_refused_too(tmp_path: Path) -> None:
    """Two copies of one rule would certify each disposal twice: also a catalog error."""
    text = policy_file(
        "xamk-alumni",
        policy(id="a", table="contacts"),
        policy(id="b", table="contacts", match="{type: customer}"),
    )
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert (problem.policy, problem.key) == ("b", "match")
    assert "with the same rule" in problem.message


# --- archive is not available yet ---------------------------------------------------------


def test_permanent_archive_policy_loads(tmp_path: Path) -> None:
    """``retain: permanent`` with ``action: archive`` (then keep) is a valid, enabled rule."""
    text = policy_file("xamk-alumni", policy(retain="permanent", action="archive", then="keep"))
    loaded = load(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text})).policies[0].policy
    assert loaded.enabled and loaded.action == "archive" and not loaded.destroys


def test_disabled_archive_policy_loads(tmp_path: Path) -> None:
    """The same archive policy with ``enabled: false`` loads, then-step included."""
    text = policy_file(
        "xamk-alumni", policy(retain="permanent", action="archive", then="delete", enabled="false")
    )
    catalog = load(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    loaded = catalog.policies[0].policy
    assert loaded.retain is not None
    assert loaded.retain.permanent
    assert not loaded.enabled


# --- YAML safety --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    ['!!python/object/apply:os.system ["touch {marker}"]', "!!python/name:os.system"],
)
def test_python_tags_are_refused_and_never_run(tmp_path: Path, tag: str) -> None:
    """A ``!!python/...`` tag is a problem at its file and line, and nothing is executed."""
    marker = tmp_path / "pwned"
    text = policy_file("xamk-alumni", policy(description=tag.format(marker=marker)))
    problem = only_problem(make_catalog(tmp_path / "cat", {"policies/xamk-alumni.yaml": text}))
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.line == line_of(text, "description:")
    assert "python" in problem.message
    assert "not allowed" in problem.message
    assert not marker.exists()


def test_python_tag_in_settings_is_refused(tmp_path: Path) -> None:
    """retention.yaml is read as safely as the catalog files."""
    marker = tmp_path / "pwned"
    text = f'state: !!python/object/apply:os.system ["touch {marker}"]\n'
    problem = only_problem(make_catalog(tmp_path / "cat", {"retention.yaml": text}))
    assert problem.file == "retention.yaml"
    assert problem.line == 1
    assert not marker.exists()


def test_invalid_yaml_syntax(tmp_path: Path) -> None:
    """Unparseable YAML is one problem naming the file and the line of the fault."""
    text = policy_file("xamk-alumni", policy(description="a: b: c"))
    problem = only_problem(make_catalog(tmp_path, {"policies/xamk-alumni.yaml": text}))
    assert problem.file == "policies/xamk-alumni.yaml"
    assert problem.line == line_of(text, "description:")
    assert "invalid YAML" in problem.message


def test_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    """A catalog file whose top level is a list is a problem, not a crash."""
    problem = only_problem(make_catalog(tmp_path, {"jobs/nightly.yaml": "- 1\n- 2\n"}))
    assert problem.file == "jobs/nightly.yaml"
    assert "mapping" in problem.message


def test_not_a_catalog_directory(tmp_path: Path) -> None:
    """A directory without the three folders is refused with the missing folder names."""
    (tmp_path / "policies").mkdir()
    problem = only_problem(tmp_path)
    assert "connectors/" in problem.message
    assert "jobs/" in problem.message


# --- ${VAR} interpolation -----------------------------------------------------------------


def test_variable_is_taken_from_environ(tmp_path: Path) -> None:
    """``${CRM_URL}`` is replaced by the environment value passed to load_catalog."""
    url = "postgresql+psycopg://retention@db.example/crm"
    catalog = load(make_catalog(tmp_path), {"CRM_URL": url})
    assert catalog.sources["crm"].url == url


@pytest.mark.parametrize("environ", [{}, {"CRM_URL": ""}])
def test_default_used_when_unset_or_empty(tmp_path: Path, environ: dict[str, str]) -> None:
    """``${VAR:-default}`` uses the default when the variable is unset or empty."""
    catalog = load(make_catalog(tmp_path), environ)
    assert catalog.sources["crm"].url == "sqlite:///demo/crm.db"


def test_variable_inside_a_longer_string(tmp_path: Path) -> None:
    """Several variables may be interpolated inside one string value."""
    text = "id: crm\nkind: sql\nurl: postgresql://${DB_USER}@${DB_HOST:-localhost}/crm\n"
    catalog = load(make_catalog(tmp_path, {"connectors/crm.yaml": text}), {"DB_USER": "ret"})
    assert catalog.sources["crm"].url == "postgresql://ret@localhost/crm"


def test_missing_variable_without_default(tmp_path: Path) -> None:
    """``${MISSING}`` without a default is a problem naming the variable, file and line."""
    text = "id: crm\nkind: sql\n\nurl: ${MISSING}\n"
    problem = only_problem(make_catalog(tmp_path, {"connectors/crm.yaml": text}))
    assert problem.file == "connectors/crm.yaml"
    assert problem.line == 4
    assert "MISSING" in problem.message


def test_missing_variable_in_a_list(tmp_path: Path) -> None:
    """A missing variable inside a list value is reported at the list's key line."""
    text = JOB.replace('["*"]', '["${JOB_POLICY}"]')
    problem = only_problem(make_catalog(tmp_path, {"jobs/nightly.yaml": text}))
    assert problem.file == "jobs/nightly.yaml"
    assert problem.line == line_of(text, "policies:")
    assert "JOB_POLICY" in problem.message


def test_environment_value_cannot_inject_yaml(tmp_path: Path) -> None:
    """An environment value containing YAML syntax stays one literal string."""
    text = policy_file("xamk-alumni", policy(description="${DESCRIPTION}", table="${TABLE}"))
    files = {"policies/xamk-alumni.yaml": text}
    environ = {"DESCRIPTION": "x\n  evil: 1", "TABLE": "{action: review}"}
    catalog = load(make_catalog(tmp_path, files), environ)
    loaded = catalog.policies[0].policy
    assert loaded.description == "x\n  evil: 1"
    assert loaded.table == "{action: review}"
    assert loaded.action == "delete"


def test_variables_in_comments_are_ignored(tmp_path: Path) -> None:
    """A ``${VAR}`` inside a YAML comment is not interpolated and cannot fail the load."""
    text = "# url: ${NOT_SET}\n" + CONNECTOR
    catalog = load(make_catalog(tmp_path, {"connectors/crm.yaml": text}))
    assert "crm" in catalog.sources


def test_settings_interpolated(tmp_path: Path) -> None:
    """retention.yaml values are interpolated like every catalog file."""
    text = "state: ${RETENTION_STATE:-sqlite:///retention-state.db}\ntimezone: ${TZ_NAME}\n"
    catalog = load(make_catalog(tmp_path, {"retention.yaml": text}), {"TZ_NAME": "UTC"})
    assert catalog.settings.timezone == "UTC"
    assert catalog.settings.state == "sqlite:///retention-state.db"


# --- all problems at once -----------------------------------------------------------------


def test_all_problems_reported_together(tmp_path: Path) -> None:
    """Three broken files give at least three problems, and the error text lists each one."""
    files = {
        "connectors/crm.yaml": CONNECTOR + "pasword: x\n",
        "connectors/share.yaml": "id: share\nkind: ftp\n",
        "policies/xamk-alumni.yaml": policy_file("xamk-alumni", policy(connector="share")),
        "policies/amkoodari.yaml": policy_file("amkoodari", policy(retain="P10X")),
        "jobs/nightly.yaml": JOB.replace('"30 2 * * *"', '"61 2 * * *"'),
        "retention.yaml": "timezone: Nowhere/Land\n",
    }
    with pytest.raises(CatalogError) as info:
        load(make_catalog(tmp_path, files))
    problems = info.value.problems
    assert len(problems) >= 5
    files_named = {p.file for p in problems}
    assert {
        "connectors/crm.yaml",
        "connectors/share.yaml",
        "policies/amkoodari.yaml",
        "jobs/nightly.yaml",
        "retention.yaml",
    } <= files_named
    text = str(info.value)
    assert text.startswith(f"{len(problems)} problems in the catalog")
    for problem in problems:
        assert str(problem) in text
    assert "jobs/nightly.yaml:2: key 'schedule'" in text
    assert "policies/amkoodari.yaml:" in text
    assert "policy alumni-membership: key 'retain'" in text


def test_catalog_error_maps_to_exit_code_2(tmp_path: Path) -> None:
    """An invalid catalog is the CLI's exit code 2."""
    with pytest.raises(CatalogError) as info:
        load(make_catalog(tmp_path, {"jobs/nightly.yaml": "id: [\n"}))
    assert info.value.exit_code == 2


# --- URLs and paths relative to the catalog -----------------------------------------------


def test_relative_sqlite_urls_resolve_against_the_catalog(tmp_path: Path) -> None:
    """``sqlite:///demo/x.db`` means demo/x.db inside the catalog directory, not the cwd."""
    root = tmp_path.resolve()
    catalog = load(make_catalog(tmp_path))
    assert catalog.source_url(catalog.sources["crm"]) == f"sqlite:///{root}/demo/crm.db"
    assert catalog.state_url == f"sqlite:///{root}/retention-state.db"
    assert catalog.resolve(catalog.settings.signing_key) == root / "keys" / "signing.pem"


def test_relative_sqlite_url_with_a_driver_resolves(tmp_path: Path) -> None:
    """A relative SQLite URL naming its driver resolves against the catalog directory too."""
    root = tmp_path.resolve()
    text = "state: sqlite+pysqlite:///state/retention.db\n"
    catalog = load(make_catalog(tmp_path, {"retention.yaml": text}))
    assert catalog.state_url == f"sqlite+pysqlite:///{root}/state/retention.db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/retention/state.db",
        "sqlite:///:memory:",
        "sqlite://",
        "postgresql+psycopg://retention@db.example/state",
        "mysql+pymysql://retention@db.example/state",
    ],
)
def test_absolute_and_server_urls_are_untouched(tmp_path: Path, url: str) -> None:
    """Absolute SQLite paths, in-memory SQLite and server URLs are used as written."""
    files = {
        "retention.yaml": f'state: "{url}"\n',
        "connectors/crm.yaml": f'id: crm\nkind: sql\nurl: "{url}"\n',
    }
    catalog = load(make_catalog(tmp_path, files))
    assert catalog.state_url == url
    assert catalog.source_url(catalog.sources["crm"]) == url


def test_absolute_settings_path_is_untouched(tmp_path: Path) -> None:
    """An absolute archive path in retention.yaml is not moved under the catalog."""
    catalog = load(make_catalog(tmp_path, {"retention.yaml": "archive: /srv/archive\n"}))
    assert catalog.resolve(catalog.settings.archive) == Path("/srv/archive")


def test_a_policys_fingerprint_is_stable_across_versions() -> None:
    """Certificates and approved plans pin ``policy_sha256``; the same rule must keep the same
    digest, non-ASCII text included, or every approved plan would turn stale on upgrade."""
    from retention.catalog.model import Policy

    policy = Policy.model_validate({
        "id": "alumni-membership", "connector": "crm", "table": "alumni", "key": "id",
        "trigger": "membership_ended_on", "retain": "P10Y", "action": "anonymise",
        "legal_basis": "Tietosuojalaki – ääkköset",
        "anonymise": {"first_name": "erase", "person_id": "pseudonym"},
        "unless": [{"column": "status", "in": ["appeal"], "reason": "valitus käsittelyssä"}],
    })  # fmt: skip
    assert policy.fingerprint() == (
        "1274f193636aea83a4f30cf829804456862fe2531696b3f49b3dd1f424ac4ec7"
    )
    fractions = Policy.model_validate({  # written as 5e-05 and 1.5e-07, as they always were
        "id": "alumni-membership", "connector": "crm", "table": "alumni", "key": "id",
        "trigger": "membership_ended_on", "retain": "P10Y", "action": "anonymise",
        "legal_basis": "x", "max_due_share": 0.00005, "match": {"score": 1.5e-7},
        "anonymise": {"first_name": "erase"},
    })  # fmt: skip
    assert fractions.fingerprint() == (
        "5a725fbdc62c541febbef6ab8f559a88aea34b10158042bae0774d4843fb3e1e"
    )
