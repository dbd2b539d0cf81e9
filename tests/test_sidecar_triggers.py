"""A sidecar field is data users write: one bad value never stops the run of every register."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention import api
from retention.errors import CatalogError
from retention.workspace import Workspace
from tests.conftest import SECRET
from tests.test_files import put
from tests.test_share_safety import AS_OF, make_catalog


def test_a_sidecar_value_that_is_no_date_is_kept_and_stops_nothing(tmp_path: Path) -> None:
    """`trigger: sidecar:ended` with one sidecar saying "see attached": `run` disposes of
    every other due file of every policy, keeps that one (it has no trigger date), and only
    `check` reports the field."""
    catalog = make_catalog(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")
    policies = catalog / "policies" / "amkoodari.yaml"
    text = policies.read_text(encoding="utf-8")
    head, documents = text.split("  - id: documents\n")
    documents = documents.replace("    until: 2022-06-30\n", '    trigger: "sidecar:ended"\n'
                                  "    retain: P0D\n")  # fmt: skip
    policies.write_text(head + "  - id: documents\n" + documents, encoding="utf-8")
    share = catalog / "share"
    put(share, "interviews/a.wav")
    put(share, "documents/one.pdf", {"ended": "2020-01-01"})
    put(share, "documents/two.pdf", {"ended": "2021-06-30"})
    put(share, "documents/odd.pdf", {"ended": "see attached"})
    environ = {"RETENTION_SECRET": SECRET}
    with Workspace.open(catalog, environ) as ws:
        with pytest.raises(CatalogError, match="sidecar:ended"):
            api.check(ws)
        outcome = api.run(ws, as_of=AS_OF)
    assert outcome.disposed == 3
    assert sorted(p.relative_to(share).as_posix() for p in share.rglob("*.*")) == [
        "documents/odd.pdf",
        "documents/odd.pdf.json",
    ]
