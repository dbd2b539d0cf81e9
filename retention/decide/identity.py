"""Who acted: the identity every approval, rejection, exclusion and hold is recorded with.

A person signed in to the workspace is *authenticated*: the identity provider vouches for the
issuer and subject, and the role comes from its claims. A command typed at a terminal is not:
the engine knows only the operating-system account that ran it and the name typed with
``--by``. Such an identity is recorded as exactly that (issuer :data:`CLI_ISSUER`, the account
as subject, the typed name as name, ``authenticated: false``) and marked "unauthenticated"
wherever it is shown, so nobody reads a typed name as a proven person.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any, cast

from retention.catalog.model import ROLES, Role
from retention.errors import UsageError

__all__ = ["ROLES", "Role"]  # one definition: the catalog's, which maps claims to roles
#: Roles that may approve, reject or exclude records from a plan.
REVIEWERS: frozenset[str] = frozenset({"records-manager", "archivist", "dpo"})
#: Roles that may place and release holds.
HOLDERS: frozenset[str] = frozenset({"records-manager", "archivist", "dpo"})
#: The issuer of identities the engine did not authenticate: a command line's account.
CLI_ISSUER = "urn:retention:cli"
#: The issuer of the workspace's own local accounts (``retention users add``): authenticated
#: by their password there, for an installation without an identity provider.
LOCAL_ISSUER = "urn:retention:local"
#: The label reports and exports print beside an unauthenticated identity.
UNAUTHENTICATED = "unauthenticated"


class NotPermitted(UsageError):
    """An identity whose role does not allow the action (the web answers 403)."""


@dataclass(frozen=True)
class Identity:
    """A person as the engine records them."""

    issuer: str
    """Who vouches for the subject: an OpenID Connect issuer URL, the workspace's own local
    accounts, or :data:`CLI_ISSUER` for a command line."""
    subject: str
    """The person's stable id at the issuer (for the command line: the OS account)."""
    name: str
    """Display name (for the command line: the name typed with ``--by``)."""
    role: Role | None
    """The role the issuer granted; None for the command line, which proves none."""
    authenticated: bool

    def __post_init__(self) -> None:
        for field_name in ("issuer", "subject", "name"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"an identity needs a non-empty {field_name}")
            if len(value) > 200:
                raise UsageError(f"an identity's {field_name} is longer than 200 characters")
        if self.role is not None and self.role not in ROLES:
            raise UsageError(f"role {self.role!r} is not one of {', '.join(ROLES)}")
        if self.authenticated and self.issuer == CLI_ISSUER:
            raise UsageError("a command-line identity cannot be authenticated")

    @classmethod
    def cli(cls, typed: str | None = None) -> Identity:
        """A command line's identity: the OS account and the name typed (default: the
        account), unauthenticated and without a role."""
        account = os_user()
        name = (typed or "").strip() or account
        return cls(CLI_ISSUER, account, name, None, False)

    @property
    def person(self) -> tuple[str, str]:
        """What makes two identities one person: the issuer and subject."""
        return (self.issuer, self.subject)

    @property
    def label(self) -> str:
        """The name as reports print it, with "(unauthenticated)" where it is."""
        if self.authenticated:
            return self.name
        if self.issuer == CLI_ISSUER and self.subject != self.name:
            return f"{self.name} (OS user {self.subject}, {UNAUTHENTICATED})"
        return f"{self.name} ({UNAUTHENTICATED})"

    def as_dict(self) -> dict[str, Any]:
        """The identity as journals, certificates and exports carry it."""
        return {
            "issuer": self.issuer, "subject": self.subject, "name": self.name,
            "role": self.role, "authenticated": self.authenticated,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Identity:
        return cls(
            str(data["issuer"]), str(data["subject"]), str(data["name"]),
            cast("Role | None", data.get("role")), bool(data.get("authenticated")),
        )  # fmt: skip


def os_user() -> str:
    """The operating-system account running this process ("unknown" if it has no name)."""
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):  # a uid without a passwd entry, as in some containers
        return "unknown"


def folded(text: str) -> str:
    """A name compared as a person would read it: case and spacing ignored."""
    return " ".join(text.casefold().split())


def may_be(approver: Identity, actor: Identity) -> bool:
    """Whether ``approver`` may be the person ``actor`` (who made or changed a plan, or
    approved it already): then the approval would not be a second pair of eyes.

    Two authenticated identities are one person when issuer and subject match. Otherwise the
    name the approver gives (and, if signed in, its subject) is compared with the actor's
    name and, for an unauthenticated actor, its OS account, ignoring case and spacing. An OS
    account alone is not compared: several people may share one service account, which is
    why an unauthenticated approval never satisfies a four-eyes rule at all."""
    if approver.authenticated and actor.authenticated:
        return approver.person == actor.person
    theirs = {folded(actor.name)}
    if not actor.authenticated:
        theirs.add(folded(actor.subject))
    mine = {folded(approver.name)}
    if approver.authenticated:
        mine.add(folded(approver.subject))
    return bool(theirs & mine)
