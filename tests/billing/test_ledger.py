"""The coin ledger as a state machine: never negative, always the sum of its entries."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
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

from billing import services
from billing.models import AppendOnly, CoinAccount, LedgerEntry, LlmUsage
from billing.services import Hold, InsufficientCoins
from providers.catalogue import CATALOGUE, get_model
from providers.events import Usage

pytestmark = pytest.mark.django_db

_people = itertools.count()
PRICED = [m for m in CATALOGUE if m.retires_on is None]


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")
    references = Bundle("references")

    def __init__(self) -> None:
        super().__init__()
        self.user = get_user_model().objects.create_user(f"ledger{next(_people)}")
        self.expected = services.balance_of(user_id=self.user.pk)  # the welcome coins
        self.message_ids = itertools.count(1)

    def _adjust(self, amount: int, reference: str) -> None:
        try:
            services.coins_adjust(
                user_id=self.user.pk,
                amount=amount,
                reason="test",
                reference=reference,
                created_by_id=None,
            )
        except InsufficientCoins:
            assert self.expected < -amount
            return
        self.expected += amount

    @rule(target=references, amount=st.integers(1, 5_000), ref=st.uuids())
    def grant(self, amount: int, ref: Any) -> str:
        # The database outlives each example: references carry this machine's person.
        reference = f"grant:{self.user.pk}:{ref}"
        self._adjust(amount, reference)
        return reference

    @rule(reference=references)
    def the_same_grant_again_changes_nothing(self, reference: str) -> None:
        before = CoinAccount.objects.get(user=self.user).balance
        services.coins_adjust(
            user_id=self.user.pk,
            amount=10**6,
            reason="replay",
            reference=reference,
            created_by_id=None,
        )
        assert CoinAccount.objects.get(user=self.user).balance == before

    @rule(amount=st.integers(1, 5_000), ref=st.uuids())
    def deduct(self, amount: int, ref: Any) -> None:
        self._adjust(-amount, f"deduct:{self.user.pk}:{ref}")

    @rule(
        target=holds,
        model=st.sampled_from(PRICED),
        characters=st.integers(0, 20_000),
        max_tokens=st.integers(1, 200_000),
    )
    def hold(self, model: Any, characters: int, max_tokens: int) -> Any:
        message_id = next(self.message_ids)
        try:
            with transaction.atomic():
                hold = services.reply_hold(
                    user_id=self.user.pk,
                    model=model,
                    input_characters=characters,
                    max_tokens=min(max_tokens, model.max_output_tokens),
                    reference=f"reply:{self.user.pk}:{message_id}:hold",
                    conversation_id=1,
                    message_id=message_id,
                )
        except InsufficientCoins:
            return None
        assert 1 <= hold.max_tokens <= min(max_tokens, model.max_output_tokens)
        assert hold.amount <= self.expected
        self.expected -= hold.amount
        return (model, hold, message_id)

    @rule(
        held=consumes(holds),
        input_tokens=st.integers(0, 50_000),
        output_tokens=st.integers(0, 200_000),
    )
    def settle(self, held: Any, input_tokens: int, output_tokens: int) -> None:
        if held is None:
            return
        model, hold, message_id = held
        assert isinstance(hold, Hold)
        with transaction.atomic():
            settlement = services.reply_settle(
                user_id=self.user.pk,
                model=model,
                usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
                hold=hold,
                reference=hold.reference.removesuffix(":hold"),
                conversation_id=1,
                message_id=message_id,
            )
        self.expected += hold.amount - settlement.coins_charged
        assert settlement.balance == self.expected
        if settlement.coins_charged:
            usage = LlmUsage.objects.create(
                user=self.user, provider=model.provider, model=model.id, status="ok",
                coins_charged=settlement.coins_charged,
            )  # fmt: skip
            services.coins_refund(usage=usage, reason="refund", created_by_id=None)
            services.coins_refund(usage=usage, reason="refund again", created_by_id=None)
            self.expected += settlement.coins_charged

    @invariant()
    def balance_is_never_negative_and_equals_the_sum_of_entries(self) -> None:
        account = CoinAccount.objects.filter(user=self.user).first()
        balance = account.balance if account else 0
        total = LedgerEntry.objects.filter(account__user=self.user).aggregate(s=Sum("amount"))["s"]
        assert balance >= 0
        assert balance == (total or 0) == self.expected

    @invariant()
    def each_entry_records_the_balance_it_left(self) -> None:
        # Read in the order written: a settle writes its release and capture in one statement.
        running = 0
        for amount, after in (
            LedgerEntry.objects.filter(account__user=self.user)
            .order_by("pk")
            .values_list("amount", "balance_after")
        ):
            running += amount
            assert after == running

    @invariant()
    def no_reference_is_applied_twice(self) -> None:
        refs = list(
            LedgerEntry.objects.filter(account__user=self.user).values_list("reference", flat=True)
        )
        assert len(refs) == len(set(refs))


def test_the_ledger_state_machine() -> None:
    run_state_machine_as_test(
        LedgerMachine, settings=settings(max_examples=40, stateful_step_count=25, deadline=None)
    )


def test_ledger_entries_are_append_only(alice: Any) -> None:
    entry = LedgerEntry.objects.get(account__user=alice)
    entry.amount = 10**9
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()


def test_signup_grants_the_signup_coins_once(alice: Any, settings: Any) -> None:
    services.account_open(user_id=alice.pk)
    assert services.balance_of(user_id=alice.pk) == settings.SIGNUP_COINS
    assert LedgerEntry.objects.filter(account__user=alice, kind="grant").count() == 1


def test_reconcile_finds_a_balance_that_drifted(alice: Any) -> None:
    assert services.reconcile() == []
    CoinAccount.objects.filter(user=alice).update(balance=5)
    assert services.reconcile() == [(alice.pk, 5, 1000)]


def test_a_hold_lowers_max_tokens_to_what_the_balance_pays_for(alice: Any) -> None:
    sonnet = get_model("claude-sonnet-5-5")
    with transaction.atomic():
        hold = services.reply_hold(
            user_id=alice.pk, model=sonnet, input_characters=300, max_tokens=128_000,
            reference="h", conversation_id=1, message_id=1,
        )  # fmt: skip
    # 1000 coins = $1; $15 per million output tokens: about 66k tokens, not 128k.
    assert 60_000 < hold.max_tokens < 66_700
    assert hold.amount <= 1000


def test_too_few_coins_for_a_sensible_reply_are_refused(alice: Any) -> None:
    services.coins_adjust(
        user_id=alice.pk, amount=-998, reason="spent", reference="d", created_by_id=None
    )
    with pytest.raises(InsufficientCoins) as info, transaction.atomic():
        services.reply_hold(
            user_id=alice.pk, model=get_model("claude-opus-5-5"), input_characters=300,
            max_tokens=16_000, reference="h2", conversation_id=1, message_id=2,
        )  # fmt: skip
    assert "balance is 2 coins" in info.value.message


def test_a_reply_settled_twice_is_charged_once_and_reports_that_charge(alice: Any) -> None:
    sonnet = get_model("claude-sonnet-5-5")
    with transaction.atomic():
        hold = services.reply_hold(
            user_id=alice.pk, model=sonnet, input_characters=300, max_tokens=4_000,
            reference="r:hold", conversation_id=1, message_id=1,
        )  # fmt: skip
    usage = Usage(input_tokens=2_000, output_tokens=3_000)
    settled = []
    for _ in range(2):
        with transaction.atomic():
            settlement = services.reply_settle(
                user_id=alice.pk, model=sonnet, usage=usage, hold=hold, reference="r",
                conversation_id=1, message_id=1,
            )  # fmt: skip
            settled.append(settlement)
    first, again = settled
    assert first.coins_charged > 0
    assert again.coins_charged == first.coins_charged
    assert again.balance == first.balance == 1000 - first.coins_charged
    assert CoinAccount.objects.get(user=alice).balance == first.balance
    kinds = LedgerEntry.objects.filter(account__user=alice).values_list("kind", flat=True)
    assert sorted(kinds) == sorted(["grant", "hold", "release", "capture"])
    assert services.reconcile() == []


def test_a_reply_the_balance_covers_holds_and_settles_in_one_statement_on_the_account_each(
    alice: Any,
) -> None:
    # Every reply runs these: the account is found, locked and changed by one UPDATE each, then
    # the entries are written (the slow paths, which read the account first, are the state
    # machine's too).
    sonnet = get_model("claude-sonnet-5-5")
    with transaction.atomic(), CaptureQueriesContext(connection) as holding:
        hold = services.reply_hold(
            user_id=alice.pk, model=sonnet, input_characters=300, max_tokens=4_000,
            reference="r:hold", conversation_id=1, message_id=1,
        )  # fmt: skip
    with transaction.atomic(), CaptureQueriesContext(connection) as settling:
        settlement = services.reply_settle(
            user_id=alice.pk, model=sonnet, usage=Usage(input_tokens=200, output_tokens=300),
            hold=hold, reference="r", conversation_id=1, message_id=1,
        )  # fmt: skip

    def statements(captured: CaptureQueriesContext) -> list[str]:
        wanted = ("SELECT", "UPDATE", "INSERT")
        return [
            q["sql"].split()[0] for q in captured.captured_queries if q["sql"].startswith(wanted)
        ]

    assert statements(holding) == statements(settling) == ["UPDATE", "INSERT"]
    assert hold.max_tokens == 4_000
    assert 0 < settlement.coins_charged < hold.amount
    assert (
        settlement.balance
        == services.balance_of(user_id=alice.pk)
        == 1000 - settlement.coins_charged
    )
    entries = LedgerEntry.objects.filter(account__user=alice).order_by("pk")
    assert [(e.kind, e.balance_after) for e in entries] == [
        ("grant", 1000),
        ("hold", 1000 - hold.amount),
        ("release", 1000),
        ("capture", 1000 - settlement.coins_charged),
    ]


def test_a_hold_under_a_used_reference_fails_and_holds_nothing(alice: Any) -> None:
    def hold() -> Hold:
        with transaction.atomic():
            return services.reply_hold(
                user_id=alice.pk, model=get_model("claude-sonnet-5-5"), input_characters=300,
                max_tokens=1_000, reference="reply:1:hold", conversation_id=1, message_id=1,
            )  # fmt: skip

    first = hold()
    with pytest.raises(IntegrityError):
        hold()
    assert services.balance_of(user_id=alice.pk) == 1000 - first.amount
    assert LedgerEntry.objects.filter(reference="reply:1:hold").count() == 1


def test_holds_never_released_are_listed_once_old(alice: Any) -> None:
    """A hold whose reply or title was never settled keeps coins from its person: listed (and
    `reconcile_coins` fails) once older than any reply can run; settled or live ones are not."""
    import datetime as dt
    from io import StringIO

    import pytest
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.db import transaction
    from django.utils import timezone

    from billing.models import LedgerEntry
    from providers.catalogue import get_model
    from providers.events import Usage

    model = get_model("claude-sonnet-5-5")

    def hold(reference: str) -> services.Hold:
        with transaction.atomic():
            return services.reply_hold(
                user_id=alice.pk, model=model, input_characters=30, max_tokens=500,
                reference=f"{reference}:hold", conversation_id=1, message_id=None,
            )  # fmt: skip

    hold("title:1:lost")
    settled = hold("title:1:settled")
    with transaction.atomic():
        services.reply_settle(
            user_id=alice.pk, model=model, usage=Usage(output_tokens=5), hold=settled,
            reference="title:1:settled", conversation_id=1, message_id=None,
        )  # fmt: skip
    hold("reply:9:live")
    long_ago = timezone.now() - dt.timedelta(days=2)
    LedgerEntry.objects.filter(reference__startswith="title:1:").update(created_at=long_ago)
    lost = services.open_holds(older_than=dt.timedelta(days=1))
    assert [h.reference for h in lost] == ["title:1:lost:hold"]
    out = StringIO()
    with pytest.raises(CommandError, match="1 hold"):
        call_command("reconcile_coins", stdout=out)
    assert "title:1:lost:hold" in out.getvalue()
