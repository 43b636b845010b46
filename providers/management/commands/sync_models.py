from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers import model_sync, registry


class Command(BaseCommand):
    help = (
        "Refresh the catalogue's limits and lifecycle from each configured provider's models "
        "endpoint and store them (every process picks them up within MODEL_SYNC_RELOAD)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--provider",
            choices=[p.name for p in registry.with_model_lists()],
            help="one provider only",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        only = options["provider"]
        providers = [p for p in model_sync.configured_providers() if only in (None, p)]
        if not providers:
            asked = [registry.get(only)] if only else registry.with_model_lists()
            raise CommandError(f"No provider to ask: set {registry.key_variables(asked)}.")
        failures = []
        for provider in providers:
            name = registry.label(provider)
            try:
                listed = asyncio.run(model_sync.fetch_listed(provider))
            except model_sync.ListingFailed as exc:
                failures.append(str(exc))
                continue
            result = model_sync.store(provider, listed)
            self.stdout.write(f"{name}: stored figures for {len(result.updated)} model(s).")
            for model_id in result.not_listed:
                self.stdout.write(f"  {model_id}: in the catalogue, no longer listed by {name}")
            if result.not_in_catalogue:
                self.stdout.write(
                    f"  {len(result.not_in_catalogue)} listed model(s) not in the catalogue "
                    "(see list_models --live)"
                )
        if failures:
            raise CommandError("Could not list models: " + "; ".join(failures))
