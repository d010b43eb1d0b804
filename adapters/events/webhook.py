"""The webhook sink: an HTTP POST of the structured CloudEvent, signed with HMAC-SHA256.

The signature header is ``X-Xieshang-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256 with the shared secret over ``<t>.<body>`` (the timestamp, a dot, the raw body
bytes). Receivers check it with :func:`verify` or the snippet in ``docs/webhooks.md``.

Answers: 2xx is delivered; 408, 429, 5xx, other codes and network errors are retried; any other
4xx is dead-lettered at once (the receiver will not accept this event however often we send it).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import httpx

from xieshang import Usage

from .sinks import DeliveryFailed, encode, redacted_url

__all__ = ["CONTENT_TYPE", "SIGNATURE_HEADER", "WebhookSink", "sign", "verify"]

CONTENT_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Xieshang-Signature"
_RETRYABLE_4XX = frozenset({408, 429})


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the signature header for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance: float = 300, now: float | None = None
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made less than ``tolerance`` s ago."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSink:
    """POSTs each event to ``url``.

    Args:
        url: the receiver's URL. The sink is named ``webhook:<url>`` (without user info).
        secret: the shared HMAC secret.
        timeout: seconds for connecting and for the whole answer.
        clock: unix time for the signature timestamp; ``time.time`` by default.
        transport: an httpx transport, for tests.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not secret:
            raise Usage(
                "a webhook needs a non-empty secret to sign its requests", "secret", url=url
            )
        self.url = url
        self.name = f"webhook:{redacted_url(url)}"
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "xieshang-webhook/1"},
        )

    def deliver(self, event: dict[str, Any]) -> None:
        body = encode(event)
        headers = {
            "Content-Type": CONTENT_TYPE,
            SIGNATURE_HEADER: sign(self._secret, body, int(self._clock())),
        }
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as e:
            raise DeliveryFailed(True, f"{self.name}: timed out ({type(e).__name__})") from e
        except httpx.HTTPError as e:
            raise DeliveryFailed(True, f"{self.name}: {type(e).__name__}: {e}") from e
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = f"{self.name}: HTTP {status} {response.reason_phrase}".rstrip()
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            raise DeliveryFailed(False, reason)
        raise DeliveryFailed(True, reason, retry_after=_retry_after(response))

    def close(self) -> None:
        self._client.close()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None
