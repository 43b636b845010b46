from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import services
from billing.forms import MAX_ADJUSTMENT


class Command(BaseCommand):
    help = "Grant coins to a person (written to their ledger)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("amount", type=int)
        parser.add_argument("--reason", required=True)
        parser.add_argument(
            "--reference", help="makes the grant idempotent: the same reference applies once"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        amount = options["amount"]
        if not 1 <= amount <= MAX_ADJUSTMENT:
            raise CommandError(f"amount must be between 1 and {MAX_ADJUSTMENT}")
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no such person: {options['username']}")
        entry = services.coins_adjust(
            user_id=user.pk,
            amount=amount,
            reason=options["reason"],
            reference=f"command:{options['reference'] or uuid.uuid4()}",
            created_by_id=None,
        )
        self.stdout.write(f"{user}: balance {entry.balance_after} coins")
