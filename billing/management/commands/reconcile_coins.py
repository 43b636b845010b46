from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing import services


class Command(BaseCommand):
    help = "Check that every balance equals the sum of its ledger entries."

    def handle(self, *args: Any, **options: Any) -> None:
        mismatches = services.reconcile()
        for user_id, balance, total in mismatches:
            self.stdout.write(f"user {user_id}: balance {balance}, ledger sum {total}")
        if mismatches:
            raise CommandError(f"{len(mismatches)} account(s) do not reconcile")
        self.stdout.write("All balances equal the sum of their entries.")
