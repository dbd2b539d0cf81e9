"""The catalog: what a records manager writes (registers, policies, connectors, jobs, settings),
read safely from YAML into one frozen, validated model, with its date arithmetic and cron rules.

The bottom layer: it uses only the shared modules at the package root and the connector kinds.
"""
