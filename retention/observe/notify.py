"""Delivering notices: e-mail over SMTP and signed webhooks, retried, never fatal.

A notifier that fails is retried (``notify.attempts`` tries, waiting ``backoff_seconds``
and doubling), then logged as ``NotificationFailed`` and counted in
``retention_notifications_total{outcome="failed"}``; :func:`deliver` never raises, so a mail
server that is down cannot fail the run it reports on. Messages are not kept in an outbox:
one given up on is lost, which the log line and the metric say.

Webhooks are signed as Stripe signs its own: the headers ``Retention-Timestamp`` (Unix
seconds) and ``Retention-Signature: v1=<hex>``, where ``<hex>`` is HMAC-SHA256 with the shared
secret over ``"<timestamp>.<body>"``. A receiver recomputes it over the raw body, compares in
constant time and refuses a timestamp more than a few minutes old (docs/monitoring.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from retention.catalog.model import FOR_RECORDS_MANAGERS, EmailChannel, Notify, Webhook
from retention.logs import get_logger

if TYPE_CHECKING:
    from retention.observe.metrics import Metrics
    from retention.observe.notices import Notice

__all__ = ["deliver", "send_email", "send_webhook", "sign", "verify_signature"]

_log = get_logger("retention.observe")

SIGNATURE_HEADER = "Retention-Signature"
TIMESTAMP_HEADER = "Retention-Timestamp"
EVENT_HEADER = "Retention-Event"
DELIVERY_HEADER = "Retention-Delivery"


class NotifierError(Exception):
    """A channel could not deliver (after which it is retried)."""


def recipients(channel: EmailChannel, notice: Notice) -> list[str]:
    """Records managers of the notice's registers for plan and hold events (``"*"`` for a
    register not listed, and for a notice about no register in particular); ``to`` for the
    rest."""
    if notice.event not in FOR_RECORDS_MANAGERS:
        return list(channel.to)
    named = channel.records_managers
    found: list[str] = []
    for register in notice.registers or ("*",):
        found.extend(named.get(register, named.get("*", ())))
    if not notice.registers:
        for addresses in named.values():
            found.extend(addresses)
    return list(dict.fromkeys(found))


def email_message(channel: EmailChannel, notice: Notice, to: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = notice.subject
    message["From"] = channel.sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=channel.sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message["X-Retention-Event"] = notice.event
    message.set_content(notice.text + "\n")
    message["Content-Language"] = notice.language  # after set_content, which clears Content-*
    return message


def send_email(channel: EmailChannel, notice: Notice, environ: Mapping[str, str]) -> list[str]:
    """Send ``notice`` to its recipients; returns them (none: nothing sent)."""
    to = recipients(channel, notice)
    if not to:
        return []
    context = ssl.create_default_context(cafile=channel.ca_file)
    smtp: smtplib.SMTP
    if channel.security == "tls":
        smtp = smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout_seconds,
                                context=context)  # fmt: skip
    else:
        smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds)
    with smtp:
        smtp.ehlo()
        if channel.security == "starttls":
            smtp.starttls(context=context)  # SMTPNotSupportedError: never sent in the clear
            smtp.ehlo()
        if channel.username_env and channel.password_env:
            user, password = environ.get(channel.username_env), environ.get(channel.password_env)
            if not user or not password:
                raise NotifierError(f"{channel.username_env} or {channel.password_env} is not set")
            smtp.login(user, password)
        smtp.send_message(email_message(channel, notice, to))
    return to


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``Retention-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def verify_signature(
    secret: bytes, headers: Mapping[str, str], body: bytes, *, tolerance: int = 300,
    now: float | None = None,
) -> bool:  # fmt: skip
    """What a receiver does: the signature matches and the timestamp is recent."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), given)


def send_webhook(
    hook: Webhook, notice: Notice, environ: Mapping[str, str], delivery: str | None = None
) -> str:
    """POST the notice as JSON, signed; returns the delivery id (the same on every retry of
    one notice, so a receiver can drop a repeat)."""
    secret = environ.get(hook.secret_env, "")
    if not secret:
        raise NotifierError(f"{hook.secret_env} (the webhook's secret_env) is not set")
    delivery = delivery or str(uuid.uuid4())
    body = json.dumps(
        {"event": notice.event, "delivery": delivery,
         "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
         "language": notice.language, "subject": notice.subject, "data": notice.data},
        ensure_ascii=False, sort_keys=True,
    ).encode("utf-8")  # fmt: skip
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked to be http(s)
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "retention-webhook/1",
            EVENT_HEADER: notice.event,
            DELIVERY_HEADER: delivery,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret.encode("utf-8"), timestamp, body),
        },
    )
    with urllib.request.urlopen(request, timeout=hook.timeout_seconds) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise NotifierError(f"the receiver answered {response.status}")
    return delivery


def deliver(
    settings: Notify | None,
    notice: Notice,
    environ: Mapping[str, str],
    metrics: Metrics | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, bool]:
    """Send ``notice`` on every channel that takes its event; returns channel → delivered.
    Never raises: a failure is retried, then logged and counted."""
    if settings is None:
        return {}
    sent: dict[str, bool] = {}
    channels: list[tuple[str, Callable[[], object]]] = []
    email = settings.email
    if email is not None and notice.event in email.events:
        channels.append(("email", lambda: send_email(email, notice, environ)))
    for index, hook in enumerate(settings.webhooks):
        if notice.event in hook.events:
            channels.append((f"webhook{index}", _bound(hook, notice, environ)))
    for channel, send in channels:
        sent[channel] = _with_retries(settings, channel, notice, send, metrics, sleep)
    return sent


def _bound(hook: Webhook, notice: Notice, environ: Mapping[str, str]) -> Callable[[], object]:
    delivery = str(uuid.uuid4())
    return lambda: send_webhook(hook, notice, environ, delivery)


def _with_retries(
    settings: Notify,
    channel: str,
    notice: Notice,
    send: Callable[[], object],
    metrics: Metrics | None,
    sleep: Callable[[float], None],
) -> bool:
    kind = "webhook" if channel.startswith("webhook") else channel
    wait = settings.backoff_seconds
    for attempt in range(1, settings.attempts + 1):
        try:
            result = send()
        except Exception as exc:  # noqa: BLE001 - a notifier never fails the run it reports on
            # Only the kind of failure: a server's message could quote an address.
            _log.warning("NotificationRetry" if attempt < settings.attempts
                         else "NotificationFailed", channel=channel, notice=notice.event,
                         attempt=attempt, error=type(exc).__name__)  # fmt: skip
            if attempt < settings.attempts:
                sleep(wait)
                wait *= 2
            continue
        if result == []:
            return True  # nobody to tell on this channel: nothing failed, nothing sent
        _log.info("NotificationSent", channel=channel, notice=notice.event, attempt=attempt)
        if metrics is not None:
            metrics.notifications.labels(kind, notice.event, "sent").inc()
        return True
    if metrics is not None:
        metrics.notifications.labels(kind, notice.event, "failed").inc()
    return False
