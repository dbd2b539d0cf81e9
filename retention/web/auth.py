"""Sign-in: OpenID Connect (Authorization Code with PKCE, by Authlib) against the
organisation's identity provider, or a local account; and the role check every page makes.

The identity kept in the session is the provider's issuer and subject, the name to show and
the roles the configured claim gave; nothing else of the token is kept.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from retention.catalog.model import Web
from retention.logs import get_logger
from retention.web import accounts
from retention.web.roles import Identity, Permission, roles_from_claim
from retention.web.throttle import Throttle, source_of

blueprint = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., Any])
_log = get_logger("retention.web")


def init(app: Flask, web: Web, environ: Mapping[str, str]) -> None:
    """Register the identity provider with Authlib, if the catalog names one, and count
    failed local sign-ins (:mod:`retention.web.throttle`)."""
    app.extensions["retention_throttle"] = Throttle()
    if web.oidc is None:
        return
    from authlib.integrations.flask_client import OAuth

    oidc = web.oidc
    secret = environ.get(oidc.client_secret_env, "") if oidc.client_secret_env else ""
    if oidc.client_secret_env and not secret:
        from retention.errors import UsageError

        raise UsageError(
            f"retention.yaml web.oidc.client_secret_env: the variable {oidc.client_secret_env} "
            "is not set or empty"
        )
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=oidc.client_id,
        client_secret=secret or None,
        server_metadata_url=f"{oidc.issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": " ".join(oidc.scopes),
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic" if secret else "none",
        },
    )
    app.extensions["retention_oauth"] = oauth


def current() -> Identity | None:
    """The person signed in, if the session is theirs and has not ended."""
    if "identity" in g:
        found: Identity | None = g.identity
        return found
    identity = Identity.from_session(session.get("user"))
    started = session.get("since")
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    if identity is not None and (
        not isinstance(started, int | float) or time.time() - started > lifetime
    ):
        session.clear()
        g.session_ended = True
        identity = None
    if identity is not None and identity.issuer == accounts.LOCAL_ISSUER:
        identity = _still_held(identity)
    g.identity = identity
    return identity


def _still_held(identity: Identity) -> Identity | None:
    """A local account's session lasts only while the account is enabled, and acts with the
    role the account has now: disabling or demoting an account takes effect at the next
    request, not when the session's cookie runs out."""
    from retention.web.app import workspace

    role = accounts.role_of(workspace().state, identity.subject)
    if role is None:
        session.clear()
        g.session_ended = True
        return None
    if identity.roles != (role,):
        identity = replace(identity, roles=(role,))
        session["user"] = identity.as_session()
    return identity


def require(permission: Permission) -> Callable[[F], F]:
    """A view only for people signed in with ``permission``: others are sent to sign in
    (reading) or get 403 (acting), and nothing is done."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            identity = current()
            if identity is None:
                if request.method != "GET":
                    abort(401)
                ended = 1 if g.get("session_ended") else None
                target = _local_path(request.full_path)
                return redirect(url_for("auth.signin", next=target, ended=ended))
            if not identity.may(permission):
                _log.warning(
                    "WebForbidden", path=request.path, role=identity.role, permission=permission
                )
                abort(403)
            return view(*args, **kwargs)

        return cast("F", wrapped)

    return decorate


def _local_path(target: str | None) -> str:
    """A path on this server only: never an open redirect. Control characters and spaces
    are refused outright — a browser or Werkzeug drops a tab or newline, which would turn
    ``/<tab>/evil.example`` into ``//evil.example`` after this check — and what is left must
    parse with no scheme and no host."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 33 or ord(c) == 127 for c in target)
    ):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target.rstrip("?")


def _web() -> Web:
    web: Web = current_app.config["RETENTION_WEB"]
    return web


def _start(identity: Identity) -> Response:
    """Begin a fresh session for ``identity`` (whatever the old one held is dropped)."""
    target = _local_path(session.get("next"))
    lang = session.get("lang")
    session.clear()
    session.permanent = True
    session["user"] = identity.as_session()
    session["since"] = int(time.time())
    if lang:
        session["lang"] = lang
    _log.info("WebSignedIn", issuer=identity.issuer, role=identity.role)
    return redirect(target)


@blueprint.get("/signin")
def signin() -> str:
    session["next"] = _local_path(request.args.get("next"))
    web = _web()
    return render_template(
        "signin.html.j2",
        oidc=web.oidc is not None,
        local=web.local_accounts,
        failed=False,
        ended=request.args.get("ended") == "1",
    )


@blueprint.post("/signin/local")
def signin_local() -> Response | tuple[str, int]:
    web = _web()
    if not web.local_accounts:
        abort(404)
    from retention.web.app import workspace

    name = request.form.get("name", "")[:200]
    password = request.form.get("password", "")
    throttle: Throttle = current_app.extensions["retention_throttle"]
    device = _known_device(name)
    # A browser this name signed in from before is its own source, and is not refused for
    # the name's failures from everywhere: a guesser's cap does not keep the owner out.
    source = f"device:{device}" if device else source_of(request.remote_addr)
    wait = throttle.wait(name, source, capped=device is None)
    if wait:  # refused before the password is checked: guessing costs the guesser time
        _log.warning("WebSignInRefused", via="local", reason="throttled", retry_after=wait)
        page = render_template(
            "signin.html.j2", oidc=web.oidc is not None, local=True, failed=False,
            ended=False, throttled=(wait + 59) // 60,
        )  # fmt: skip
        return page, 429
    account = accounts.check(workspace().state, name, password) if name and password else None
    if account is None:
        if name:
            throttle.failed(name, source)
        _log.warning("WebSignInRefused", via="local")
        page = render_template(
            "signin.html.j2", oidc=web.oidc is not None, local=True, failed=True, ended=False
        )
        return page, 401
    throttle.succeeded(name, source)
    response = _start(Identity(accounts.LOCAL_ISSUER, account.name, account.name, (account.role,)))
    response.set_cookie(
        DEVICE_COOKIE, _devices().dumps({"name": account.name.casefold(),
                                         "id": device or secrets.token_urlsafe(12)}),
        max_age=DEVICE_DAYS * 86400, httponly=True, samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        path=current_app.session_interface.get_cookie_path(current_app),
    )  # fmt: skip
    return response


#: The cookie a browser gets when a local sign-in succeeds from it (OWASP's device cookie).
DEVICE_COOKIE = "retention_device"
#: How long a browser stays known after its last successful sign-in.
DEVICE_DAYS = 180


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or b"", salt="retention-device")


def _known_device(name: str) -> str | None:
    """The id of this browser's device cookie if ``name`` signed in from it within
    :data:`DEVICE_DAYS` (the cookie is signed with the session key); None otherwise."""
    token = request.cookies.get(DEVICE_COOKIE)
    if not token:
        return None
    try:
        data = _devices().loads(token, max_age=DEVICE_DAYS * 86400)
    except BadData:
        return None
    if not isinstance(data, dict) or data.get("name") != name.casefold():
        return None
    ident = data.get("id")
    return ident if isinstance(ident, str) and ident else None


@blueprint.get("/signin/oidc")
def signin_oidc() -> Response:
    oauth = current_app.extensions.get("retention_oauth")
    if oauth is None:
        abort(404)
    redirect_uri = url_for("auth.callback", _external=True)
    response: Response = oauth.idp.authorize_redirect(redirect_uri)
    return response


@blueprint.get("/signin/callback")
def callback() -> Response | tuple[str, int]:
    oauth = current_app.extensions.get("retention_oauth")
    web = _web()
    if oauth is None or web.oidc is None:
        abort(404)
    from authlib.integrations.base_client.errors import OAuthError

    from retention.web.app import error_page

    try:
        token = oauth.idp.authorize_access_token()
    except OAuthError as exc:
        _log.warning("WebSignInRefused", via="oidc", error=exc.error)
        return error_page(401, "web_error_signin")
    claims: dict[str, Any] = dict(token.get("userinfo") or {})
    oidc = web.oidc
    if oidc.roles_claim not in claims or oidc.name_claim not in claims:
        claims = {**dict(oauth.idp.userinfo(token=token)), **claims}
    roles = roles_from_claim(claims.get(oidc.roles_claim), oidc.roles)
    if not roles:
        _log.warning("WebSignInRefused", via="oidc", reason="no role")
        return error_page(403, "web_error_no_role")
    name = str(claims.get(oidc.name_claim) or claims.get("preferred_username") or claims["sub"])
    issuer = str(claims.get("iss") or oidc.issuer)
    return _start(Identity(issuer, str(claims["sub"]), name[:200], roles))


@blueprint.post("/signout")
def signout() -> Response:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.signin"))


@blueprint.post("/language")
def language() -> Response:
    chosen = request.form.get("lang")
    if chosen in ("en", "fi"):
        session["lang"] = chosen
    return redirect(_local_path(request.form.get("next")))
