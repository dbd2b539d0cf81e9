"""retention: enforce retention schedules on personal data, with a certificate per record."""

from __future__ import annotations

__version__ = "0.1.0"
