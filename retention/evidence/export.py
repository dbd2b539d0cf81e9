"""Compliance exports of certificates, and their verification on any machine.

An export is the certificate file (``.jsonl``: one canonical certificate per line, or
``.csv``) plus ``<file>.manifest.json``: its sha256, count, first and last hash, the signed
ledger checkpoints that cover it, and an Ed25519 signature over the manifest. ``verify``
needs only the two files and the public key: no state database, no source.

A ``.html`` or ``.pdf`` export is a certificate of destruction for a person to sign
(:mod:`retention.evidence.destruction`). Its certificates go to a companion
``<file>.certificates.jsonl`` in the same canonical form as a ``.jsonl`` export, and the
manifest signs both files' sha256 and the counts the document prints; ``verify`` re-checks
the chain of the companion, re-counts it and reads the document's numbers back.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from retention.errors import LedgerError, UsageError
from retention.evidence import decisions, keyring, leaf, note, signing
from retention.evidence.certificate import FIELDS, OPTIONAL, canonical, disposed_early
from retention.evidence.destruction import (
    Counts,
    Document,
    Tally,
    compare,
    history,
    read_html_counts,
    render_html,
)
from retention.evidence.effects import effects
from retention.evidence.logverify import LogVerifier
from retention.i18n import Language
from retention.state.database import utcnow
from retention.workspace import Workspace

FORMAT = "retention-certificates/2"
#: The manifest format of a certificate of destruction (a document plus its certificates).
DOCUMENT_FORMAT = "retention-destruction-certificate/2"
#: Exports made before the ledger became a Merkle tree (revision 0009): chained certificates
#: only, verified by the chain's rules as they always were.
OLD_FORMATS = {"retention-certificates/1": FORMAT,
               "retention-destruction-certificate/1": DOCUMENT_FORMAT}  # fmt: skip
#: CSV columns after the certificate fields: a leaf's batch header hash, and the header keys
#: that are not among the fields (keys later versions add), as canonical JSON.
_LEAF_COLUMNS = (leaf.HEADER, "header_extra")
_KNOWN = frozenset(FIELDS) | frozenset(OPTIONAL)
DATA_SUFFIXES = (".jsonl", ".csv")
DOCUMENT_SUFFIXES = (".html", ".pdf")
_JSON_FIELDS = {"fields", "archive", "verified", "seq", "approvals", "records_plan"}


def manifest_path(export: Path) -> Path:
    return export.with_name(export.name + ".manifest.json")


def companion_path(document: Path) -> Path:
    """Where a document export's certificates are: ``<document>.certificates.jsonl``."""
    return document.with_name(document.name + ".certificates.jsonl")


def check_format(out: Path) -> None:
    """Refuse an export path of an unknown kind before anything is read or written."""
    if out.suffix.lower() not in DATA_SUFFIXES + DOCUMENT_SUFFIXES:
        raise UsageError(
            f"{out}: unknown export format {out.suffix!r}: use "
            + ", ".join(DATA_SUFFIXES + DOCUMENT_SUFFIXES)
        )


@dataclass
class ExportReport:
    file: Path
    certificates: int = 0
    checkpoints: int = 0
    faults: list[str] = field(default_factory=list)
    key_id: str | None = None
    """The id of the key that signed the manifest (the key given, or one of its chain)."""
    pinned_key_id: str | None = None
    """The key the manifest says was pinned (None: an export made before key pinning)."""
    tree: tuple[int, bytes] | None = None
    """A complete export's Merkle tree re-hashed from its certificates: size and root."""
    roots: dict[int, bytes] = field(default_factory=dict)
    """Tree sizes asked for (by --since) → the root of that many leaves of this export."""
    heads: dict[int, bytes] = field(default_factory=dict)
    """Tree heads this export vouches for: its re-hashed tree, and its signed checkpoints
    whose root it re-hashed."""
    decisions: int = 0
    """Decision journal entries the manifest carries (who approved what)."""

    @property
    def ok(self) -> bool:
        return not self.faults


def export_certificates(
    ws: Workspace,
    out: Path,
    since: date | None = None,
    until: date | None = None,
    register: str | None = None,
    language: Language = "en",
) -> dict[str, Any]:
    """Write the certificates executed between ``since`` and ``until`` (inclusive), signed;
    a certificate of destruction (.html, .pdf) in ``language``."""
    check_format(out)
    suffix = out.suffix.lower()
    key = ws.signing_key()
    keys = keyring.require_current(ws.state, key)  # pins a ledger made before pinning
    ledger = ws.ledger.verify(key.public_key())
    if not ledger.ok:  # never sign what the ledger itself does not vouch for
        raise LedgerError("the ledger does not verify, so it cannot be exported and signed:\n  "
                          + "\n  ".join(ledger.faults))  # fmt: skip
    checked = decisions.verify(ws.state, keys)
    if checked.faults:  # nor who decided, when that does not verify
        raise LedgerError("the decision journal does not verify, so it cannot be exported:\n  "
                          + "\n  ".join(checked.faults))  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    exported_at = utcnow()
    complete = since is None and until is None and register is None
    chain = LogVerifier(None, gaps=register is not None)
    tally = Tally()
    certs = ws.ledger.iter_certificates(since, until, register)
    data = companion_path(out) if suffix in DOCUMENT_SUFFIXES else out
    with data.open("w", encoding="utf-8", newline="") as handle:
        if data.suffix.lower() == ".jsonl":
            for cert in certs:
                chain.feed(cert)
                tally.feed(cert)
                handle.write(canonical(cert).decode("utf-8") + "\n")
        else:
            writer = csv.writer(handle)
            writer.writerow((*FIELDS, *OPTIONAL, *_LEAF_COLUMNS))
            for cert in certs:
                chain.feed(cert)
                extra = {k: v for k, v in cert.items() if k not in _KNOWN and k != leaf.HEADER}
                tally.feed(cert)
                writer.writerow([
                    *(_cell(name, cert.get(name)) for name in FIELDS),
                    *(_cell(name, cert[name]) if name in cert else "" for name in OPTIONAL),
                    cert.get(leaf.HEADER) or "",
                    canonical(extra).decode("utf-8") if extra else "",
                ])  # fmt: skip
    first_seq, last_seq = chain.first_seq or 0, chain.last_seq or 0
    covering = [  # the signed checkpoints whose range overlaps the exported certificates
        cp
        for cp in ws.ledger.checkpoint_rows()
        if chain.count and cp["first_seq"] <= last_seq and cp["last_seq"] >= first_seq
    ]
    key_id = signing.key_id(key.public_key())
    manifest: dict[str, Any] = {"format": FORMAT, "file": out.name}
    if suffix in DOCUMENT_SUFFIXES:
        data_sha256 = _sha256(data)
        run_history, approvals = history(ws, tally, since, until, register)
        doc = Document(
            file=out.name, companion=data.name, companion_sha256=data_sha256,
            manifest=manifest_path(out).name, exported_at=exported_at, since=since,
            until=until, register=register, policies=tally.rows(), runs=run_history,
            approvals=approvals, approvers=sorted(tally.approvers.items()), count=chain.count,
            first_seq=chain.first_seq, last_seq=chain.last_seq, first_hash=chain.first_hash,
            last_hash=chain.last_hash, checkpoints=covering, key_id=key_id, language=language,
            registers={r.register: ws.catalog.registers[r.register] for r in tally.rows()
                       if r.register in ws.catalog.registers},
            effects=effects(ws, [(r.register, r.policy) for r in tally.rows()]),
        )  # fmt: skip
        if suffix == ".pdf":
            from retention.evidence.pdf import render_pdf

            render_pdf(doc, out)
        else:
            render_html(doc, out)
        manifest["format"] = DOCUMENT_FORMAT
        manifest["certificates"] = {"file": data.name, "sha256": data_sha256}
        manifest["counts"] = tally.counts()
    manifest.update({
        "sha256": _sha256(out),
        "count": chain.count,
        "first_hash": chain.first_hash,
        "last_hash": chain.last_hash,
        "last_seq": chain.last_seq,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "register": register,
        "exported_at": exported_at.isoformat(),
        "checkpoints": covering,
        # Every leaf of the tree from the first: the verifier re-hashes the tree, so its root
        # can be compared with each checkpoint's and with a later export's (--since).
        "complete": complete and chain.first_seq in (1, None),
        "key_id": key_id,
        "pinned_key_id": keys.pinned,
        "keys": keys.exported(),
    })  # fmt: skip
    # Who decided: the journal entries (approvals, rejections, exclusions) of every plan
    # the exported certificates name, each with its own hash and signature.
    with ws.state.connect() as conn:
        journal = decisions.for_plans(conn, sorted(tally.plan_ids))
    manifest["decisions"] = [e.exported() for entries in journal.values() for e in entries]
    manifest["signature"] = signing.sign(key, canonical(manifest))
    manifest_path(out).write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def verify_export(
    path: Path, public_key: Ed25519PublicKey, since: Path | None = None
) -> ExportReport:
    """Check the manifest signature, the file's checksum, every hash and every checkpoint.

    For a document, also the companion file's checksum and chain, and that the counts the
    manifest signs and the document prints are those of the certificates. With ``since`` (an
    earlier export), also that this export's tree extends every tree head of that one: the
    root of its first N leaves is the root the earlier export re-hashes and signs for N.
    """
    if since is None:
        return _verify_export(path, public_key, {})
    old = _verify_export(since, public_key, {})
    heads = dict(old.heads)
    report = _verify_export(path, public_key, dict.fromkeys(heads, b""))
    report.faults.extend(f"{since.name} (--since): {fault}" for fault in old.faults)
    if not heads:
        report.faults.append(
            f"{since.name} (--since): holds no tree head to compare with: --since needs a "
            "complete export (no --since/--until/--register) made since the ledger became a "
            "Merkle tree"
        )
    elif report.tree is None:
        report.faults.append(
            f"{path.name}: not a complete export, so its tree cannot be re-hashed: --since "
            "needs a complete export (no --since/--until/--register)"
        )
    for size, root in sorted(heads.items()):
        mine = report.roots.get(size) or b""
        if mine != root:
            report.faults.append(
                f"{path.name} does not extend {since.name}: the root of its first {size} "
                "certificates differs from the one that export re-hashed and signed "
                "(a certificate certified before was altered, removed or inserted)"
                if mine else
                f"{path.name} holds fewer than the {size} certificates of {since.name}"
            )  # fmt: skip
    return report


def _verify_export(
    path: Path, public_key: Ed25519PublicKey, roots: dict[int, bytes]
) -> ExportReport:
    report = ExportReport(path, roots=roots)
    mpath = manifest_path(path)
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"{mpath.name} is missing: an export is verified with its manifest"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        report.faults.append(f"{mpath.name}: not valid JSON ({exc})")
        return report
    if not isinstance(manifest, dict):
        report.faults.append(f"{mpath.name}: not a manifest (a JSON object)")
        return report
    body = {k: v for k, v in manifest.items() if k != "signature"}
    chain = _pinned_chain(manifest, public_key, report)
    signer = chain.find(manifest.get("key_id")) if chain is not None else None
    report.key_id = signing.key_id(public_key) if signer is None else signer.key_id
    if not signing.verify(
        public_key if signer is None else signer.public_key,
        canonical(body),
        str(manifest.get("signature", "")),
    ):
        report.faults.append(f"{mpath.name}: signature does not verify with this public key")
    if manifest.get("sha256") != _sha256(path):
        report.faults.append(f"{path.name}: content differs from the signed manifest (sha256)")
    document = path.suffix.lower() in DOCUMENT_SUFFIXES
    expected = DOCUMENT_FORMAT if document else FORMAT
    if OLD_FORMATS.get(str(manifest.get("format"))) == expected:
        expected = str(manifest.get("format"))  # made before 0009: verified as it was then
    if manifest.get("format") != expected:
        report.faults.append(
            f"{mpath.name}: format {manifest.get('format')!r}, but a {path.suffix} export "
            f"has {expected!r}"
        )
        return report
    if not document:
        tallied = _verify_certificates(path, manifest, public_key, chain, report)
        _verify_decisions(manifest, public_key, chain, report, tallied)
        return report
    listed = manifest.get("certificates")
    if not isinstance(listed, dict) or not isinstance(listed.get("file"), str):
        report.faults.append(f"{mpath.name}: names no certificates file")
        return report
    data = path.with_name(Path(listed["file"]).name)
    if not data.is_file():
        report.faults.append(
            f"{data.name} is missing: it holds the certificates this document summarises"
        )
        return report
    if listed.get("sha256") != _sha256(data):
        report.faults.append(f"{data.name}: content differs from the signed manifest (sha256)")
    tally = _verify_certificates(data, manifest, public_key, chain, report)
    _verify_decisions(manifest, public_key, chain, report, tally)
    counts = tally.counts()
    if manifest.get("counts") != counts:
        report.faults.append(f"{mpath.name}: its counts are not those of {data.name}")
    read = read_html_counts if path.suffix.lower() == ".html" else _read_pdf_counts
    try:
        printed = read(path)
    except (OSError, ValueError) as exc:
        report.faults.append(f"{path.name}: its numbers cannot be read ({exc})")
        return report
    report.faults.extend(f"{path.name}: {fault}" for fault in compare(printed, tally.total, counts))
    return report


def _pinned_chain(
    manifest: dict[str, Any], public_key: Ed25519PublicKey, report: ExportReport
) -> keyring.KeyChain | None:
    """The key chain the manifest carries, checked: the given key must be the pinned key or
    one reached from it by signed rotations, and then every key of the chain is trusted (an
    auditor holding the pinned key follows the rotations since). None for a manifest made
    before key pinning."""
    pinned = manifest.get("pinned_key_id")
    if pinned is None and "keys" not in manifest:
        return None
    report.pinned_key_id = str(pinned)
    entries = manifest.get("keys")
    chain = keyring.follow(entries if isinstance(entries, list) else [])
    report.faults.extend(f"manifest: {fault}" for fault in chain.faults)
    if chain.pinned != pinned:
        report.faults.append(
            f"manifest: names key {pinned} as pinned, but its key chain starts at {chain.pinned}"
        )
    given = signing.key_id(public_key)
    if chain.find(given) is None:
        report.faults.append(
            f"the public key {given} is not the pinned key {pinned} nor reached from it by a "
            "signed rotation"
        )
        return keyring.KeyChain()  # nothing is trusted but the key given
    if chain.find(manifest.get("key_id")) is None:
        report.faults.append(
            f"the manifest was signed by key {manifest.get('key_id')}, which its key chain "
            "does not reach"
        )
    return chain


def _verify_certificates(
    path: Path,
    manifest: dict[str, Any],
    public_key: Ed25519PublicKey,
    keys: keyring.KeyChain | None,
    report: ExportReport,
) -> Tally:
    """Re-hash and chain the certificates of ``path`` against the manifest and checkpoints,
    each checkpoint checked with the key of the pinned chain that signed it."""
    chain = LogVerifier(None, gaps=manifest.get("register") is not None)
    tally = Tally()
    marks: dict[int, dict[str, Any]] = {}
    trees: dict[int, dict[str, Any]] = {}
    for cp in manifest.get("checkpoints", []):
        cp_body = {k: v for k, v in cp.items() if k != "signature"}
        signer = public_key if keys is None else None
        if keys is not None:
            trusted = keys.find(cp.get("key_id"))
            if trusted is None:
                report.faults.append(
                    f"checkpoint up to seq {cp.get('last_seq')}: signed by key "
                    f"{cp.get('key_id')}, which the pinned key chain does not reach"
                )
            else:
                signer = trusted.public_key
        if signer is not None and not signing.verify(
            signer, canonical(cp_body), str(cp.get("signature", ""))
        ):
            report.faults.append(f"checkpoint up to seq {cp.get('last_seq')}: bad signature")
        marks[cp.get("last_seq")] = cp
        if "tree_size" in cp:
            trees[cp["tree_size"]] = cp
    report.checkpoints = len(marks)
    complete = manifest.get("complete") is True
    signers = [public_key] if keys is None or not keys.keys else [k.public_key for k in keys.keys]
    for line, cert in _read(path):
        if cert is None:
            report.faults.append(f"{path.name}: line {line} is not a readable certificate")
            continue
        chain.feed(cert)
        tally.feed(cert)
        tree = trees.get(chain.count)
        if complete and chain.frontier is not None:
            if tree is not None:
                root = chain.frontier.root()
                faults = _note_faults(tree, root, signers)
                report.faults.extend(faults)
                if not faults:
                    report.heads[chain.count] = root
            if chain.count in report.roots:
                report.roots[chain.count] = chain.frontier.root()
        early = disposed_early(cert)
        if early is not None:
            report.faults.append(early)
        mark = marks.get(cert.get("seq"))  # type: ignore[arg-type]
        if mark is not None and mark.get("last_hash") != cert.get("hash"):
            report.faults.append(
                f"certificate {cert.get('certificate_id')} (seq "
                f"{cert.get('seq')}): differs from its signed checkpoint"
            )
    report.faults.extend(chain.faults)
    report.certificates = chain.count
    if complete and chain.frontier is not None:
        report.tree = (chain.frontier.size, chain.frontier.root())
        report.heads[chain.frontier.size] = chain.frontier.root()
        if chain.first_seq not in (1, None):
            report.faults.append(f"{path.name}: the manifest says it is complete, but it "
                                 f"starts at seq {chain.first_seq}")  # fmt: skip
        short = [size for size in trees if size > chain.count]
        if short:
            report.faults.append(
                f"{path.name}: a checkpoint signs {max(short)} certificates, the file holds "
                f"{chain.count}"
            )
    if chain.count != manifest.get("count") or chain.last_hash != manifest.get("last_hash"):
        report.faults.append(
            f"{path.name}: holds {chain.count} certificates ending in "
            f"{chain.last_hash}, the manifest says {manifest.get('count')} "
            f"ending in {manifest.get('last_hash')}"
        )
    return tally


def _note_faults(cp: dict[str, Any], root: bytes, signers: list[Ed25519PublicKey]) -> list[str]:
    """A checkpoint's signed note against the root re-hashed from the export's leaves."""
    name = f"checkpoint of tree size {cp.get('tree_size')}"
    try:
        parsed = note.parse(str(cp.get("note")))
    except note.NoteError as exc:
        return [f"{name}: {exc}"]
    faults = []
    if parsed.size != cp.get("tree_size") or parsed.root != root:
        faults.append(f"{name}: the root re-hashed from the certificates differs from the "
                      "signed root (a certificate altered, removed or inserted)")  # fmt: skip
    if not any(note.verified_by(parsed, parsed.origin, k) for k in signers):
        faults.append(f"{name}: its signed note does not verify with the key chain")
    return faults


def _verify_decisions(
    manifest: dict[str, Any],
    public_key: Ed25519PublicKey,
    keys: keyring.KeyChain | None,
    report: ExportReport,
    tally: Tally,
) -> None:
    """The decision journal entries the manifest carries must each verify, and every
    approver a certificate names must be an approval the journal signed for its plan. An
    export made before the journal carries none, and its certificates no ``approvals``."""
    exported = manifest.get("decisions")
    if exported is None:
        return
    if not isinstance(exported, list):
        report.faults.append("manifest: its decisions are not a list")
        return
    report.faults.extend(decisions.verify_exported(exported, keys, public_key))
    report.decisions = len(exported)
    signed = {
        (e.get("plan_id"), json.dumps(e.get("actor"), sort_keys=True), e.get("at"))
        for e in exported if isinstance(e, dict) and e.get("kind") == "approval"
    }  # fmt: skip
    for plan_id, approvals in sorted(tally.approvals.items()):
        for given in approvals:
            if not isinstance(given, dict) or given.get("issuer") is None:
                continue  # a plan approved before the journal: only its typed name
            actor = {k: given.get(k) for k in ("issuer", "subject", "name", "role",
                                                "authenticated")}  # fmt: skip
            if (plan_id, json.dumps(actor, sort_keys=True), given.get("at")) not in signed:
                report.faults.append(
                    f"plan {plan_id}: its certificates name approver {given.get('name')!r}, "
                    "but no signed approval of the decision journal in the manifest says so"
                )


def _read_pdf_counts(path: Path) -> tuple[int | None, Counts]:
    from retention.evidence.pdf import read_pdf_counts

    return read_pdf_counts(path)


def _read(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, certificate) pairs; None for a line that cannot be read as one."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        if path.suffix.lower() == ".jsonl":
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, _json_line(line)
            return
        reader = csv.DictReader(handle)
        for row in reader:
            try:
                cert = {name: _uncell(name, row[name]) for name in FIELDS}
                # An optional field is never empty when present: an empty cell, or no such
                # column (an export made before the field existed), means the field is absent.
                cert.update({name: _uncell(name, row[name]) for name in OPTIONAL if row.get(name)})
                if row.get(leaf.HEADER):  # a Merkle leaf joined with its header
                    del cert["prev_hash"]
                    cert[leaf.HEADER] = row[leaf.HEADER]
                    if row.get("header_extra"):
                        cert.update(json.loads(row["header_extra"]))
            except (ValueError, KeyError, TypeError):
                yield reader.line_num, None
            else:
                yield reader.line_num, cert


def _json_line(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _cell(name: str, value: Any) -> str:
    if name in _JSON_FIELDS:
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _uncell(name: str, text: str) -> Any:
    if name in _JSON_FIELDS:
        return json.loads(text)
    return text or None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
