"""The archive hand-off: one BagIt (RFC 8493) package per run and policy.

A package is built under a hidden temporary name, validated in full (every checksum, every
file present), and only then renamed into place. Nothing is destroyed on the strength of a
package that did not validate: :meth:`PackageWriter.seal` raises :class:`ArchiveFailed`
instead. Each record is one JSON file named by its record reference; the files that belong
to it are copied beside it as they were.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import bagit

from retention.catalog.loading import BoundPolicy
from retention.errors import RetentionError
from retention.filemodes import make_private_tree, private_dirs
from retention.state.database import utcnow

CHECKSUMS = ["sha256", "sha512"]
TAG_MANIFEST = "tagmanifest-sha256.txt"


class ArchiveFailed(RetentionError):
    """A package could not be written or did not validate; nothing was destroyed."""


@dataclass(frozen=True)
class Package:
    name: str
    path: Path
    tag_manifest_sha256: str
    records: int

    def evidence(self) -> dict[str, str]:
        """What a certificate carries about the package (SPEC §7 ``archive``)."""
        return {"package": self.name, "sha256": self.tag_manifest_sha256}


class PackageWriter:
    """Collects the records of one policy in one run into one package."""

    def __init__(self, root: Path, bound: BoundPolicy, run_id: str) -> None:
        self.bound, self.run_id = bound, run_id
        self.root = root
        self.name = f"{bound.register.id}--{bound.policy.id}--{run_id}"
        self.staging = root / f".{self.name}.partial"
        self.count = 0
        if (root / self.name).exists():
            raise ArchiveFailed(f"archive package {self.name} already exists")
        try:
            if self.staging.exists():
                shutil.rmtree(self.staging)
            private_dirs(self.staging / "records")  # personal data: 0700, whatever the umask
        except OSError as exc:
            raise ArchiveFailed(f"cannot write to the archive {root}: {exc}") from exc

    def add(
        self, ref: str, key: Sequence[str], values: Mapping[str, Any], files: Sequence[Path] = ()
    ) -> None:
        """Write one record (its column values) and copy its files."""
        body = {"record_ref": ref, "key": list(key), "values": _jsonable(values),
                "files": [f"files/{ref}/{f.name}" for f in files]}  # fmt: skip
        try:
            (self.staging / "records" / f"{ref}.json").write_text(
                json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8"
            )
            if files:
                target = self.staging / "files" / ref
                target.mkdir(parents=True, exist_ok=True)
                for source in files:
                    shutil.copy2(source, target / source.name)
        except OSError as exc:
            raise ArchiveFailed(f"cannot write record {ref} into {self.name}: {exc}") from exc
        self.count += 1

    def seal(self) -> Package:
        """Make the bag, validate it, move it into place; ArchiveFailed if any step fails."""
        policy, register = self.bound.policy, self.bound.register
        info = {
            "Source-Organization": register.controller,
            "External-Description": policy.description or policy.describe_rule(),
            "External-Identifier": self.name,
            "Bagging-Date": utcnow().date().isoformat(),
            "Register": register.id,
            "Register-Name": register.name,
            "Records-Plan": register.source,
            "Policy": policy.id,
            "Retention-Rule": policy.describe_rule(),
            "Policy-Sha256": policy.fingerprint(),
            "Legal-Basis": policy.legal_basis or "",
            "Run-Id": self.run_id,
            "Record-Count": str(self.count),
        }
        try:
            bag = bagit.make_bag(str(self.staging), bag_info=info, checksums=CHECKSUMS)
            make_private_tree(self.staging)  # bagit's manifests and copied files: 0600
            self._before_validation(self.staging)
            bag.validate()
        except (bagit.BagError, OSError) as exc:
            raise ArchiveFailed(
                f"archive package {self.name} did not validate: {exc}; nothing was destroyed"
            ) from exc
        final = self.root / self.name
        self.staging.rename(final)
        return Package(self.name, final, _sha256(final / TAG_MANIFEST), self.count)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def _before_validation(self, path: Path) -> None:
        """A seam for tests that corrupt a package between writing and validating it."""


def verify_packages(paths: Sequence[Path]) -> dict[Path, str | None]:
    """Re-validate packages (any BagIt bag): None for a valid one, else what is wrong.

    What is wrong names a record's file by the record's reference only: the names of the
    files inside a package (``data/files/REF/NAME``) are the share's, and can be a person's.
    bagit's own log lines, which print them, are kept quiet meanwhile.
    """
    results: dict[Path, str | None] = {}
    quiet = logging.getLogger("bagit")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        for path in paths:
            try:
                bagit.Bag(str(path)).validate()
                results[path] = None
            except bagit.BagValidationError as exc:
                results[path] = _without_names(exc)
            except (bagit.BagError, OSError) as exc:
                results[path] = _NAMED.sub(_KEEP_REF, str(exc))
    finally:
        quiet.setLevel(level)
    return results


#: A record's file in a package, up to its reference: the rest is the share's file name.
_NAMED = re.compile(r"(data/files/[0-9a-f]{8,64}/)[^;:'\"]*")
_KEEP_REF = r"\1…"


def _without_names(exc: bagit.BagValidationError) -> str:
    details = [
        f"{type(d).__name__}: {_NAMED.sub(_KEEP_REF, str(getattr(d, 'path', '')))}"
        for d in exc.details
    ]
    return str(exc.message) + (": " + "; ".join(details) if details else "")


def packages_in(root: Path) -> list[Path]:
    """The sealed packages under the archive root (not the hidden partial ones)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _value(value) for name, value in values.items()}


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
