"""The state database (plans, runs, holds, intents, the ledger's tables) on SQLite, PostgreSQL or
MariaDB, its Alembic migrations, and the secret its references were made with.

Uses only the shared modules at the package root and the connectors' SQL helpers.
"""
