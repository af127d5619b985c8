"""A bank client's webhook endpoint: its URL (checked) and its signing secret (shown
once, stored encrypted)."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from qinqing.audit.actor import Actor
from qinqing.audit.service import record
from qinqing.auth.models import ApiClient
from qinqing.banks.models import WebhookEndpoint
from qinqing.kit import netaddr
from qinqing.kit.errors import DomainError
from qinqing.runtime import Runtime

SECRET_KIND = "webhook_secret"  # noqa: S105 - a vault field kind, not a secret
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (Standard Webhooks' secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str) -> str:
    """https to a public host, or http(s) to a loopback address (a receiver on the same
    machine); ``WEBHOOK_URL_INVALID`` otherwise, and ``WEBHOOK_URL_NOT_PUBLIC`` for
    https to a private, shared, link-local (169.254.169.254: cloud metadata),
    reserved or multicast address, however written (``10.1``, ``0x7f.1``,
    ``[::ffff:10.0.0.5]``), or to a single-label, metadata or private-use name
    (``*.internal``, ``*.local``). 422 either way; what a name resolves to is
    checked where the URL is set in production (``qinqing clients``)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise DomainError("WEBHOOK_URL_INVALID", 422) from None
    if len(url) > 2048 or not host or parts.username or parts.password:
        raise DomainError("WEBHOOK_URL_INVALID", 422)
    if parts.scheme not in ("https", "http"):
        raise DomainError("WEBHOOK_URL_INVALID", 422)
    if netaddr.loopback_host(host):
        return url
    if parts.scheme == "http":
        raise DomainError("WEBHOOK_URL_INVALID", 422)
    if not netaddr.public_host(host):
        raise DomainError("WEBHOOK_URL_NOT_PUBLIC", 422)
    return url


def set_endpoint(
    session: Session,
    rt: Runtime,
    client: ApiClient,
    url: str,
    *,
    actor: Actor,
    secret: str | None = None,
) -> str:
    """Give a bank client a webhook URL and a new signing secret; the secret is
    returned this once and stored only encrypted (vault kind ``webhook_secret``)."""
    if client.kind != "bank":
        raise DomainError("WEBHOOK_ONLY_FOR_BANKS", 422)
    url = check_url(url)
    secret = secret or new_secret()
    now = rt.clock.now()
    endpoint = session.get(WebhookEndpoint, client.id)
    if endpoint is None:
        endpoint = WebhookEndpoint(client_id=client.id, created_at=now)
        session.add(endpoint)
    endpoint.url = url
    endpoint.secret_cipher = rt.vault.encrypt(SECRET_KIND, secret)
    endpoint.enabled = True
    session.flush()
    record(
        session,
        actor=actor,
        action="webhook.endpoint.set",
        subject_kind="api_client",
        subject_id=client.id,
        at=now,
        details={"scheme": urlsplit(url).scheme},
    )
    return secret
