"""Which sinks a deployment delivers to and how the relay retries: ``XIESHANG_*`` settings.

Read from the environment (prefix ``XIESHANG_``) and, below it, from the TOML file named by
``XIESHANG_SETTINGS_FILE`` (top-level keys, the field names below). Keyword arguments win
over both. Lists in the environment are comma-separated or JSON.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from xieshang.adapters.settings import CheckedSettings

from .sinks import EventSink

__all__ = ["EventSettings", "build_sinks"]


class EventSettings(CheckedSettings):
    """The event sinks and the relay's retry policy.

    Sinks: ``XIESHANG_WEBHOOK_URLS`` (one webhook sink per URL) signed with
    ``XIESHANG_WEBHOOK_SECRET``; ``XIESHANG_REDIS_URL`` with ``XIESHANG_REDIS_STREAM_MODE``
    (``per_workflow`` or ``single``); ``XIESHANG_JSONL_PATH``. Retries: attempt *n* waits
    ``min(retry_cap, retry_base * 2**(n-1))`` seconds, between half and all of it (jitter);
    after ``max_attempts`` failed attempts the delivery is dead.

    Raises:
        SettingsError: a setting is invalid; ``errors`` names each one.
    """

    _what: ClassVar[str] = "event settings"

    model_config = SettingsConfigDict(env_prefix="XIESHANG_", extra="ignore", frozen=True)

    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_secret: SecretStr | None = None
    webhook_timeout: float = Field(default=10.0, gt=0)
    redis_url: str | None = None
    redis_stream_mode: Literal["per_workflow", "single"] = "per_workflow"
    redis_stream_prefix: str = Field(default="xieshang", min_length=1)
    redis_maxlen: int | None = Field(default=None, gt=0)
    jsonl_path: Path | None = None
    retry_base: float = Field(default=1.0, gt=0, description="seconds before the 2nd attempt")
    retry_cap: float = Field(default=300.0, gt=0, description="the longest wait, seconds")
    max_attempts: int = Field(default=10, ge=1)
    batch_size: int = Field(default=500, ge=1, description="pending rows read per pass and sink")
    commit_every: int = Field(
        default=250, ge=1, description="deliveries recorded per transaction (redelivered on crash)"
    )
    poll_interval: float = Field(default=1.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings, file_secret_settings]
        path = os.environ.get("XIESHANG_SETTINGS_FILE")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [u.strip() for u in text.split(",") if u.strip()]
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"a webhook URL must start with http:// or https:// (got {url!r})")
        return value

    @model_validator(mode="after")
    def _secret_for_webhooks(self) -> EventSettings:
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if self.webhook_urls and not secret:
            raise ValueError("XIESHANG_WEBHOOK_SECRET is required with XIESHANG_WEBHOOK_URLS")
        if self.retry_cap < self.retry_base:
            raise ValueError(
                f"retry_cap ({self.retry_cap}) must not be below retry_base ({self.retry_base})"
            )
        return self


def build_sinks(settings: EventSettings) -> list[EventSink]:
    """The sinks ``settings`` configure: webhooks (in URL order), then Redis, then JSON Lines."""
    from .redis_stream import RedisStreamSink
    from .sinks import JsonLinesSink
    from .webhook import WebhookSink

    sinks: list[EventSink] = []
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    for url in settings.webhook_urls:
        sinks.append(WebhookSink(url, secret, timeout=settings.webhook_timeout))
    if settings.redis_url:
        sinks.append(
            RedisStreamSink(
                settings.redis_url,
                mode=settings.redis_stream_mode,
                prefix=settings.redis_stream_prefix,
                maxlen=settings.redis_maxlen,
            )
        )
    if settings.jsonl_path is not None:
        sinks.append(JsonLinesSink(settings.jsonl_path))
    return sinks
