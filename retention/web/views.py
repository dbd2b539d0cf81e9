"""The pages: plans and their review, holds, evidence.

Each view reads through :mod:`retention.api` (or the report modules the CLI's reports are
written by) and acts only through the API, after the role check of :func:`auth.require`.
Personal values (a subject, a record's key to hold or exclude) travel in form bodies only,
never in a URL, and are never logged.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.wrappers import Response

from retention import api
from retention.decide.approval import STATES
from retention.errors import RetentionError, UsageError
from retention.logs import get_logger
from retention.web import review
from retention.web.app import language, workspace
from retention.web.auth import current, require
from retention.web.uploads import Refused, unpack

blueprint = Blueprint("pages", __name__)
_log = get_logger("retention.web")
_PLAN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_HOLD_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
#: Records per policy and list shown on a plan's page (the downloads list every record).
RECORD_LIMIT = 200
EXPORT_FORMATS = ("jsonl", "csv", "html", "pdf")


@blueprint.app_context_processor
def _context() -> dict[str, Any]:
    return {
        "t": g.get("t"),
        "lang": g.get("lang", "en"),
        "me": current(),
        "messages": get_flashed_messages(with_categories=True),
    }


def _plan_id(plan_id: str) -> str:
    if not _PLAN_ID.match(plan_id):
        abort(404)
    return plan_id


def _problem(exc: RetentionError) -> None:
    """A refusal of the engine, shown on the next page; its text names no personal value."""
    flash(str(exc), "error")


@blueprint.get("/")
def home() -> Response:
    return redirect(url_for("pages.plans"))


@blueprint.get("/healthz")
def health() -> str:
    """For a container's health check: the server answers (nothing is read)."""
    return "ok"


# --------------------------------------------------------------------------------------------
# plans


@blueprint.get("/plans")
@require("read")
def plans() -> str:
    wanted = request.args.get("state") or None
    if wanted is not None and wanted not in STATES:
        abort(400)
    found = api.plans(workspace())
    counts = {state: sum(1 for p in found if p.state == state) for state in STATES}
    shown = [p for p in found if wanted is None or p.state == wanted]
    return render_template(
        "plans.html.j2",
        plans=shown,
        counts=counts,
        states=STATES,
        wanted=wanted,
        zone=workspace().catalog.settings.timezone,
    )


@blueprint.get("/plans/<plan_id>")
@require("read")
def plan(plan_id: str) -> str:
    from retention.decide.approval import plan_status

    ws = workspace()
    try:
        status = plan_status(ws, _plan_id(plan_id))
    except UsageError:
        abort(404)
    page = review.plan_page(ws, status, language(), RECORD_LIMIT)
    me = current()
    assert me is not None
    return render_template(
        "plan.html.j2",
        status=status,
        page=page,
        can_review=me.may("review") and status.state == "pending",
        decisions=review.decisions(ws, status),
        missing=review.missing(status, language()),
        zone=ws.catalog.settings.timezone,
    )


@blueprint.post("/plans/<plan_id>/approve")
@require("review")
def approve(plan_id: str) -> Response:
    me = current()
    assert me is not None
    comment = _text("comment", 2000)
    try:
        status = review.approve(workspace(), _plan_id(plan_id), me, comment)
        complete = status.review is None or status.review.complete
        flash(g.t("web_approved" if complete else "web_approved_more"), "ok")
    except UsageError as exc:
        _problem(exc)
    return redirect(url_for("pages.plan", plan_id=plan_id))


@blueprint.post("/plans/<plan_id>/reject")
@require("review")
def reject(plan_id: str) -> Response:
    me = current()
    assert me is not None
    comment = _text("comment", 2000)
    if not comment:
        flash(g.t("web_reject_needs_comment"), "error")
        return redirect(url_for("pages.plan", plan_id=plan_id))
    try:
        review.reject(workspace(), _plan_id(plan_id), me, comment)
        flash(g.t("web_rejected"), "ok")
    except UsageError as exc:
        _problem(exc)
    return redirect(url_for("pages.plan", plan_id=plan_id))


@blueprint.post("/plans/<plan_id>/exclude")
@require("review")
def exclude(plan_id: str) -> Response:
    me = current()
    assert me is not None
    policy = _text("policy", 300)
    key = _lines("key")
    reason = _text("reason", 2000)
    if not policy or not key or not reason:
        flash(g.t("web_exclude_incomplete"), "error")
        return redirect(url_for("pages.plan", plan_id=plan_id))
    try:
        review.exclude(workspace(), _plan_id(plan_id), me, policy, key, reason)
        flash(g.t("web_excluded"), "ok")
    except UsageError as exc:
        _problem(exc)
    return redirect(url_for("pages.plan", plan_id=plan_id))


@blueprint.get("/plans/<plan_id>/report.<fmt>")
@require("read")
def report(plan_id: str, fmt: str) -> Response:
    """The plan's report as the CLI writes it: HTML (this language), JSON or CSV."""
    from retention.reports.formats import write_report

    if fmt not in ("html", "json", "csv"):
        abort(404)
    ws = workspace()
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"plan-{plan_id}.{fmt}"
            write_report(ws, _plan_id(plan_id), path, lang=language())
            data = path.read_bytes()
    except UsageError:
        abort(404)
    return send_file(
        BytesIO(data),
        as_attachment=True,
        download_name=path.name,
        mimetype={"html": "text/html", "json": "application/json", "csv": "text/csv"}[fmt],
    )


# --------------------------------------------------------------------------------------------
# holds


@blueprint.get("/holds")
@require("read")
def holds() -> str:
    ws = workspace()
    everything = request.args.get("all") == "1"
    found = api.holds(ws, include_released=everything)
    return render_template(
        "holds.html.j2",
        holds=list(reversed(found)),
        everything=everything,
        registers=sorted(ws.catalog.registers),
        policies=[b.name for b in ws.catalog.policies],
        form={},
        nothing=None,
        zone=ws.catalog.settings.timezone,
    )


@blueprint.post("/holds")
@require("hold")
def place_hold() -> Response | tuple[str, int]:
    me = current()
    assert me is not None
    ws = workspace()
    form = {
        name: _text(name, 2000) for name in ("register", "policy", "subject", "reason", "until")
    }
    record = _lines("record")
    force = request.form.get("confirm") == "1"
    until: date | None = None
    problem = None
    if form["until"]:
        try:
            until = date.fromisoformat(form["until"])
        except ValueError:
            problem = g.t("web_bad_date")
    if not form["reason"]:
        problem = g.t("web_hold_needs_reason")
    if record and not form["policy"]:
        problem = g.t("web_hold_record_needs_policy")
    register, policy = form["register"] or None, form["policy"] or None
    subject = form["subject"] or None
    if problem is None and not force:
        try:  # said before anything is saved: a hold that covers nothing comes back to confirm
            preview = api.hold_preview(
                ws, register=register, policy=policy, subject=subject, record=record, until=until
            )
            if preview.covers_nothing:
                return _holds_form(form, record, nothing=True), 409
        except UsageError as exc:
            problem = str(exc)
    if problem is None:
        try:
            placed = api.place_hold(
                ws,
                reason=form["reason"],
                identity=me.engine(),
                register=register,
                policy=policy,
                subject=subject,
                record=record,
                until=until,
                force=force,
            )
        except UsageError as exc:
            problem = str(exc)
        else:
            flash(g.t("web_hold_placed", hold=placed.hold.hold_id, count=placed.total), "ok")
            return redirect(url_for("pages.holds"))
    flash(problem, "error")
    return _holds_form(form, record, nothing=False), 400


def _holds_form(form: dict[str, str], record: list[str], *, nothing: bool) -> str:
    ws = workspace()
    return render_template(
        "holds.html.j2",
        holds=list(reversed(api.holds(ws))),
        everything=False,
        registers=sorted(ws.catalog.registers),
        policies=[b.name for b in ws.catalog.policies],
        form={**form, "record": "\n".join(record)},
        record=record,
        nothing=nothing,
        zone=ws.catalog.settings.timezone,
        messages=get_flashed_messages(with_categories=True),
    )


@blueprint.post("/holds/<hold_id>/release")
@require("hold")
def release_hold(hold_id: str) -> Response:
    me = current()
    assert me is not None
    if not _HOLD_ID.match(hold_id):
        abort(404)
    try:
        api.release_hold(workspace(), hold_id, identity=me.engine())
        flash(g.t("web_hold_released", hold=hold_id), "ok")
    except UsageError as exc:
        _problem(exc)
    return redirect(url_for("pages.holds"))


# --------------------------------------------------------------------------------------------
# evidence


@blueprint.get("/evidence")
@require("read")
def evidence() -> str:
    from retention.reports.chart import stacked_bars

    ws = workspace()
    status = api.status(ws, 20)
    forecast = chart = None
    failure = None
    try:
        forecast = api.forecast(ws, 12)
        chart = stacked_bars(forecast.months, forecast.by_register())
    except RetentionError as exc:
        failure = type(exc).__name__
    return render_template(
        "evidence.html.j2",
        status=status,
        forecast=forecast,
        chart=chart,
        failure=failure,
        registers=sorted(ws.catalog.registers),
        formats=EXPORT_FORMATS,
        policies=[b.name for b in ws.catalog.policies],
        verified=None,
    )


@blueprint.post("/evidence/export")
@require("export")
def export() -> Response:
    """A signed export as a zip: the file, its signed manifest (and a document's
    certificates), ready for `retention verify` or the verify form here."""
    from retention.evidence.export import companion_path, manifest_path

    ws = workspace()
    fmt = request.form.get("format", "")
    if fmt not in EXPORT_FORMATS:
        abort(400)
    since, until = _day("since"), _day("until")
    register = _text("register", 200) or None
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"certificates.{fmt}"
        try:
            api.export(ws, out, since, until, register, language())
        except UsageError as exc:
            _problem(exc)
            return redirect(url_for("pages.evidence"))
        buffer = BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in (out, manifest_path(out), companion_path(out)):
                if path.exists():
                    archive.write(path, path.name)
    buffer.seek(0)
    _log.info("WebExport", format=fmt)
    return send_file(
        buffer,
        as_attachment=True,
        download_name=f"certificates-{fmt}.zip",
        mimetype="application/zip",
    )


@blueprint.post("/evidence/verify")
@require("read")
def verify() -> str | tuple[str, int]:
    """Verify an uploaded export (the zip this page gives, or a JSONL/CSV export and its
    manifest) with the installation's public key."""
    ws = workspace()
    uploads = [f for f in request.files.getlist("files") if f.filename]
    if not uploads:
        abort(400)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        try:
            unpack(uploads, root)
        except Refused as refused:
            _log.info("WebUploadRefused", what=type(refused.__cause__ or refused).__name__)
            abort(400)
        targets = sorted(p for p in root.iterdir() if _is_export(p))
        if len(targets) != 1:
            return _verified({"ok": False, "faults": [g.t("web_verify_one_file")]}), 400
        try:
            report = api.verify_file(targets[0], ws.public_key_path)
        except (UsageError, ValueError) as exc:
            return _verified({"ok": False, "faults": [str(exc)]}), 400
    return _verified(
        {
            "ok": not report.faults,
            "faults": list(report.faults),
            "certificates": report.certificates,
            "checkpoints": report.checkpoints,
            "key_id": report.key_id,
            "file": targets[0].name,
        }
    )


@blueprint.post("/evidence/prove")
@require("export")
def prove() -> Response | tuple[str, int]:
    """The proof.json ``retention certificates prove`` writes, of a data subject's
    certificates or one record's: it names them by keyed reference only and verifies with
    nothing but the public key. The subject comes in the form body and is never logged."""
    from retention.errors import LedgerError
    from retention.evidence.proof import write_proof

    ws = workspace()
    subject = _text("subject", 200) or None
    policy = _text("policy", 200) or None
    key = _lines("key")
    if (subject is None) == (policy is None) or (policy is not None and not key):
        return _proof_refused(g.t("web_prove_what")), 400
    try:
        proven = api.prove(ws, subject=subject, policy=policy, key=key)
    except UsageError as exc:
        return _proof_refused(str(exc)), 404
    except LedgerError as exc:
        return _proof_refused(str(exc)), 409
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "proof.json"
        write_proof(out, proven.proof)
        body = BytesIO(out.read_bytes())
    _log.info("WebProof", certificates=proven.certificates, of=proven.what)
    return send_file(
        body, as_attachment=True, download_name="proof.json", mimetype="application/json"
    )


def _proof_refused(problem: str) -> str:
    """The evidence page saying why no proof was made (naming no subject)."""
    flash(problem, "error")
    return _verified(None)


def _is_export(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith((".manifest.json", ".certificates.jsonl")):
        return False
    return name.endswith((".jsonl", ".csv", ".html", ".pdf"))


def _verified(result: dict[str, Any] | None) -> str:
    ws = workspace()
    return render_template(
        "evidence.html.j2",
        status=api.status(ws, 20),
        forecast=None,
        chart=None,
        failure=None,
        registers=sorted(ws.catalog.registers),
        formats=EXPORT_FORMATS,
        policies=[b.name for b in ws.catalog.policies],
        verified=result,
        messages=get_flashed_messages(with_categories=True),
    )


# --------------------------------------------------------------------------------------------
# form values


def _text(name: str, limit: int) -> str:
    """A form field as text, stripped; longer than ``limit`` is a forged or broken form."""
    value = request.form.get(name, "")
    if len(value) > limit or "\x00" in value:
        abort(400)
    return value.strip()


def _lines(name: str) -> list[str]:
    """A key given one column value per line."""
    return [line.strip() for line in _text(name, 2000).splitlines() if line.strip()]


def _day(name: str) -> date | None:
    value = _text(name, 10)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(400)
