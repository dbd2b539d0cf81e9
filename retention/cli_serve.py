"""``retention serve`` (the web workspace) and ``retention users`` (its local accounts)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from retention.cli import _console, _workspace, catalog_option, cli


@cli.command()
@catalog_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port."
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Requests served at once.",
)
@click.option(
    "--trusted-proxy",
    metavar="ADDR",
    help="The HTTPS reverse proxy's address ('*': any): its X-Forwarded-Proto, -Host and -For "
    "are believed, so the sign-in redirect and links use the address people reach.",
)
def serve(catalog: Path, host: str, port: int, threads: int, trusted_proxy: str | None) -> None:
    """The web workspace: review, approve and hold in a browser, signed in as yourself
    (README, "The web workspace"). Put it behind an HTTPS reverse proxy."""
    import waitress

    from retention import logs
    from retention.web import create_app

    logs.configure(level="info")
    app = create_app(catalog)
    forwarded = {"x-forwarded-proto", "x-forwarded-host", "x-forwarded-for"}
    _console().print(f"serving the web workspace on http://{host}:{port}/", markup=False)
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="retention",
        trusted_proxy=trusted_proxy,
        trusted_proxy_headers=forwarded if trusted_proxy else set(),
        clear_untrusted_proxy_headers=True,
    )


@cli.group()
def users() -> None:
    """Local accounts of the web workspace, for an installation without an identity
    provider."""


@users.command("add")
@catalog_option
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["viewer", "records-manager", "archivist", "dpo", "operator"]),
    help="What the account may do: read (viewer); also approve, reject, exclude and hold "
    "(records-manager, archivist, dpo); read and export (operator).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--replace", is_flag=True, help="Reset an existing account's role and password.")
def users_add(catalog: Path, name: str, role: str, password_stdin: bool, replace: bool) -> None:
    """Add a local account; the password is prompted for (or read from stdin) and stored
    only as an argon2 hash."""
    from retention.web import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    with _workspace(catalog) as ws:
        account = accounts.add(ws.state, name, role, password, replace=replace)
    _console().print(f"account {account.name} ({account.role}) saved", markup=False)


@users.command("list")
@catalog_option
def users_list(catalog: Path) -> None:
    """The local accounts, their roles, and which are disabled."""
    from retention.web import accounts

    with _workspace(catalog) as ws:
        found = accounts.listed(ws.state)
    out = _console()
    for row in found:
        off = "  disabled" if row["disabled_at"] else ""
        out.print(f"{row['name']}  {row['role']}{off}", markup=False)
    if not found:
        out.print("no local accounts")


@users.command("disable")
@catalog_option
@click.argument("name")
def users_disable(catalog: Path, name: str) -> None:
    """Disable a local account: it signs in no more (its past actions keep its name)."""
    from retention.web import accounts

    with _workspace(catalog) as ws:
        accounts.disable(ws.state, name)
    _console().print(f"account {name} disabled", markup=False)
