"""Who may do what in the web workspace: one table, checked on the server for every action.

A page that changes something names its permission; a person without it gets 403 and
nothing is changed. Reading is every role's; the buttons a role may not press are not shown,
but hiding them is a courtesy, never the check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from retention.catalog.model import ROLES, Role
from retention.decide.identity import Identity as EngineIdentity

Permission = Literal["read", "review", "hold", "export"]

#: The roles that hold each permission.
GRANTS: Final[dict[Permission, frozenset[Role]]] = {
    "read": frozenset(ROLES),
    # approve, reject, exclude records from a plan
    "review": frozenset({"records-manager", "archivist", "dpo"}),
    # place and release holds
    "hold": frozenset({"records-manager", "archivist", "dpo"}),
    # certificate exports (they name records by reference and key only)
    "export": frozenset({"records-manager", "archivist", "dpo", "operator"}),
}


@dataclass(frozen=True)
class Identity:
    """The person signed in: who vouched for them (issuer) and as whom (subject)."""

    issuer: str
    """The OpenID provider's issuer URL, or :data:`accounts.LOCAL_ISSUER` for a local
    account."""
    subject: str
    name: str
    roles: tuple[Role, ...]

    @property
    def role(self) -> Role:
        """The role recorded with an action: the most powerful one the person holds."""
        # An archivist's approval is what an archive transfer may need; every other reviewing
        # role counts the same towards four eyes.
        order: tuple[Role, ...] = ("archivist", "records-manager", "dpo", "operator", "viewer")
        for role in order:
            if role in self.roles:
                return role
        return "viewer"

    def engine(self) -> EngineIdentity:
        """As the engine records it with each approval, rejection, exclusion and hold."""
        return EngineIdentity(self.issuer, self.subject, self.name, self.role, True)

    def may(self, permission: Permission) -> bool:
        return any(role in GRANTS[permission] for role in self.roles)

    def as_session(self) -> dict[str, object]:
        return {
            "iss": self.issuer,
            "sub": self.subject,
            "name": self.name,
            "roles": list(self.roles),
        }

    @classmethod
    def from_session(cls, data: object) -> Identity | None:
        if not isinstance(data, dict):
            return None
        try:
            roles = tuple(r for r in data["roles"] if r in ROLES)
            return cls(str(data["iss"]), str(data["sub"]), str(data["name"]), roles)
        except (KeyError, TypeError):
            return None


def roles_from_claim(value: object, mapping: dict[Role, tuple[str, ...]]) -> tuple[Role, ...]:
    """The roles the claim's values give: a string or a list of strings (groups)."""
    values: Iterable[object]
    if isinstance(value, str):
        values = value.split()
    elif isinstance(value, list | tuple):
        values = value
    else:
        values = ()
    found = {str(v) for v in values}
    return tuple(role for role in ROLES if found & set(mapping.get(role, ())))
