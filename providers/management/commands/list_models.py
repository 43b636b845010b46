from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers import model_sync, registry
from providers.base import Listed
from providers.catalogue import models
from providers.resolution import describe

_COLUMNS = (
    "id",
    "provider",
    "name",
    "context",
    "max output",
    "$/Mtok in",
    "$/Mtok out",
    "lifecycle",
    "available",
)


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    lifecycle = row["lifecycle"]
    if row["retires_on"] and lifecycle != "active":
        lifecycle = f"{lifecycle} ({row['retires_on']})"
    if row.get("listed_upstream") is False:
        lifecycle += " [not listed upstream]"
    return (
        row["id"],
        row["provider"],
        row["display_name"],
        f"{row['context_window']:,}",
        f"{row['max_output_tokens']:,}",
        f"{row['input_price_per_mtok']:g}",
        f"{row['output_price_per_mtok']:g}",
        lifecycle,
        "yes" if row["available"] else "no",
    )


class Command(BaseCommand):
    help = "List the model catalogue: limits, prices, lifecycle and availability with server keys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--provider", choices=sorted(registry.PROVIDERS), help="one provider only"
        )
        parser.add_argument(
            "--available", action="store_true", help="only models usable with the server's keys"
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument(
            "--live",
            action="store_true",
            help="also ask each configured provider's models endpoint, and mark the differences",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        only = options["provider"]
        # --live first asks the providers and stores what they say (as sync_models does), so
        # the table shows the live figures.
        results = self._sync_live(only) if options["live"] else {}
        model_sync.reload(force=True)
        today = dt.date.today()
        rows = [describe(m, today=today) for m in models() if only in (None, m.provider)]
        for provider, result in results.items():
            gone = set(result.not_listed)
            for row in rows:
                if row["provider"] == provider:
                    row["listed_upstream"] = row["id"] not in gone
        if options["available"]:
            rows = [r for r in rows if r["available"]]
        missing = {provider: r.not_in_catalogue for provider, r in results.items()}
        if options["json"]:
            payload: dict[str, Any] = {"models": rows}
            if options["live"]:
                payload["not_in_catalogue"] = missing
            self.stdout.write(json.dumps(payload, indent=2))
            return
        self._table(rows)
        for provider, ids in missing.items():
            if ids:
                name = registry.label(provider)
                self.stdout.write(f"\n{name} lists {len(ids)} model(s) not in the catalogue:")
                for model_id in ids:
                    self.stdout.write(f"  {model_id}")

    def _sync_live(self, only: str | None) -> dict[str, model_sync.SyncResult]:
        if only is not None and not registry.get(only).lists_models:
            raise CommandError(
                f"{registry.label(only)} has no models endpoint to ask (its models are local)."
            )
        providers = [p for p in model_sync.configured_providers() if only in (None, p)]
        if not providers:
            asked = [registry.get(only)] if only else registry.with_model_lists()
            raise CommandError(
                "--live needs a server key for the provider(s) to ask: set "
                f"{registry.key_variables(asked)}."
            )
        listed: dict[str, list[Listed]] = {}
        for provider in providers:
            try:
                listed[provider] = asyncio.run(model_sync.fetch_listed(provider))
            except model_sync.ListingFailed as exc:
                # Nothing is stored unless every provider answered.
                raise CommandError(f"Could not list models: {exc}") from None
        return {provider: model_sync.store(provider, found) for provider, found in listed.items()}

    def _table(self, rows: list[dict[str, Any]]) -> None:
        cells = [_COLUMNS, *(_cells(r) for r in rows)]
        widths = [max(len(c[i]) for c in cells) for i in range(len(_COLUMNS))]
        for n, line in enumerate(cells):
            padded = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            self.stdout.write("  ".join(padded).rstrip())
            if n == 0:
                self.stdout.write("  ".join("-" * w for w in widths))
        if not rows:
            self.stdout.write("(no models match)")
