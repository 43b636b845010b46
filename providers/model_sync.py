"""The providers' own figures for catalogue models: fetched and stored by `sync_models`, then
overlaid on the built-in catalogue by every process (reloaded every MODEL_SYNC_RELOAD seconds).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from providers import catalogue, registry
from providers.base import Listed, ModelLister
from providers.errors import ProviderError
from providers.models import ReportedModel

logger = logging.getLogger(__name__)

_loaded_at = -math.inf


def stale() -> bool:
    return time.monotonic() - _loaded_at >= settings.MODEL_SYNC_RELOAD


def reload(*, force: bool = False) -> None:
    """Apply the stored reports to this process's catalogue (sync ORM: call off the loop)."""
    global _loaded_at
    if not force and not stale():
        return
    try:
        rows = list(ReportedModel.objects.all())
    except DatabaseError:
        # A database not migrated yet, or down: keep the figures this process has.
        logger.warning("could not load the stored model figures", exc_info=True)
        return
    catalogue.apply_reported(
        {
            row.model_id: catalogue.Reported(
                lifecycle=row.lifecycle,  # type: ignore[arg-type]
                context_window=row.context_window,
                max_output_tokens=row.max_output_tokens,
                retires_on=row.retires_at.date() if row.retires_at else None,
            )
            for row in rows
        }
    )
    _loaded_at = time.monotonic()


async def areload() -> None:
    """`reload` from async code: a database round trip only when the figures are stale."""
    if stale():
        await database_sync_to_async(reload)()


def forget() -> None:
    """Back to the built-in catalogue until the next reload (tests)."""
    global _loaded_at
    catalogue.apply_reported({})
    _loaded_at = -math.inf


@dataclass(frozen=True, slots=True)
class SyncResult:
    provider: str
    updated: list[str]  # catalogue ids whose figures were stored
    not_listed: list[str]  # catalogue ids the provider no longer lists
    not_in_catalogue: list[str]  # provider ids the catalogue does not have


def compare(provider: str, listed: Sequence[Listed]) -> SyncResult:
    """What the provider lists against the catalogue's entries for it."""
    known = {m.id for m in catalogue.models() if m.provider == provider}
    upstream = {m.id for m in listed}
    return SyncResult(
        provider=provider,
        updated=sorted(known & upstream),
        not_listed=sorted(known - upstream),
        not_in_catalogue=sorted(upstream - known),
    )


@transaction.atomic
def store(provider: str, listed: Sequence[Listed]) -> SyncResult:
    """Save what the provider said about each catalogue model it lists, then reload."""
    result = compare(provider, listed)
    by_id = {m.id: m for m in listed}
    now = timezone.now()
    for model_id in result.updated:
        model = by_id[model_id]
        if model.lifecycle is None and model.context_window is None:
            continue  # the provider says nothing worth keeping about it (OpenAI)
        ReportedModel.objects.update_or_create(
            model_id=model_id,
            defaults={
                "provider": provider,
                "display_name": model.display_name[:200],
                "lifecycle": model.lifecycle or ReportedModel.Lifecycle.ACTIVE,
                "context_window": model.context_window,
                "max_output_tokens": model.max_output_tokens,
                "retires_at": model.retires_at,
                "synced_at": now,
            },
        )
    transaction.on_commit(lambda: reload(force=True))
    return result


class ListingFailed(Exception):
    def __init__(self, provider: str, error: ProviderError) -> None:
        name = registry.label(provider)
        super().__init__(f"{name}: {error.message}")


def configured_providers() -> list[str]:
    """Providers whose models endpoint the site can ask (it has their key)."""
    return [
        provider.name
        for provider in registry.with_model_lists()
        if registry.server_credentials(provider.name) is not None
    ]


async def fetch_listed(provider: str) -> list[Listed]:
    """Ask `provider`'s models endpoint with the site's key; ListingFailed if it fails."""
    known = provider in registry.PROVIDERS and registry.get(provider).lists_models
    credentials = registry.server_credentials(provider) if known else None
    if credentials is None:
        raise ListingFailed(provider, ProviderError("The site has no key for this provider."))
    try:
        lister = cast(ModelLister, registry.adapter(provider))  # lists_models: it lists
        return await lister.list_models(credentials)
    except ProviderError as exc:
        raise ListingFailed(provider, exc) from None
