"""A loaded catalog with the resources commands need: state, connectors, secret, keys.

Resources are opened on first use and closed together, so ``retention check`` never needs
the secret and ``retention verify`` never touches a source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from retention import connectors
from retention.catalog.loading import Catalog, load_catalog
from retention.connectors.base import Connector
from retention.decide.holds import HoldBook
from retention.evidence import signing
from retention.evidence.ledger import Ledger
from retention.pseudonym import SECRET_VARIABLE, Secret
from retention.state.database import open_state
from retention.state.installation import check_secret


class Workspace:
    def __init__(self, catalog: Catalog, environ: Mapping[str, str] | None = None) -> None:
        self.catalog = catalog
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self._connectors: dict[str, Connector] = {}

    @classmethod
    def open(cls, root: Path | str, environ: Mapping[str, str] | None = None) -> Workspace:
        return cls(load_catalog(root, environ), environ)

    @cached_property
    def state(self) -> Engine:
        return open_state(self.catalog.state_url)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.state)

    @cached_property
    def holds(self) -> HoldBook:
        return HoldBook(self.state)

    @cached_property
    def secret(self) -> Secret:
        """The installation's secret, once it is known to be the one the state database's
        references were made with (:mod:`retention.state.installation`): SecretMismatch if not."""
        secret = Secret.from_environment(self.environ)
        check_secret(self.state, self.environ[SECRET_VARIABLE].encode())
        return secret

    @property
    def key_path(self) -> Path:
        return self.catalog.resolve(self.catalog.settings.signing_key)

    @property
    def public_key_path(self) -> Path:
        return signing.public_path(self.key_path)

    def signing_key(self) -> Ed25519PrivateKey:
        return signing.load_private(self.key_path)

    def connector(self, source_id: str) -> Connector:
        if source_id not in self._connectors:
            spec = self.catalog.sources[source_id]
            self._connectors[source_id] = connectors.build(spec, self.catalog.source_url(spec))
        return self._connectors[source_id]

    def close(self) -> None:
        for connector in self._connectors.values():
            connector.close()
        self._connectors.clear()
        if "state" in self.__dict__:
            self.state.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
