"""The scheduler: cron translation, time zones, the job store, scheduled runs and signals."""

from __future__ import annotations

import io
import json
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from retention import logs, stopping
from retention.catalog.loading import load_catalog, read_catalog
from retention.enforce.locks import RunLock
from retention.errors import CatalogError
from retention.scheduler import JOB_TABLE, Scheduler, cron_trigger, run_job
from retention.state.database import open_state
from tests.conftest import SECRET, build_sources, write_catalog

HELSINKI = ZoneInfo("Europe/Helsinki")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order


def fire_times(expression: str, zone: str, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times of ``expression`` after ``start``, asked as APScheduler
    asks: the previous fire time as stored (UTC) and "now" a moment after it."""
    trigger = cron_trigger(expression, zone)
    out: list[datetime] = []
    previous: datetime | None = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        assert previous is None or fire > previous
        out.append(fire)
        previous = fire.astimezone(UTC)
        now = (previous + timedelta(milliseconds=5)).astimezone(ZoneInfo(zone))
    return out


def weekdays_of(expression: str) -> set[str]:
    """The weekdays on which ``expression`` fires during two weeks."""
    start = datetime(2026, 11, 22, tzinfo=UTC)  # a Sunday
    fires = [f for f in fire_times(expression, "UTC", start, 40) if f < start + timedelta(14)]
    return {WEEKDAYS[f.weekday()] for f in fires}


@pytest.fixture(autouse=True)
def _no_stop_left_over() -> Iterator[None]:
    """A stop requested by one test must not stop the next one's runs."""
    stopping.clear()
    yield
    stopping.clear()


@pytest.fixture
def captured() -> io.StringIO:
    """Log lines (JSON) written during the test."""
    stream = io.StringIO()
    logs.configure(stream, json=True)
    return stream


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def sqlite_catalog(tmp_path: Path) -> Path:
    """A ready catalog with SQLite source and state, whatever backends the others use."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    build_sources(source)
    return write_catalog(tmp_path / "catalog", source, f"sqlite:///{tmp_path / 'state.db'}")


def stored_jobs(catalog: Path) -> dict[str, dict[str, Any]]:
    """The rows of the job store table, each job's pickled state unpickled."""
    catalog_now, _ = read_catalog(catalog, {})  # even while a broken job file is present
    engine = sa.create_engine(catalog_now.state_url)
    try:
        table = sa.Table(JOB_TABLE, sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.id, table.c.job_state)).all()
    finally:
        engine.dispose()
    # Our own test data, written by APScheduler a moment ago.
    return {row.id: pickle.loads(row.job_state) for row in rows}  # noqa: S301


def write_job(
    catalog: Path, job_id: str, schedule: str, mode: str = "enforce", zone: str | None = None
) -> None:
    text = f'id: {job_id}\nschedule: "{schedule}"\npolicies: ["*"]\nmode: {mode}\n'
    if zone:
        text += f"timezone: {zone}\n"
    (catalog / "jobs" / f"{job_id}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def scheduler_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a scheduled run reads: the secret, and no stray connector URL."""
    monkeypatch.setenv("RETENTION_SECRET", SECRET)
    monkeypatch.delenv("CRM_URL", raising=False)


# -- cron translation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 7 * * 0", {"sun"}),
        ("0 7 * * 7", {"sun"}),
        ("0 7 * * 1", {"mon"}),
        ("0 7 * * 6", {"sat"}),
        ("0 7 * * 1-5", {"mon", "tue", "wed", "thu", "fri"}),
        ("0 7 * * 0,6", {"sat", "sun"}),
        ("0 7 * * 6,7", {"sat", "sun"}),
        ("0 7 * * 5-7", {"fri", "sat", "sun"}),
        ("0 7 * * 1,3-4", {"mon", "wed", "thu"}),
        ("0 7 * * */2", {"sun", "tue", "thu", "sat"}),
        ("0 7 * * 1-5/2", {"mon", "wed", "fri"}),
        ("0 7 * * mon", {"mon"}),
        ("0 7 * * MON-FRI", {"mon", "tue", "wed", "thu", "fri"}),
        ("0 7 * * sun,sat", {"sat", "sun"}),
        ("0 7 * * *", set(WEEKDAYS)),
    ],
)
def test_day_of_week_follows_cron(expression: str, days: set[str]) -> None:
    """Day-of-week numbers mean what cron means: 0 and 7 are Sunday, 1 is Monday."""
    assert weekdays_of(expression) == days


def test_monday_job_fires_on_monday_at_seven_local() -> None:
    """The shipped weekly review, "0 7 * * 1" in Helsinki, fires at 07:00 on Mondays."""
    fires = fire_times("0 7 * * 1", "Europe/Helsinki", datetime(2026, 11, 22, tzinfo=UTC), 3)
    assert [f.astimezone(HELSINKI).strftime("%a %H:%M") for f in fires] == ["Mon 07:00"] * 3
    assert fires[0].date() == date(2026, 11, 23)


def test_other_fields_keep_their_meaning() -> None:
    """Minute steps, hour lists and month names are passed on unchanged in meaning."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    fires = fire_times("*/20 8,17 * jan,jul *", "UTC", start, 7)
    assert [f.strftime("%m-%d %H:%M") for f in fires] == [
        "01-01 08:00", "01-01 08:20", "01-01 08:40", "01-01 17:00", "01-01 17:20",
        "01-01 17:40", "01-02 08:00",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("0 7 * * 8", "day-of-week"),
        ("0 7 * * 5-1", "day-of-week"),
        ("0 7 * * 1#2", "day-of-week"),
        ("0 7 * * 1L", "day-of-week"),
        ("0 7 * * ?", "day-of-week"),
        ("0 7 * * 1/2", "day-of-week"),
        ("0 7 * * */0", "day-of-week"),
        ("0 7 * * funday", "day-of-week"),
        ("60 7 * * *", "minute"),
        ("0 24 * * *", "hour"),
        ("0 7 L * *", "day-of-month"),
        ("0 7 0 * *", "day-of-month"),
        ("0 7 31 2 *", "day-of-month"),
        ("0 7 * 13 *", "month"),
        ("0 7 * foo *", "month"),
        ("0 7 1 * 1", "day-of-month and day-of-week"),
        ("0 7 * *", "five-field"),
        ("0 0 7 * * *", "five-field"),
    ],
)
def test_untranslatable_expressions_are_refused(expression: str, field: str) -> None:
    """An expression the trigger cannot run as cron would is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        cron_trigger(expression, "Europe/Helsinki")


# -- time zones and daylight saving time -----------------------------------------------------


@pytest.mark.parametrize(
    ("frozen", "first_day", "offsets"),
    [
        ("2026-03-27 12:00:00", date(2026, 3, 28), ["+0200", "+0200", "+0300", "+0300"]),
        ("2026-10-23 12:00:00", date(2026, 10, 24), ["+0300", "+0300", "+0200", "+0200"]),
    ],
)
def test_nightly_runs_at_half_past_two_local_across_dst(
    frozen: str, first_day: date, offsets: list[str]
) -> None:
    """ "30 2 * * *" in Helsinki fires at 02:30 local every day around both DST changes."""
    with freeze_time(frozen):
        fires = fire_times("30 2 * * *", "Europe/Helsinki", datetime.now(HELSINKI), 4)
    local = [f.astimezone(HELSINKI) for f in fires]
    assert [f.date() for f in local] == [first_day + timedelta(n) for n in range(4)]
    assert {f.strftime("%H:%M") for f in local} == {"02:30"}
    assert [f.strftime("%z") for f in local] == offsets


def test_fixed_hour_fires_once_when_clocks_go_back() -> None:
    """ "30 3 * * *" fires once on 2026-10-25, although 03:30 happens twice in Helsinki."""
    # No freezegun here: its fake datetimes drop the ``fold`` that tells the two 03:30s apart.
    fires = fire_times("30 3 * * *", "Europe/Helsinki", datetime(2026, 10, 24, 12, tzinfo=UTC), 3)
    assert [f.astimezone(HELSINKI).date() for f in fires] == [
        date(2026, 10, 25), date(2026, 10, 26), date(2026, 10, 27),
    ]  # fmt: skip
    assert fires[0].astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # EEST 03:30


def test_fixed_hour_in_the_skipped_hour_fires_once() -> None:
    """ "30 3 * * *" fires once on 2026-03-29, when 03:30 does not exist in Helsinki."""
    fires = fire_times("30 3 * * *", "Europe/Helsinki", datetime(2026, 3, 28, 12, tzinfo=UTC), 3)
    assert [f.astimezone(HELSINKI).date() for f in fires] == [
        date(2026, 3, 29), date(2026, 3, 30), date(2026, 3, 31),
    ]  # fmt: skip


def test_hourly_job_runs_through_the_repeated_hour() -> None:
    """A job with * in the hour field fires by elapsed time, so twice at 03:00 on 2026-10-25."""
    fires = fire_times(
        "0 * * * *", "Europe/Helsinki", datetime(2026, 10, 24, 23, 30, tzinfo=UTC), 3
    )
    assert [f.astimezone(UTC) for f in fires] == [
        datetime(2026, 10, 25, hour, tzinfo=UTC) for hour in (0, 1, 2)
    ]
    assert [f.astimezone(HELSINKI).strftime("%H:%M") for f in fires] == ["03:00", "03:00", "04:00"]


# -- the job store ---------------------------------------------------------------------------


def test_scheduler_registers_each_catalog_job(
    catalog: Path, captured: io.StringIO, scheduler_env: None
) -> None:
    """One stored job per catalog job, with coalesce, one instance and the grace time given."""
    write_job(catalog, "weekly-review", "0 7 * * 1", "dry-run")
    scheduler = Scheduler(catalog, misfire_grace_time=900)
    scheduler.start(paused=True)
    try:
        stored = stored_jobs(catalog)
        assert set(stored) == {"nightly", "weekly-review"}
        for job_id, state in stored.items():
            assert state["func"] == "retention.scheduler:run_job"
            assert state["args"] == (str(catalog.resolve()), job_id)
            assert state["coalesce"] is True
            assert state["max_instances"] == 1
            assert state["misfire_grace_time"] == 900
        weekly = stored["weekly-review"]["next_run_time"].astimezone(HELSINKI)
        assert (weekly.strftime("%a %H:%M"), str(weekly.tzinfo)) == ("Mon 07:00", "Europe/Helsinki")
        nightly = stored["nightly"]["next_run_time"].astimezone(HELSINKI)
        assert nightly.strftime("%H:%M") == "02:30"
    finally:
        scheduler.stop()
    scheduled = {e["job"]: e for e in events(captured) if e["event"] == "JobScheduled"}
    assert scheduled["weekly-review"]["next_run"].endswith("07:00:00+02:00")
    assert scheduled["nightly"]["mode"] == "enforce"


def test_reload_follows_the_catalog(
    catalog: Path, captured: io.StringIO, scheduler_env: None
) -> None:
    """A reload adds, reschedules and removes stored jobs; an invalid catalog changes nothing."""
    write_job(catalog, "weekly-review", "0 7 * * 1", "dry-run")
    scheduler = Scheduler(catalog)
    scheduler.start(paused=True)
    try:
        write_job(catalog, "nightly", "45 1 * * *")
        (catalog / "jobs" / "weekly-review.yaml").unlink()
        assert scheduler.reload()
        stored = stored_jobs(catalog)
        assert set(stored) == {"nightly"}
        assert stored["nightly"]["next_run_time"].astimezone(HELSINKI).strftime("%H:%M") == "01:45"

        write_job(catalog, "broken", "0 7 1 * 1")  # dom and dow both restricted
        write_job(catalog, "nightly", "15 4 * * *")
        assert not scheduler.reload()
        stored = stored_jobs(catalog)
        assert set(stored) == {"nightly"}
        assert stored["nightly"]["next_run_time"].astimezone(HELSINKI).strftime("%H:%M") == "01:45"
    finally:
        scheduler.stop()
    logged = events(captured)
    assert [e["job"] for e in logged if e["event"] == "JobUnscheduled"] == ["weekly-review"]
    rejected = [e for e in logged if e["event"] == "ReloadRejected"]
    assert len(rejected) == 1
    assert "jobs/broken.yaml" in rejected[0]["problems"][0]
    assert rejected[0]["kept"] == ["nightly"]


def test_restart_keeps_a_missed_fire_time(sqlite_catalog: Path, scheduler_env: None) -> None:
    """An unchanged job keeps its stored fire time across a restart, so a missed run is made up."""
    missed = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    scheduler = Scheduler(sqlite_catalog)
    scheduler.start(paused=True)
    scheduler._aps.modify_job("nightly", next_run_time=missed)
    scheduler.stop()

    again = Scheduler(sqlite_catalog)
    again.start(paused=True)
    try:
        assert again.next_fire_times()["nightly"] == missed
    finally:
        again.stop()

    write_job(sqlite_catalog, "nightly", "0 3 * * *")  # a new schedule starts afresh
    third = Scheduler(sqlite_catalog)
    third.start(paused=True)
    try:
        fresh = third.next_fire_times()["nightly"]
        assert fresh is not None and fresh > datetime.now(UTC)
    finally:
        third.stop()


@pytest.mark.parametrize(("grace", "runs"), [(3600, 1), (600, 0)])
def test_missed_firings_run_once_within_the_grace_time(
    sqlite_catalog: Path,
    scheduler_env: None,
    captured: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
    grace: int,
    runs: int,
) -> None:
    """Missed daily firings run once (coalesced) within the grace time, else not at all."""
    from types import SimpleNamespace

    from retention import api

    calls: list[str | None] = []
    ran = threading.Event()

    def fake_run(_ws: object, *, job: str | None = None, **_: object) -> SimpleNamespace:
        calls.append(job)
        ran.set()
        return SimpleNamespace(run_id="R-test", status="completed", disposed=0, exit_code=0)

    monkeypatch.setattr(api, "run", fake_run)
    last = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    write_job(sqlite_catalog, "nightly", f"{last.minute} {last.hour} * * *", zone="UTC")
    first = Scheduler(sqlite_catalog, misfire_grace_time=grace)
    first.start(paused=True)
    first._aps.modify_job("nightly", next_run_time=last - timedelta(days=3))
    first.stop()

    again = Scheduler(sqlite_catalog, misfire_grace_time=grace)
    again.start()
    try:
        if runs:
            assert ran.wait(10)
        else:
            deadline = datetime.now(UTC) + timedelta(seconds=10)
            while "was missed by" not in captured.getvalue() and datetime.now(UTC) < deadline:
                threading.Event().wait(0.05)
        tomorrow = again.next_fire_times()["nightly"]
    finally:
        again.stop()
    assert calls == ["nightly"] * runs
    assert tomorrow == last + timedelta(days=1)
    if not runs:
        warning = [e for e in events(captured) if e["event"] == "APScheduler"]
        assert warning[0]["level"] == "warning" and "was missed by" in warning[0]["message"]


def test_a_second_scheduler_on_the_same_state_is_refused(
    sqlite_catalog: Path, scheduler_env: None
) -> None:
    """Only one scheduler serves a state database; the second gets RunLocked (and waits)."""
    from retention.errors import RunLocked

    first = Scheduler(sqlite_catalog)
    first.start(paused=True)
    try:
        with pytest.raises(RunLocked):
            Scheduler(sqlite_catalog).start(paused=True)
    finally:
        first.stop()
    second = Scheduler(sqlite_catalog)
    second.start(paused=True)
    second.stop()


def test_a_scheduler_whose_lock_was_taken_over_says_so_and_stops(
    sqlite_catalog: Path, scheduler_env: None
) -> None:
    """When another scheduler has taken the lock over (this one's lease ran out), the
    heartbeat answers "not held" so serve() stops, instead of failing with RunLocked."""
    from retention.state.database import locks

    scheduler = Scheduler(sqlite_catalog)
    scheduler.start(paused=True)
    try:
        assert scheduler._engine is not None
        with scheduler._engine.begin() as conn:
            conn.execute(sa.update(locks).values(owner="replica:1:another-instance"))
        assert scheduler._still_holding_lock() is False
    finally:
        scheduler.stop()


def test_start_needs_the_secret_and_the_signing_key(
    sqlite_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the secret, or without the signing key an enforce job needs, start() refuses."""
    from retention.errors import MissingSecret, UsageError

    monkeypatch.delenv("RETENTION_SECRET", raising=False)
    with pytest.raises(MissingSecret):
        Scheduler(sqlite_catalog).start(paused=True)
    monkeypatch.setenv("RETENTION_SECRET", SECRET)
    (sqlite_catalog / "keys" / "signing.pem").unlink()
    with pytest.raises(UsageError, match="no signing key"):
        Scheduler(sqlite_catalog).start(paused=True)
    write_job(sqlite_catalog, "nightly", "30 2 * * *", "dry-run")  # plans need no key
    scheduler = Scheduler(sqlite_catalog)
    scheduler.start(paused=True)
    scheduler.stop()


def test_invalid_schedule_refuses_to_start(sqlite_catalog: Path, scheduler_env: None) -> None:
    """A schedule cron and APScheduler would read differently stops the start with exit 2."""
    from retention.errors import CatalogError

    write_job(sqlite_catalog, "monthly", "0 7 1 * 1")
    with pytest.raises(CatalogError, match=r"jobs/monthly.yaml.*day-of-week"):
        Scheduler(sqlite_catalog).start(paused=True)


def test_stop_waits_for_the_running_job(
    sqlite_catalog: Path, scheduler_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() tells a running enforcement to stop and returns only once the job has ended."""
    from retention import api

    started, finished = threading.Event(), threading.Event()
    real_run = api.run

    def slow_run(*args: Any, **kwargs: Any) -> Any:
        started.set()
        for _ in range(200):  # the enforcement's batch loop, until a stop is requested
            if stopping.stop_requested():
                break
            threading.Event().wait(0.05)
        outcome = real_run(*args, **kwargs)
        finished.set()
        return outcome

    monkeypatch.setattr(api, "run", slow_run)
    scheduler = Scheduler(sqlite_catalog)
    scheduler.start(paused=True)
    scheduler._aps.modify_job("nightly", next_run_time=datetime.now(UTC))
    scheduler._aps.resume()
    assert started.wait(10)
    scheduler.stop()
    assert finished.is_set()
    engine = open_state(load_catalog(sqlite_catalog, {}).state_url)
    try:
        with engine.connect() as conn:
            status = conn.scalar(sa.text("SELECT status FROM runs"))
    finally:
        engine.dispose()
    assert status == "partial"  # every policy "interrupted": stopped before its first batch


# -- a scheduled run -------------------------------------------------------------------------


def test_run_job_enforces(catalog: Path, scheduler_env: None, captured: io.StringIO) -> None:
    """An enforce job disposes of the due records and certifies them, as of the job's day:
    Helmi's membership ends 2026-11-23, so on the 22nd she is not yet due."""
    with freeze_time("2026-11-22 01:30:00"):
        assert run_job(str(catalog), "nightly") == 0
    cat = load_catalog(catalog, {})
    source = sa.create_engine(cat.source_url(cat.sources["crm"]))
    state = open_state(cat.state_url)
    try:
        with source.connect() as conn:
            assert conn.scalar(sa.text("SELECT COUNT(*) FROM interviewees")) == 0
            assert conn.scalar(sa.text("SELECT first_name FROM alumni WHERE id = 1")) is None
            assert conn.scalar(sa.text("SELECT first_name FROM alumni WHERE id = 3")) == "Helmi"
        with state.connect() as conn:
            assert conn.scalar(sa.text("SELECT COUNT(*) FROM certificates")) > 0
            assert conn.scalar(sa.text("SELECT job FROM runs")) == "nightly"
    finally:
        source.dispose()
        state.dispose()
    finished = [e for e in events(captured) if e["event"] == "JobFinished"]
    assert finished[0]["job"] == "nightly" and finished[0]["exit_code"] == 0


@pytest.mark.parametrize("mode", ["dry-run", "review"])
def test_run_job_plans_without_changing_anything(
    sqlite_catalog: Path, scheduler_env: None, captured: io.StringIO, mode: str
) -> None:
    """A dry-run or review job changes no record and writes a JSON report under reports/."""
    write_job(sqlite_catalog, "nightly", "30 2 * * *", mode)
    source_url = load_catalog(sqlite_catalog, {}).source_url(
        load_catalog(sqlite_catalog, {}).sources["crm"]
    )
    source = sa.create_engine(source_url)

    def snapshot() -> list[Any]:
        with source.connect() as conn:
            return [
                conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
                for table in ("alumni", "contracts", "interviewees")
            ]

    before = snapshot()
    try:
        assert run_job(str(sqlite_catalog), "nightly") == 0
        assert snapshot() == before
    finally:
        source.dispose()
    reports = list((sqlite_catalog / "reports").glob("nightly-*.json"))
    assert len(reports) == 1
    assert len(reports[0].stem) == len("nightly-YYYYMMDDTHHMMSS")
    report = json.loads(reports[0].read_text(encoding="utf-8"))
    # A review job's plan waits for approval; a dry-run job's is a report to read, never to approve.
    assert report["kind"] == ("dry-run" if mode == "review" else "preview")
    assert sum(p["counts"]["expire"] for p in report["policies"]) > 0
    expected = "PlanAwaitingApproval" if mode == "review" else "JobFinished"
    done = [e for e in events(captured) if e["event"] == expected]
    assert done[0]["plan_id"] == report["plan_id"]
    assert done[0]["report"] == str(reports[0])


def test_run_job_reports_a_locked_job(
    sqlite_catalog: Path, scheduler_env: None, captured: io.StringIO
) -> None:
    """A job another run holds is a logged warning and exit 5, not an exception."""
    engine = open_state(load_catalog(sqlite_catalog, {}).state_url)
    lock = RunLock(engine, ["job:nightly"])
    lock.acquire()
    try:
        assert run_job(str(sqlite_catalog), "nightly") == 5
    finally:
        lock.release()
        engine.dispose()
    locked = [e for e in events(captured) if e["event"] == "JobLocked"]
    assert locked[0]["level"] == "warning" and locked[0]["lock"] == "job:nightly"


def test_run_job_never_raises(
    sqlite_catalog: Path, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job gone from the catalog, a missing secret or catalog is a logged error and exit 2."""
    monkeypatch.delenv("RETENTION_SECRET", raising=False)
    assert run_job(str(sqlite_catalog), "gone") == 2
    assert run_job(str(sqlite_catalog), "nightly") == 2
    assert run_job(str(sqlite_catalog / "missing"), "nightly") == 2
    failed = [e for e in events(captured) if e["event"] == "JobFailed"]
    assert len(failed) == 3
    assert all(e["level"] == "error" for e in failed)


# -- the command -----------------------------------------------------------------------------


def test_scheduler_command_reloads_and_stops_cleanly(sqlite_catalog: Path) -> None:
    """`retention scheduler` logs its start, reloads on SIGHUP and exits 0 on SIGTERM."""
    env = {"PATH": os.environ["PATH"], "RETENTION_SECRET": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "retention", "scheduler", "--catalog", str(sqlite_catalog)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stderr], daemon=True)
    reader.start()
    seen: list[dict[str, Any]] = []

    def wait_for(event: str, timeout: float = 15) -> dict[str, Any]:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while (left := (deadline - datetime.now(UTC)).total_seconds()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            record = json.loads(line)  # every line is one JSON object
            seen.append(record)
            if record["event"] == event:
                return record
        raise AssertionError(f"no {event} logged; saw {[r['event'] for r in seen]}")

    try:
        started = wait_for("SchedulerStarted")
        assert started["jobs"] == 1
        assert wait_for("JobScheduled")["next_run"].endswith(("02:30:00+02:00", "02:30:00+03:00"))
        write_job(sqlite_catalog, "weekly-review", "0 7 * * 1", "dry-run")
        process.send_signal(signal.SIGHUP)
        assert wait_for("SchedulerReloaded")["jobs"] == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        wait_for("SchedulerStopped")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert set(stored_jobs(sqlite_catalog)) == {"nightly", "weekly-review"}


def _dockerfile_env() -> dict[str, str]:
    """The ENV the container image sets, read from the Dockerfile itself."""
    text = (Path(__file__).parent.parent / "Dockerfile").read_text(encoding="utf-8")
    env: dict[str, str] = {}
    for block in text.replace("\\\n", " ").splitlines():
        if block.startswith("ENV "):
            for pair in block[4:].split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


@pytest.mark.parametrize("mode", ["dry-run", "review"])
def test_a_job_writes_every_report_format_it_names_outside_the_catalog(
    sqlite_catalog: Path,
    scheduler_env: None,
    captured: io.StringIO,
    mode: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The container mounts the catalog read-only: with the image's environment and the
    shipped settings line, a scheduled job's reports (every format it names, one firing's
    name) land on the state volume and nothing is written under the catalog."""
    image = _dockerfile_env()
    assert image["RETENTION_REPORTS"].startswith("/state/")
    state_volume = tmp_path / "state-volume"
    monkeypatch.setenv(
        "RETENTION_REPORTS", str(state_volume / image["RETENTION_REPORTS"][len("/state/") :])
    )
    shipped = (Path(__file__).parent.parent / "retention.yaml").read_text(encoding="utf-8")
    (line,) = [x for x in shipped.splitlines() if x.startswith("reports:")]
    settings = sqlite_catalog / "retention.yaml"
    settings.write_text(settings.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    write_job(sqlite_catalog, "weekly-review", "0 7 * * 1", mode)
    job = sqlite_catalog / "jobs" / "weekly-review.yaml"
    job.write_text(job.read_text(encoding="utf-8") + "report: [html, json, csv]\n")
    catalog_files = sorted(p for p in sqlite_catalog.rglob("*") if "keys" not in p.parts)

    assert run_job(str(sqlite_catalog), "weekly-review") == 0

    written = sorted(p.name for p in (state_volume / "reports").iterdir())
    assert [Path(n).suffix for n in written] == [".csv", ".html", ".json"]
    assert len({Path(n).stem for n in written}) == 1
    assert sorted(p for p in sqlite_catalog.rglob("*") if "keys" not in p.parts) == catalog_files
    report = json.loads((state_volume / "reports" / written[2]).read_text(encoding="utf-8"))
    page = (state_volume / "reports" / written[1]).read_text(encoding="utf-8")
    assert f"<code>{report['plan_id']}</code>" in page  # one plan behind every format
    (finished,) = [
        e for e in events(captured) if e["event"] in ("JobFinished", "PlanAwaitingApproval")
    ]
    assert finished["plan_id"] == report["plan_id"]
    assert sorted(Path(p).name for p in finished["reports"]) == written


def test_a_job_refuses_an_unknown_or_repeated_report_format(sqlite_catalog: Path) -> None:
    job = sqlite_catalog / "jobs" / "weekly.yaml"
    for bad, complaint in (("[html, pdf]", "report"), ("[csv, csv]", "names a format twice")):
        job.write_text(
            f'id: weekly\nschedule: "0 7 * * 1"\npolicies: ["*"]\nmode: dry-run\nreport: {bad}\n'
        )
        with pytest.raises(CatalogError) as caught:
            load_catalog(sqlite_catalog, {})
        assert "weekly.yaml" in str(caught.value) and complaint in str(caught.value)
