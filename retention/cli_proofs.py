"""``retention certificates prove``: a proof of one record's (or one person's) certificates
that verifies with nothing but the public key (retention/evidence/proof.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from retention.cli import _console, _workspace, catalog_option, certificates


@certificates.command("prove")
@catalog_option
@click.option("--subject", help="The data subject's identifier (an erasure request's).")
@click.option("--policy", help="The policy (register/policy) of the record.")
@click.option("--key", multiple=True, help="The record's key, one value per key column.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Proof file (.json): leaf, batch header, inclusion path and signed checkpoint.",
)
def certificates_prove(
    catalog: Path, subject: str | None, policy: str | None, key: Sequence[str], out: Path
) -> None:
    """Prove that a record's certificates are in the signed ledger, naming it only by its
    keyed reference: `retention verify FILE --public-key KEY` checks the file anywhere."""
    from retention import api
    from retention.evidence.proof import write_proof

    if (subject is None) == (policy is None) or (policy is not None and not key):
        raise click.UsageError("give --subject ID, or --policy P with --key K (one per column)")
    if out.suffix.lower() != ".json":
        raise click.UsageError(f"{out}: a proof is written as .json")
    with _workspace(catalog) as ws:
        proven = api.prove(ws, subject=subject, policy=policy, key=key)
    proof, what = proven.proof, proven.what
    write_proof(out, proof)
    _console().print(
        f"proved {proven.certificates} certificate(s) of {what} under the checkpoint of tree size "
        f"{proof['tree_size']}: {out}",
        markup=False,
    )


def is_proof(file: Path) -> bool:
    from retention.evidence.proof import is_proof as proof_file

    return proof_file(file)


def verify_proof_file(file: Path, public_key: Path) -> tuple[str, list[str]]:
    """What a proof file proves, and its faults: for `retention verify FILE`."""
    from retention.evidence import signing
    from retention.evidence.proof import verify_proof

    report = verify_proof(file, signing.load_public(public_key))
    for cert in report.shown if report.ok else ():
        _console().print(
            f"certificate {cert.get('certificate_id')}: {cert.get('action')} "
            f"{cert.get('executed_at')} under {cert.get('register')}/{cert.get('policy')}",
            markup=False,
        )
    what = (
        f"proof {file}: {report.certificates} certificate(s) in the tree of "
        f"{report.tree_size} leaves, signed by key {report.key_id}"
    )
    return what, report.faults
