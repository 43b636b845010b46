from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from providers.services import provider_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored provider key under the first key of BYOK_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated, failed = provider_keys_rotate()
        self.stdout.write(f"Re-encrypted {rotated} key(s).")
        if failed:
            ids = ", ".join(map(str, failed))
            raise CommandError(f"{len(failed)} key(s) could not be decrypted (ids {ids})")
