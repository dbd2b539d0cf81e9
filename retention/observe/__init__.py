"""Observing the engine from outside: Prometheus metrics and notifications.

Everything here is derived from the engine's audit events (:mod:`retention.events`), its run
outcomes and the state database; nothing is threaded through the engine, and nothing here can
fail a run: a broken notifier or an unwritable metrics file is logged and counted.
"""
