"""Deciding: each record is ``retain``, ``expire``, ``held`` or ``done``; plans store those
decisions, holds stop them, a records manager approves them, a forecast counts what falls due.

Uses the catalog, the connectors' contract, the state database and, beside it, the evidence
(``done`` is read from the ledger); never enforcing, the reports, the API or the command line.
"""
