"""Benchmark the engine's plan and run against the set-based SQL a DBA would write by hand.

    python bench/bench.py [--rows 100000] [--due 0.1] [--backend sqlite|postgresql]
                          [--batch-size 1000] [--seed 42]

Builds a synthetic ``students`` table, twice per action (one copy for the engine, one for
the baseline), a one-register catalog with an ``anonymise`` and a ``delete`` policy, then
times ``api.plan`` and ``api.run`` per policy against a raw SELECT / UPDATE / DELETE on the
identical copy, in the same process. Prints figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from retention import api, logs
from retention.testing import quote_url, scratch_database
from retention.workspace import Workspace

AS_OF = date(2026, 11, 22)
BOUND = date(2016, 11, 23)  # ended_on < BOUND  <=>  ended_on + P10Y <= AS_OF
SECRET = "x" * 40
CHUNK = 10_000
TABLES = {"anonymise": "students_anon", "delete": "students_del"}

POLICIES = """\
register:
  id: bench
  name: Benchmark register
  controller: Benchmark Oy
  source: synthetic
policies:
  - id: anonymise
    connector: src
    table: students_anon
    key: id
    subject: person_id
    trigger: ended_on
    retain: P10Y
    action: anonymise
    anonymise: {first_name: erase, email: erase, birth_date: year, person_id: pseudonym}
  - id: delete
    connector: src
    table: students_del
    key: id
    subject: person_id
    trigger: ended_on
    retain: P10Y
    action: delete
"""


def students(md: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name, md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.String(100)),
        sa.Column("first_name", sa.String(50)),
        sa.Column("email", sa.String(100)),
        sa.Column("birth_date", sa.Date),
        sa.Column("ended_on", sa.Date, index=True),
    )  # fmt: skip


def generate(
    rows: int, due: float, seed: int, tally: list[int]
) -> Iterator[list[dict[str, object]]]:
    """Rows in chunks, made lazily so the build does not inflate the peak RSS; counts the
    due ones in ``tally[0]``. Due: ended 1990-2015; the rest ended 2020-2026 (before AS_OF)
    or never (NULL, one in five)."""
    rng = random.Random(seed)
    old, recent = date(1990, 1, 1), date(2020, 1, 1)
    for start in range(1, rows + 1, CHUNK):
        chunk = []
        for i in range(start, min(start + CHUNK, rows + 1)):
            if rng.random() < due:
                ended: date | None = old + timedelta(days=rng.randrange(26 * 365))
                tally[0] += 1
            elif rng.random() < 0.2:
                ended = None
            else:
                ended = recent + timedelta(days=rng.randrange((AS_OF - recent).days))
            chunk.append({
                "id": i, "person_id": f"P{i:09d}", "first_name": f"Name{i % 997}",
                "email": f"student{i}@example.fi",
                "birth_date": date(1960, 1, 1) + timedelta(days=rng.randrange(40 * 365)),
                "ended_on": ended,
            })  # fmt: skip
        yield chunk


def build(url: str, args: argparse.Namespace) -> tuple[dict[str, sa.Table], int]:
    """Four identical tables: <action> for the engine and <action>_copy for the baseline."""
    md = sa.MetaData()
    tables = {n: students(md, n) for t in TABLES.values() for n in (t, t + "_copy")}
    engine = sa.create_engine(url)
    md.create_all(engine)
    tally = [0]
    with engine.begin() as conn:
        for chunk in generate(args.rows, args.due, args.seed, tally):
            for table in tables.values():
                conn.execute(table.insert(), chunk)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in tables:
                conn.execute(sa.text(f"ANALYZE {name}"))
    engine.dispose()
    return tables, tally[0]


def write_catalog(root: Path, source_url: str, batch_size: int) -> None:
    for folder in ("policies", "connectors", "jobs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "policies" / "bench.yaml").write_text(POLICIES, encoding="utf-8")
    (root / "connectors" / "src.yaml").write_text(
        f'id: src\nkind: sql\nurl: "{quote_url(source_url)}"\n', encoding="utf-8"
    )
    (root / "retention.yaml").write_text(
        "state: sqlite:///state.db\nsigning_key: keys/signing.pem\ntimezone: Europe/Helsinki\n"
        f"batch_size: {batch_size}\nmax_due_share: 1.0\n",
        encoding="utf-8",
    )
    api.init(root, {})


def peak_mib() -> float:
    """Peak RSS of this process so far (ru_maxrss is KiB on Linux): never goes down."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def year_start(dialect: str, column: sa.Column[date]) -> sa.ColumnElement[date]:
    if dialect == "sqlite":
        return sa.func.date(column, "start of year")
    return sa.cast(sa.func.date_trunc("year", column), sa.Date)


def certificates(ws: Workspace) -> int:
    return api.status(ws, limit=1).certificates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--due", type=float, default=0.1)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logs.configure(sys.stderr, level="warning")  # per-batch info logs off; warnings still shown

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="retention-bench-")))
        source = stack.enter_context(scratch_database(args.backend, tmp))
        (tables, n_due), build_s = timed(lambda: build(source.url, args))
        results: list[tuple[str, float, float, int, float]] = [
            ("build 4 tables", build_s, float("nan"), 0, peak_mib())
        ]
        root = tmp / "catalog"
        write_catalog(root, source.url, args.batch_size)
        ws = stack.enter_context(Workspace.open(root, {"RETENTION_SECRET": SECRET}))
        baseline = sa.create_engine(source.url)
        stack.callback(baseline.dispose)
        dialect = baseline.dialect.name
        planned: dict[str, int] = {}
        disposed: dict[str, int] = {}

        for action, name in TABLES.items():
            copy = tables[name + "_copy"]
            before = certificates(ws)
            (plan, _), engine_s = timed(
                lambda a=action: api.plan(
                    ws, policies=[f"bench/{a}"], as_of=AS_OF, report=tmp / f"plan-{a}.json"
                )
            )
            planned[action] = plan.policies[0].counts.expire

            def select_keys(copy: sa.Table = copy) -> int:
                with baseline.connect() as conn:
                    return len(conn.execute(sa.select(copy.c.id).where(
                        copy.c.ended_on < BOUND)).all())  # fmt: skip

            base_n, base_s = timed(select_keys)
            results.append((f"plan {action}", engine_s, base_s, certificates(ws) - before,
                            peak_mib()))  # fmt: skip
            if base_n != planned[action]:
                print(f"! plan {action}: engine {planned[action]} due, SELECT {base_n}")

            before = certificates(ws)
            outcome, engine_s = timed(
                lambda a=action: api.run(ws, policies=[f"bench/{a}"], as_of=AS_OF)
            )
            disposed[action] = outcome.disposed
            if outcome.status != "completed":
                print(f"! run {action}: {outcome.status}: {outcome.policies[0].message}")
            wrote = certificates(ws) - before
            if action == "anonymise":
                statement = (
                    sa.update(copy)
                    .where(copy.c.ended_on < BOUND)
                    .values(first_name=None, email=None, person_id=None,
                            birth_date=year_start(dialect, copy.c.birth_date))
                )  # fmt: skip
            else:
                statement = sa.delete(copy).where(copy.c.ended_on < BOUND)

            def change(statement: sa.Executable = statement) -> int:
                with baseline.begin() as conn:
                    return conn.execute(statement).rowcount

            base_n, base_s = timed(change)
            results.append((f"run {action}", engine_s, base_s, wrote, peak_mib()))
            if base_n != disposed[action]:
                print(f"! run {action}: engine disposed {disposed[action]}, baseline {base_n}")

        print(f"\nbackend={args.backend} rows={args.rows} due={args.due} "
              f"batch_size={args.batch_size} seed={args.seed}")  # fmt: skip
        print(f"due rows generated: {n_due}; planned expire: {planned}; disposed: {disposed}")
        print("engine = api.plan/api.run (includes the live check of the catalog); "
              "baseline = one raw statement on the identical copy")  # fmt: skip
        print("baseline anonymise sets person_id NULL (no pseudonym) and birth_date to 1 Jan")
        print("peak RSS = ru_maxrss, the process peak so far (cumulative, never decreases)\n")
        print(f"{'phase':<16} {'engine s':>9} {'base s':>8} {'ratio':>7} {'certs':>8} "
              f"{'peak MiB':>9}")  # fmt: skip
        for phase, eng, base, certs, mib in results:
            ratio = f"{eng / base:7.1f}" if base == base and base > 0 else f"{'-':>7}"
            base_text = f"{base:8.3f}" if base == base else f"{'-':>8}"
            print(f"{phase:<16} {eng:9.3f} {base_text} {ratio} {certs:>8} {mib:9.1f}")

        problems = verify(baseline, tables, args.rows, n_due)
        ledger = api.verify_ledger(ws)
        print(f"\nledger: {ledger.certificates} certificates, {ledger.checkpoints} checkpoints, "
              f"ok={ledger.ok}")  # fmt: skip
        if not ledger.ok:
            problems.extend(ledger.faults)
        print("verify:", "ok" if not problems else "; ".join(problems))
        return 0 if not problems else 1


def verify(engine: sa.Engine, tables: dict[str, sa.Table], rows: int, n_due: int) -> list[str]:
    """Cheap checks on the engine's tables: exactly the due rows anonymised / deleted."""
    problems: list[str] = []
    anon, gone = tables[TABLES["anonymise"]], tables[TABLES["delete"]]
    count = sa.func.count()
    with engine.connect() as conn:
        blank = sa.and_(anon.c.first_name.is_(None), anon.c.email.is_(None))
        erased = conn.scalar(sa.select(count).where(blank))
        erased_due = conn.scalar(sa.select(count).where(blank, anon.c.ended_on < BOUND))
        if erased != n_due or erased_due != n_due:
            problems.append(f"anonymise: {erased} rows erased ({erased_due} due), want {n_due}")
        sample = conn.execute(
            sa.select(anon.c.id, anon.c.person_id, anon.c.birth_date)
            .where(anon.c.ended_on < BOUND).limit(1000)
        ).all()  # fmt: skip
        bad = [r.id for r in sample if r.person_id == f"P{r.id:09d}" or r.person_id is None
               or (r.birth_date.month, r.birth_date.day) != (1, 1)]  # fmt: skip
        if bad:
            problems.append(f"anonymise: {len(bad)} sampled due rows not pseudonymised/yeared")
        left = conn.scalar(sa.select(count).select_from(gone))
        left_due = conn.scalar(sa.select(count).where(gone.c.ended_on < BOUND))
        if left != rows - n_due or left_due:
            problems.append(f"delete: {left} rows left ({left_due} due), want {rows - n_due}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
