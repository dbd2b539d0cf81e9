"""Prometheus metrics: the textfile of cron runs, the dead man's switch, the scheduler's
/metrics, and the shipped alert rules checked against what is exported."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from prometheus_client.parser import text_string_to_metric_families

from retention import stopping
from retention.observe import metrics as metrics_module
from retention.observe.metrics import Metrics, StateCollector, write_textfile
from retention.scheduler import Scheduler, run_job
from tests.conftest import SECRET, build_sources, write_catalog

REPO = Path(__file__).resolve().parent.parent
ALERTS = REPO / "docs" / "prometheus" / "retention-alerts.yml"
ALERT_TESTS = REPO / "docs" / "prometheus" / "retention-alerts.test.yml"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RETENTION_SECRET", SECRET)
    stopping.clear()
    yield
    stopping.clear()
    metrics_module.process_metrics(serving=False)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A ready SQLite catalog whose runs write ``metrics/retention.prom``."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    build_sources(source)
    root = write_catalog(tmp_path / "catalog", source, f"sqlite:///{tmp_path / 'state.db'}")
    with (root / "retention.yaml").open("a", encoding="utf-8") as settings:
        settings.write("metrics_textfile: metrics/retention.prom\n")
    return root


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def textfile(root: Path) -> dict[Any, float]:
    return samples((root / "metrics" / "retention.prom").read_text(encoding="utf-8"))


def test_a_cron_run_writes_its_metrics_to_the_textfile(catalog: Path) -> None:
    """A job's run writes records per register/policy and outcome, certificates, the run's
    status and duration and the job's last success; the file parses with the client's
    parser, is readable by node_exporter (0644) and leaves no temporary file behind."""
    assert run_job(str(catalog), "nightly") == 0
    found = textfile(catalog)
    alumni = {"register": "xamk-alumni", "policy": "alumni-membership"}
    assert value(found, "retention_records_total", outcome="decided", **alumni) == 5
    assert value(found, "retention_records_total", outcome="disposed", **alumni) == 4
    assert value(found, "retention_records_total", outcome="failed", **alumni) == 0
    assert value(found, "retention_certificates_written_total") == 10
    assert value(found, "retention_runs_total", job="nightly", status="completed") == 1
    assert (value(found, "retention_run_duration_seconds", job="nightly") or 0) > 0
    assert (value(found, "retention_last_success_timestamp_seconds", job="nightly") or 0) > 0
    assert value(found, "retention_state_readable") == 1
    assert not any(name.endswith("_created") for name, _ in found)
    folder = catalog / "metrics"
    assert sorted(p.name for p in folder.iterdir()) == ["retention.prom", "retention.prom.lock"]
    assert (folder / "retention.prom").stat().st_mode & 0o777 == 0o644


def test_counters_carry_on_across_cron_runs(catalog: Path) -> None:
    """The file is rewritten by each run, yet its counters only rise: the second run adds
    to the first run's figures instead of replacing them."""
    assert run_job(str(catalog), "nightly") == 0
    first = textfile(catalog)
    assert run_job(str(catalog), "nightly") == 0
    second = textfile(catalog)
    decided = {"register": "amkoodari", "policy": "interviewees", "outcome": "decided"}
    assert value(first, "retention_records_total", **decided) == 3
    assert value(second, "retention_records_total", **decided) == 3  # done: not decided again
    runs = {"job": "nightly", "status": "completed"}
    assert value(second, "retention_runs_total", **runs) == 2
    assert value(second, "retention_certificates_written_total") == 10


def test_the_last_success_does_not_move_on_a_failed_run(catalog: Path) -> None:
    """After a success, a run a safety valve stops leaves the dead man's switch where it
    was, counts the trip, and marks the policy's valve as tripped."""
    assert run_job(str(catalog), "nightly") == 0
    success = value(textfile(catalog), "retention_last_success_timestamp_seconds", job="nightly")
    assert success
    engine = sa.create_engine(f"sqlite:///{catalog.parent / 'source.db'}")
    with engine.begin() as conn:  # three more alumni due, where only one may go per run
        for n in (10, 11, 12):
            conn.execute(sa.text(
                "INSERT INTO alumni (id, kind, turvakielto, membership_ended_on) "
                "VALUES (:id, 'alumni', 0, '2020-01-01')"), {"id": n})  # fmt: skip
    engine.dispose()
    policy = catalog / "policies" / "xamk.yaml"
    policy.write_text(policy.read_text().replace("max_per_run: 100", "max_per_run: 1"))
    assert run_job(str(catalog), "nightly") == 3
    found = textfile(catalog)
    assert value(found, "retention_last_success_timestamp_seconds", job="nightly") == success
    alumni = {"register": "xamk-alumni", "policy": "alumni-membership"}
    assert value(found, "retention_safety_valve_trips_total", **alumni) == 1
    assert value(found, "retention_policy_safety_valve_tripped", **alumni) == 1
    assert value(found, "retention_records_total", outcome="failed", **alumni) == 3
    assert value(found, "retention_runs_total", job="nightly", status="stopped") == 1


def test_a_failing_policy_counts_its_streak(catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy that fails run after run (its date arithmetic overflows) counts its streak,
    the other policies' streak stays 0 and the job's last success stays unset; a run in which
    it completes again ends the streak and moves the last success."""
    from retention.catalog import clock
    from retention.catalog.clock import Duration

    real = clock.expires_on

    def overflowing(trigger: Any, retain: Duration, count_from: Any = "event") -> Any:
        if retain == Duration(years=20):  # project-contracts only
            raise OverflowError("date value out of range")
        return real(trigger, retain, count_from)

    with monkeypatch.context() as patched:
        patched.setattr(clock, "expires_on", overflowing)
        for _ in range(2):
            assert run_job(str(catalog), "nightly") == 4
    found = textfile(catalog)
    assert value(found, "retention_last_success_timestamp_seconds", job="nightly") == 0
    assert value(found, "retention_runs_total", job="nightly", status="partial") == 2
    failing = "retention_policy_consecutive_failures"
    assert value(found, failing, register="xamk-alumni", policy="project-contracts") == 2
    assert value(found, failing, register="xamk-alumni", policy="customer-contracts") == 0
    assert run_job(str(catalog), "nightly") == 0
    found = textfile(catalog)
    assert value(found, failing, register="xamk-alumni", policy="project-contracts") == 0
    assert (value(found, "retention_last_success_timestamp_seconds", job="nightly") or 0) > 0


def test_a_locked_run_counts_a_lock_wait(catalog: Path) -> None:
    """A firing that finds its job locked by another live run does nothing, exits 5 and is
    counted as a lock wait and a ``locked`` run; the job's last success stays unset."""
    from datetime import timedelta

    from retention.catalog.loading import load_catalog
    from retention.enforce.locks import RunLock
    from retention.state.database import open_state

    engine = open_state(load_catalog(catalog).state_url)
    other = RunLock(engine, ["job:nightly"], timedelta(minutes=5))
    other.acquire()
    try:
        assert run_job(str(catalog), "nightly") == 5
    finally:
        other.release()
        engine.dispose()
    found = textfile(catalog)
    assert value(found, "retention_lock_waits_total", lock="job:nightly") == 1
    assert value(found, "retention_runs_total", job="nightly", status="locked") == 1
    assert value(found, "retention_last_success_timestamp_seconds", job="nightly") == 0


def test_the_textfile_is_replaced_whole_or_not_at_all(
    tmp_path: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails before its rename (here: fsync) leaves the previous file as it was
    and no temporary file beside it; a successful one replaces the file by a rename (a new
    inode), never rewriting it in place."""
    assert run_job(str(catalog), "nightly") == 0
    path = catalog / "metrics" / "retention.prom"
    before, inode = path.read_bytes(), path.stat().st_ino
    from retention.catalog.loading import load_catalog

    loaded = load_catalog(catalog)
    engine = sa.create_engine(loaded.state_url)
    collector = StateCollector(lambda: loaded, lambda: engine)

    def broken(fd: int) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", broken)
        with pytest.raises(OSError, match="disk full"):
            write_textfile(path, Metrics(), collector)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "retention.prom",
        "retention.prom.lock",
    ]
    write_textfile(path, Metrics(), collector)
    assert path.stat().st_ino != inode
    engine.dispose()


def test_the_scheduler_serves_metrics(catalog: Path) -> None:
    """``retention scheduler`` with a metrics port answers /metrics with the state gauges at
    once and, after a firing, the run's counters; other paths answer 404; no textfile is
    written while the process serves its own metrics."""
    scheduler = Scheduler(catalog, metrics_port=0)
    scheduler.start(paused=True)
    try:
        address = scheduler.metrics_address
        assert address is not None
        url = f"http://127.0.0.1:{address[1]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            first = samples(response.read().decode())
        assert value(first, "retention_last_success_timestamp_seconds", job="nightly") == 0
        assert value(first, "retention_state_readable") == 1
        assert run_job(str(catalog), "nightly") == 0
        with urllib.request.urlopen(url, timeout=10) as response:
            second = samples(response.read().decode())
        assert value(second, "retention_runs_total", job="nightly", status="completed") == 1
        assert value(second, "retention_certificates_written_total") == 10
        assert (value(second, "retention_last_success_timestamp_seconds", job="nightly") or 0) > 0
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=10)  # noqa: S310
        assert missing.value.code == 404
    finally:
        scheduler.stop()
    assert not (catalog / "metrics").exists()


def test_the_metrics_app_mounts_in_any_wsgi_server(catalog: Path) -> None:
    """The WSGI app ``retention serve`` mounts answers a scrape by itself."""
    from wsgiref.util import setup_testing_defaults

    from retention.catalog.loading import load_catalog
    from retention.observe.metrics import metrics_app

    loaded = load_catalog(catalog)
    engine = sa.create_engine(loaded.state_url)
    app = metrics_app(lambda: loaded, lambda: engine, Metrics())
    environ: dict[str, Any] = {"PATH_INFO": "/metrics"}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))  # type: ignore[arg-type]
    engine.dispose()
    assert status[0].startswith("200")
    assert (
        value(samples(body.decode()), "retention_last_success_timestamp_seconds", job="nightly")
        == 0
    )


# -- the shipped alert rules ----------------------------------------------------------------


def exported_names() -> set[str]:
    """Every series name the package exports (counters with their ``_total``)."""
    names = set()
    for family in Metrics().registry.collect():
        names.update({f"{family.name}_total" if family.type == "counter" else family.name})
    return names | {
        "retention_state_readable", "retention_last_success_timestamp_seconds",
        "retention_policy_consecutive_failures", "retention_policy_safety_valve_tripped",
    }  # fmt: skip


def test_alert_rules_name_only_exported_metrics() -> None:
    """Each rule of the shipped file is an alert with an expression, a severity and a
    summary, and every retention_* series its PromQL names is one the package exports."""
    import re

    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {
        "RetentionNoRecentSuccess", "RetentionPolicyFailingTwice", "RetentionSafetyValveTripped",
    }  # fmt: skip
    exported = exported_names()
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        used = set(re.findall(r"\bretention_[a-z_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, used - exported


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("RETENTION_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required here (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return found


def test_alert_rules_pass_promtool() -> None:
    """``promtool check rules`` accepts the shipped file, and ``promtool test rules`` shows
    each alert firing on the series it is meant for and staying quiet otherwise."""
    tool = promtool()
    checked = subprocess.run([tool, "check", "rules", str(ALERTS)], capture_output=True, text=True,
                             check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([tool, "test", "rules", str(ALERT_TESTS)], capture_output=True,
                            text=True, check=False, cwd=ALERT_TESTS.parent)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_standing_facts_on_every_backend(source_db: Any, state_db: Any, tmp_path: Path) -> None:
    """The gauges read from the state database are the same on SQLite, PostgreSQL and
    MariaDB: a review job's plan and an enforce job's run each count as their job's success,
    a manual plan of the enforce job does not, and the digest counts the day's runs,
    disposals and waiting plans."""
    from retention.catalog.loading import load_catalog
    from retention.observe.metrics import standing_facts
    from retention.state.database import open_state

    build_sources(source_db.url)
    root = write_catalog(tmp_path / "catalog", source_db.url, state_db.url)
    (root / "jobs" / "review.yaml").write_text(
        'id: review\nschedule: "0 6 * * 1"\npolicies: ["xamk-alumni/*"]\nmode: review\n',
        encoding="utf-8",
    )
    from retention import api
    from retention.workspace import Workspace

    with Workspace.open(root) as ws:
        api.plan(ws, job="nightly")  # a preview of an enforce job: no success of it
    loaded = load_catalog(root)
    engine = open_state(loaded.state_url)
    try:
        facts = standing_facts(loaded, engine)
        assert facts.last_success == {"nightly": None, "review": None}
        assert run_job(str(root), "review") == 0
        assert run_job(str(root), "nightly") == 0
        facts = standing_facts(loaded, engine)
        assert facts.last_success["nightly"] is not None
        assert facts.last_success["review"] is not None
        assert facts.last_success["review"] < facts.last_success["nightly"]
        assert set(facts.policies.values()) == {(0, False)}
        assert len(facts.policies) == 4
    finally:
        engine.dispose()
    from retention.observe.due import send_due

    with (root / "retention.yaml").open("a", encoding="utf-8") as settings:
        settings.write("notify:\n  digest: true\n")  # no channel: the notices are only made
    (digest,) = send_due(root)
    assert digest.data["runs"] == {"completed": 1}
    assert digest.data["disposed"] == 10
    assert len(digest.data["pending_plans"]) == 2
