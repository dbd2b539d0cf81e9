"""Proving it: a certificate per disposed record in a hash-chained ledger, signed checkpoints,
compliance exports, and the certificate of destruction (HTML or PDF) a person signs.

Uses the catalog, state and decisions (what a plan approved); never the reports, the API or
the command line.
"""
