"""The Flask application: configuration, security headers, language, error pages.

Every request opens the catalog afresh (:class:`retention.workspace.Workspace`) and closes it
when the response is sent, as a CLI command does: a changed policy is seen at once, and no
connection outlives its request.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, render_template, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from retention.catalog.loading import Catalog, load_catalog
from retention.catalog.model import Web
from retention.decide.identity import NotPermitted
from retention.i18n import LANGUAGES, Language, Messages
from retention.logs import get_logger
from retention.pseudonym import SECRET_VARIABLE
from retention.workspace import Workspace

#: Nothing external: pages, styles, images and form targets are this server's own; no script.
CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
#: Uploads (an export to verify) up to this size.
MAX_UPLOAD = 256 * 1024 * 1024

_log = get_logger("retention.web")


def create_app(catalog: Path, environ: Mapping[str, str] | None = None, **overrides: Any) -> Flask:
    """The web workspace over the catalog at ``catalog``; ``overrides`` go into Flask's config
    (tests turn off what they test around)."""
    from retention.web import auth, views

    environ = dict(os.environ if environ is None else environ)
    loaded = load_catalog(catalog, environ)  # a broken catalog stops the server at start
    web = loaded.settings.web
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_session_key(web, environ),
        SESSION_COOKIE_NAME="retention_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=web.secure_cookies,
        SESSION_COOKIE_SAMESITE="Lax",  # the identity provider's redirect back is a top-level GET
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=web.session_minutes),
        MAX_CONTENT_LENGTH=MAX_UPLOAD,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session that holds it
        WTF_CSRF_SSL_STRICT=web.secure_cookies,
        RETENTION_CATALOG=Path(catalog),
        RETENTION_ENVIRON=environ,
        RETENTION_WEB=web,
    )
    app.config.update(overrides)
    auth.init(app, web, environ)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(views.blueprint)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.before_request
    def _language() -> None:
        wanted = session.get("lang") or request.accept_languages.best_match(LANGUAGES)
        chosen: Language = next(
            (lang for lang in LANGUAGES if lang == wanted), loaded.settings.report_language
        )
        g.lang = chosen
        g.t = Messages(chosen)

    CSRFProtect(app)  # after the language is chosen: its refusal page speaks it

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        response.vary.add("Accept-Language")
        return response

    _mount_metrics(app, web)

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        ws = g.pop("ws", None)
        if ws is not None:
            ws.close()

    @app.errorhandler(CSRFError)
    def _forged(exc: CSRFError) -> tuple[str, int]:
        # No valid session behind the form: most often an ended session; otherwise a forged
        # or replayed form. Either way nothing was done.
        ended = "user" not in session
        _log.warning("WebFormRefused", path=request.path, reason="csrf", session_ended=ended)
        key = "web_error_session" if ended else "web_error_csrf"
        return error_page(400, key)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[str, int]:
        code = exc.code or 500
        known = {
            400: "web_error_400",
            401: "web_error_401",
            403: "web_error_403",
            404: "web_error_404",
            405: "web_error_405",
            413: "web_error_413",
        }
        return error_page(code, known.get(code, "web_error_500"))

    @app.errorhandler(NotPermitted)
    def _not_permitted(exc: NotPermitted) -> tuple[str, int]:
        return error_page(403, "web_error_403", str(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[str, int]:
        # Only the kind of failure: a driver's message can quote a row's values.
        _log.error("WebFailure", path=request.path, failure=type(exc).__name__)
        return error_page(500, "web_error_500")

    return app


def _mount_metrics(app: Flask, web: Web) -> None:
    """``/metrics`` for Prometheus (docs/monitoring.md): the state database's standing gauges
    (the last success of each job, failing policies, tripped valves), read at each scrape.
    The counters of runs are the scheduler's or the textfile's: this process runs none."""
    if web.metrics == "off":
        return
    import threading

    import sqlalchemy as sa
    from werkzeug.wrappers import Response as WsgiResponse

    from retention.observe.metrics import Metrics, metrics_app
    from retention.state.database import open_state
    from retention.web.auth import require

    config = app.config
    engines: dict[str, sa.Engine] = {}
    lock = threading.Lock()

    latest: list[Catalog] = []

    def scraped_catalog() -> Catalog:
        """Read afresh at each scrape, as each page reads it."""
        loaded = load_catalog(config["RETENTION_CATALOG"], config["RETENTION_ENVIRON"])
        latest[:] = [loaded]
        return loaded

    def engine() -> sa.Engine:
        url = (latest[0] if latest else scraped_catalog()).state_url
        with lock:  # one pool for the server's life, not one per scrape
            if url not in engines:
                engines[url] = open_state(url)
            return engines[url]

    scrape = metrics_app(scraped_catalog, engine, Metrics())

    def metrics() -> WsgiResponse:
        return WsgiResponse.from_app(scrape, request.environ)

    view = require("read")(metrics) if web.metrics == "signed-in" else metrics
    app.add_url_rule("/metrics", "metrics", view, methods=["GET"])


def error_page(code: int, message: str, detail: str | None = None) -> tuple[str, int]:
    """A page that says what went wrong and that nothing was changed."""
    t: Messages = g.get("t") or Messages("en")
    return render_template("error.html.j2", code=code, message=t(message), detail=detail), code


def workspace() -> Workspace:
    """This request's workspace (opened on first use, closed with the response)."""
    from flask import current_app

    if "ws" not in g:
        g.ws = Workspace.open(
            current_app.config["RETENTION_CATALOG"], current_app.config["RETENTION_ENVIRON"]
        )
    ws: Workspace = g.ws
    return ws


def catalog() -> Catalog:
    return workspace().catalog


def _session_key(web: Web, environ: Mapping[str, str]) -> bytes:
    """The key that signs session cookies: the named variable, else derived from the
    installation's secret (so every worker shares it), else a new one per process."""
    given = environ.get(web.session_key_env, "")
    if given:
        return given.encode()
    secret = environ.get(SECRET_VARIABLE, "")
    if secret:
        return hmac.new(secret.encode(), b"retention web session key", hashlib.sha256).digest()
    _log.warning(
        "WebSessionKeyGenerated",
        variable=web.session_key_env,
        effect="sessions end when the server restarts",
    )
    return secrets.token_bytes(32)


def language() -> Language:
    lang: Language = g.lang
    return lang
