"""Connector kinds: a plain mapping from ``kind:`` to the class that implements it.

Backends are imported only when a connector is built, so loading a catalog never pulls in
a database driver it does not use. This package is the bottom layer beside the catalog: the
contract (``base``), its backends and the SQL helpers the state database shares; a backend
uses the contract and the catalog's model, never the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retention.catalog.model import SourceSpec
    from retention.connectors.base import Connector

KINDS: dict[str, str] = {
    "sql": "retention.connectors.sql:SqlConnector",
    "files": "retention.connectors.files:FileShareConnector",
}


def build(spec: SourceSpec, url: str) -> Connector:
    """Instantiate the connector for ``spec``; ``url`` is already resolved."""
    try:
        target = KINDS[spec.kind]
    except KeyError:
        raise LookupError(
            f"unknown connector kind {spec.kind!r}; known kinds: {', '.join(sorted(KINDS))}"
        ) from None
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        from retention.errors import SourceUnavailable

        raise SourceUnavailable(
            f"connector {spec.id}: kind {spec.kind!r} cannot be loaded ({exc})"
        ) from exc
    connector: Connector = cls(spec, url)
    return connector
