"""Doing it: delete, anonymise or archive each due record, one run at a time under locks;
erasure requests, replay after a restore, re-keying on a secret rotation, and ``retention
check`` (whether each policy's action can be done on its live source).

Uses the catalog, connectors, state, decisions and evidence; never the reports, the API or the
command line.
"""
