"""``retention notify``: send the day's notices from cron, or a test message to every channel.

Attached to the ``retention`` group by :mod:`retention.cli`; the work is in
:mod:`retention.observe`.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from retention.cli import as_of_option, catalog_option, cli
from retention.cli_output import output_options


@cli.command()
@catalog_option
@click.option(
    "--due",
    is_flag=True,
    help="Send today's notices: plans about to expire unapproved, holds about to lapse, and "
    "the daily digest. Run once a day (the scheduler does so itself at notify.daily_at).",
)
@click.option("--no-digest", is_flag=True, help="With --due: leave the digest out.")
@click.option(
    "--test",
    "test_message",
    is_flag=True,
    help="Send a test digest on every channel, to check addresses, credentials and secrets.",
)
@as_of_option
@output_options
def notify(
    catalog: Path, due: bool, no_digest: bool, test_message: bool, as_of: date | None
) -> None:
    """Notifications: the notify: block of retention.yaml (docs/monitoring.md)."""
    from retention import cli_output as output
    from retention import logs
    from retention.observe.due import send_due, send_test

    if due == test_message:
        raise click.UsageError("give --due or --test")
    logs.configure(level="warning" if output.mode().quiet else "info")
    if test_message:
        delivered = send_test(catalog)
        for channel, ok in delivered.items():
            output.console().print(f"{channel}: {'sent' if ok else 'FAILED (see the log)'}")
        output.emit("notify", {"test": delivered})
        if not delivered:
            raise click.UsageError("retention.yaml has no notify: channel to send on")
        sys.exit(0 if all(delivered.values()) else 1)
    sent = send_due(catalog, today=as_of, digest=not no_digest)
    for notice in sent:
        output.console().print(f"{notice.event}: {notice.subject}", markup=False)
    output.emit("notify", {"notices": [{"event": n.event, **n.data} for n in sent]})
