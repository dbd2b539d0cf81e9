"""What people read about a plan: the stored plan as JSON, CSV or a self-contained HTML page
with its forecast chart.

Uses the stages below it (catalog, state, decide, evidence, enforce); never the API or the
command line.
"""
