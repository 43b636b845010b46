"""Check the books: every balance equals the sum of its ledger entries, and every reply that
ended was billed (a reply whose settle failed is `unsettled` until a sweep bills it)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import services as billing
from chat.maintenance import replies_settle_unsettled
from chat.models import Message


class Command(BaseCommand):
    help = (
        "Check that every balance equals the sum of its ledger entries; list replies that "
        "ended without being billed (--settle bills them now) and holds never released."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--settle",
            action="store_true",
            help="bill the unsettled replies now (every worker's sweep also does, every "
            "REPLY_SWEEP_INTERVAL seconds)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["settle"]:
            settled = replies_settle_unsettled()
            if settled:
                self.stdout.write(f"Settled {len(settled)} repl(ies): {settled}")
        mismatches = billing.reconcile()
        for user_id, balance, total in mismatches:
            self.stdout.write(f"user {user_id}: balance {balance}, ledger sum {total}")
        unsettled = Message.objects.filter(unsettled=True).select_related("conversation")
        for reply in unsettled.order_by("pk"):
            self.stdout.write(
                f"reply {reply.pk} (conversation {reply.conversation_id}, user "
                f"{reply.conversation.owner_id}, {reply.status}, {reply.model}): not billed yet"
            )
        # A reply runs for at most REPLY_MAX_SECONDS; a hold open much longer was never settled.
        stale = dt.timedelta(seconds=2 * settings.REPLY_MAX_SECONDS) + dt.timedelta(hours=1)
        holds = billing.open_holds(older_than=stale)
        for hold in holds:
            self.stdout.write(
                f"hold {hold.reference} ({-hold.amount} coins of user {hold.account.user_id}, "
                f"{hold.created_at:%Y-%m-%d %H:%M}): never released"
            )
        problems = []
        if mismatches:
            problems.append(f"{len(mismatches)} account(s) do not reconcile")
        if count := len(unsettled):
            problems.append(f"{count} repl(ies) not billed (run with --settle to bill them)")
        if holds:
            problems.append(f"{len(holds)} hold(s) never released")
        if problems:
            raise CommandError("; ".join(problems))
        self.stdout.write("All balances equal the sum of their entries; every reply is billed.")
