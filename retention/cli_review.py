"""Review from the command line: reject a plan, exclude records from it.

Every decision typed here is recorded as what it is: the operating-system account that ran
the command and the name given with ``--by``, unauthenticated (see
:mod:`retention.decide.identity`). Such a decision counts where no four-eyes rule demands
more; where one does, the signed-in workspace is the place to approve.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from retention.cli import _console, _workspace, catalog_option


@click.command()
@catalog_option
@click.argument("plan_id", metavar="PLAN")
@click.option("--by", "by", required=True, help="Who rejects (a name, recorded as given).")
@click.option("--comment", required=True, help="Why the plan must not run.")
def reject(catalog: Path, plan_id: str, by: str, comment: str) -> None:
    """Reject a stored plan: it can then be neither approved nor executed."""
    from retention import api

    with _workspace(catalog) as ws:
        found = api.reject(ws, plan_id, by=by, comment=comment)
    _console().print(f"rejected plan {found.plan_id}: it will not run; make a new plan with "
                     "`retention plan`", markup=False)  # fmt: skip


@click.command()
@catalog_option
@click.argument("plan_id", metavar="PLAN")
@click.option("--policy", required=True, help="REGISTER/POLICY of the records.")
@click.option(
    "--record",
    "records",
    multiple=True,
    required=True,
    help="A record's key; composite keys as COL1,COL2 values joined by commas. Repeatable.",
)
@click.option("--reason", required=True, help="Why the records must stay (no person's name).")
@click.option("--by", "by", required=True, help="Who excludes (a name, recorded as given).")
def exclude(
    catalog: Path, plan_id: str, policy: str, records: Sequence[str], reason: str, by: str
) -> None:
    """Exclude records from a pending plan: each becomes a hold on that record, and you
    become the plan's last changer (so another person must approve it)."""
    from retention import api

    with _workspace(catalog) as ws:
        done = api.exclude(ws, plan_id, policy=policy, keys=[r.split(",") for r in records],
                           reason=reason, by=by)  # fmt: skip
    _console().print(
        f"excluded {len(done.holds)} record(s) from plan {plan_id} as hold(s) "
        f"{', '.join(h.hold_id for h in done.holds)}",
        markup=False,
    )


def attach(group: click.Group) -> None:
    """Add the review commands to the ``retention`` command group."""
    group.add_command(reject)
    group.add_command(exclude)
