"""The usage page's lines are the ledger's movements: on random histories of replies, titles,
retries, own-key calls, grants, deductions and refunds, their coins add up to the balance (and
to the sum of the ledger's entries), each reply's or title's line is what its captures took,
and a reply still being written shows as held. Runs on SQLite and on PostgreSQL (CI)."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from billing import services, usage
from billing.models import LedgerEntry, LlmUsage
from billing.services import InsufficientCoins
from providers.catalogue import CATALOGUE
from providers.events import Usage

pytestmark = pytest.mark.django_db

_people = itertools.count()
PRICED = [m for m in CATALOGUE if m.retires_on is None]


class UsageLinesMachine(RuleBasedStateMachine):
    running = Bundle("running")
    calls = Bundle("calls")

    def __init__(self) -> None:
        super().__init__()
        self.user = get_user_model().objects.create_user(f"usage{next(_people)}")
        self.message_ids = itertools.count(1)
        self.references = itertools.count(1)
        # The message of the latest call (a retry is another call for it).
        self.last = 0

    def _reference(self, kind: str) -> str:
        return f"{kind}:{self.user.pk}:{next(self.references)}"

    @rule(amount=st.integers(-3_000, 3_000).filter(bool))
    def grant_or_deduct(self, amount: int) -> None:
        with contextlib.suppress(InsufficientCoins):  # a deduction beyond the balance
            services.coins_adjust(
                user_id=self.user.pk,
                amount=amount,
                reason="=SUM(A1)" if amount < 0 else "Beta tester",
                reference=self._reference("adjust"),
                created_by_id=None,
            )

    @rule(
        target=running,
        model=st.sampled_from(PRICED),
        purpose=st.sampled_from(["reply", "title"]),
        byok=st.booleans(),
        characters=st.integers(0, 40_000),
        max_tokens=st.integers(1, 50_000),
        again=st.booleans(),
    )
    def start(
        self, model: Any, purpose: str, byok: bool, characters: int, max_tokens: int, again: bool
    ) -> Any:
        """A reply or title call begins: its coins held (none with the person's own key). With
        `again`, it is another call for the last message (a retry)."""
        message_id = self.last if again and self.last else next(self.message_ids)
        self.last = message_id
        reference = f"{purpose}:{self.user.pk}:{message_id}:{next(self.references)}"
        if byok:
            return (model, purpose, None, reference, message_id, True)
        try:
            with transaction.atomic():
                hold = services.reply_hold(
                    user_id=self.user.pk,
                    model=model,
                    input_characters=characters,
                    max_tokens=min(max_tokens, model.max_output_tokens),
                    reference=f"{reference}:hold",
                    conversation_id=7,
                    message_id=message_id,
                    purpose=purpose.capitalize(),
                )
        except InsufficientCoins:
            return None
        return (model, purpose, hold, reference, message_id, False)

    @rule(
        target=calls,
        begun=consumes(running),
        input_tokens=st.integers(0, 60_000),
        output_tokens=st.integers(0, 60_000),
        failed=st.booleans(),
    )
    def settle(self, begun: Any, input_tokens: int, output_tokens: int, failed: bool) -> Any:
        """It ends: billed for what it used (nothing if it failed before any output), and
        recorded, in one transaction, as chat/services.py and chat/titles.py do."""
        if begun is None:
            return None
        model, purpose, hold, reference, message_id, byok = begun
        used = Usage() if failed else Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        with transaction.atomic():
            settlement = services.reply_settle(
                user_id=self.user.pk,
                model=model,
                usage=used,
                hold=hold,
                reference=reference,
                conversation_id=7,
                message_id=message_id,
                purpose=purpose.capitalize(),
            )
            return services.usage_record(
                usage=used,
                user_id=self.user.pk,
                conversation_id=7,
                message_id=message_id,
                provider=model.provider,
                model=model.id,
                byok=byok,
                purpose=purpose,
                status="error" if failed else "ok",
                cost_usd=settlement.cost_usd,
                coins_charged=settlement.coins_charged,
            )

    @rule(call=calls)
    def refund(self, call: Any) -> None:
        """An admin refunds a call (twice is once)."""
        if call is None:
            return
        services.coins_refund(
            usage=LlmUsage.objects.get(pk=call), reason="Sorry", created_by_id=None
        )

    def _lines(self) -> list[usage.Line]:
        return [usage.line_of(row) for row in usage.lines(self.user.pk)]

    @invariant()
    def the_lines_add_up_to_the_balance_and_the_ledger(self) -> None:
        lines = self._lines()
        balance = services.balance_of(user_id=self.user.pk)
        entries = LedgerEntry.objects.filter(account__user_id=self.user.pk)
        assert sum(line.coins for line in lines) - usage.held(self.user.pk) == balance
        assert entries.aggregate(total=Sum("amount"))["total"] == balance

    @invariant()
    def each_call_line_is_what_its_captures_took(self) -> None:
        captures = LedgerEntry.objects.filter(
            account__user_id=self.user.pk, kind=LedgerEntry.Kind.CAPTURE
        )
        for line in self._lines():
            if line.kind not in ("reply", "title"):
                continue
            taken = captures.filter(
                message_id=line.message_id, reference__startswith=f"{line.kind}:"
            ).aggregate(total=Sum("amount"))["total"]
            assert line.coins == (taken or 0)
            calls = LlmUsage.objects.filter(
                user_id=self.user.pk, message_id=line.message_id, purpose=line.kind
            )
            assert line.calls == calls.count()
            assert line.input_tokens == sum(calls.values_list("input_tokens", flat=True))


def test_usage_lines_add_up_to_the_ledger_on_random_histories() -> None:
    run_state_machine_as_test(
        UsageLinesMachine,
        settings=settings(max_examples=40, stateful_step_count=25, deadline=None),
    )


def test_a_person_sees_only_their_own_lines(alice: Any, bob: Any) -> None:
    LlmUsage.objects.create(
        user=bob, message_id=1, provider="demo", model="demo", status="ok", coins_charged=4
    )
    kinds = [usage.line_of(row).kind for row in usage.lines(alice.pk)]
    assert kinds == ["grant"]  # alice's welcome coins only
