"""Doing it: delete, anonymise or archive each due record, one run at a time under locks,
stoppable between batches; erasure requests, replay after a restore, secret rotation.

Uses the catalog, connectors, state, decisions and evidence; never the reports, the API or the
command line.
"""
