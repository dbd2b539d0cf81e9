"""Proving it: a certificate per disposed record in a hash-chained ledger, signed checkpoints,
compliance exports, the certificate of destruction (HTML or PDF) a person signs, and what each
action changes, in words for the people who approve and sign.

Uses the catalog, the state database and, beside it, the decisions (which plans were
approved); never enforcing, the reports, the API or the command line.
"""
