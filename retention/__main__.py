"""``python -m retention``: the command line."""

from __future__ import annotations

from retention.cli import main

main()
