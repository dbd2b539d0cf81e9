"""The web workspace (``retention serve``): records managers review, approve and hold in a
browser, signed in as themselves.

Server-rendered pages over :mod:`retention.api`, the functions the CLI calls: no second engine
and no JavaScript framework. Its stylesheet is served from the package; nothing is loaded
from anywhere else (the Content-Security-Policy says so to the browser).
"""

from __future__ import annotations

from retention.web.app import create_app

__all__ = ["create_app"]
