"""Coin movements. Each runs inside the caller's transaction (or its own), with the account row
locked, a conditional update that cannot overdraw, and an entry whose reference is unique."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Replace
from django.utils import timezone

from billing import pricing
from billing.models import CoinAccount, LedgerEntry, LlmUsage
from chatsite import sql
from providers.catalogue import ModelInfo
from providers.events import Usage


class InsufficientCoins(Exception):
    def __init__(self, message: str, *, balance: int) -> None:
        super().__init__(message)
        self.message = message
        self.balance = balance


# What a person can do when their coins run out (the site sells none): shown with the refusal
# and beside a low balance.
NO_COINS_NEXT = (
    "Add your own provider key on the Your keys page (its replies cost no coins), "
    "or ask the site's administrator for more coins."
)


@dataclass(frozen=True, slots=True)
class Hold:
    reference: str
    amount: int  # coins held (0 for BYOK)
    max_tokens: int


@dataclass(frozen=True, slots=True)
class Settlement:
    coins_charged: int
    balance: int
    cost_usd: Decimal


_TABLE = CoinAccount._meta.db_table
# One statement changes the balance and reads the new one (PostgreSQL and SQLite >= 3.35); a
# debit only where the balance covers it.
_CREDIT = (
    f"UPDATE {_TABLE} SET balance = balance + %s, updated_at = %s WHERE id = %s RETURNING balance"
)
_DEBIT = (
    f"UPDATE {_TABLE} SET balance = balance + %s, updated_at = %s "
    "WHERE id = %s AND balance >= %s RETURNING balance"
)
# The ledger's statements are SQL for their meaning (chatsite/sql.py): each changes the balance
# only where it covers the change and reads the new one in the same statement.
# A reply's hold and its settle, when the balance covers them, in one statement each that finds
# the account, locks it and changes it: the person's row is read first only when it does not
# (then the hold is lowered, or the charge capped, to what the balance allows). A settle also
# changes nothing if the reply was settled before (its release is in the ledger); one racing
# another settle of the same reply fails on the ledger's unique reference, its transaction undone.
_HOLD_ALL = (
    f"UPDATE {_TABLE} SET balance = balance - %s, updated_at = %s "
    "WHERE user_id = %s AND balance >= %s RETURNING id, balance"
)
_SETTLE_ALL = (
    f"UPDATE {_TABLE} SET balance = balance + %s, updated_at = %s "
    "WHERE user_id = %s AND balance >= %s "
    f"AND NOT EXISTS (SELECT 1 FROM {LedgerEntry._meta.db_table} WHERE reference = %s) "
    "RETURNING id, balance"
)


def _locked_account(user_id: int) -> CoinAccount:
    """The person's account, locked until the transaction ends (made on first use)."""
    accounts = CoinAccount.objects.select_for_update().only("id", "user_id", "balance")
    account = accounts.filter(user_id=user_id).first()
    if account is None:
        CoinAccount.objects.get_or_create(user_id=user_id)
        account = accounts.get(user_id=user_id)
    return account


def _add(account: CoinAccount, amount: int) -> int | None:
    """Add `amount` to the balance; the new balance, or None if a debit would overdraw."""
    params = [amount, sql.now(), account.pk]
    row = sql.one(_DEBIT, [*params, -amount]) if amount < 0 else sql.one(_CREDIT, params)
    return None if row is None else int(row[0])


def _move(
    account: CoinAccount,
    *,
    kind: str,
    amount: int,
    reference: str,
    reason: str,
    conversation_id: int | None = None,
    message_id: int | None = None,
    created_by_id: int | None = None,
) -> LedgerEntry:
    """Apply one movement to a locked account; an already applied reference is returned as is
    (its `balance_after` is then that of its time). Keeps `account.balance` current."""
    existing = LedgerEntry.objects.filter(reference=reference).first()
    if existing is not None:
        return existing
    balance_after = _add(account, amount)
    if balance_after is None:
        balance = CoinAccount.objects.values_list("balance", flat=True).get(pk=account.pk)
        raise InsufficientCoins(
            f"Not enough coins: this needs {-amount} and the balance is {balance}.",
            balance=balance,
        )
    account.balance = balance_after
    return LedgerEntry.objects.create(
        account_id=account.pk,
        kind=kind,
        amount=amount,
        balance_after=balance_after,
        reference=reference,
        reason=reason[:200],
        conversation_id=conversation_id,
        message_id=message_id,
        created_by_id=created_by_id,
    )


def balance_of(*, user_id: int) -> int:
    return int(
        CoinAccount.objects.filter(user_id=user_id).values_list("balance", flat=True).first() or 0
    )


@transaction.atomic
def account_open(*, user_id: int) -> LedgerEntry | None:
    """Create a person's account with the signup grant (once, whatever calls it)."""
    if settings.SIGNUP_COINS <= 0:
        _locked_account(user_id)
        return None
    return _move(
        _locked_account(user_id),
        kind=LedgerEntry.Kind.GRANT,
        amount=settings.SIGNUP_COINS,
        reference=f"signup:{user_id}",
        reason="Welcome coins",
    )


@transaction.atomic
def coins_adjust(
    *, user_id: int, amount: int, reason: str, reference: str, created_by_id: int | None
) -> LedgerEntry:
    """An admin's grant (positive) or deduction (negative); a deduction never goes below zero."""
    if amount == 0 or not reason.strip():
        raise ValueError("an adjustment needs a non-zero amount and a reason")
    return _move(
        _locked_account(user_id),
        kind=LedgerEntry.Kind.GRANT if amount > 0 else LedgerEntry.Kind.ADJUSTMENT,
        amount=amount,
        reference=reference,
        reason=reason,
        created_by_id=created_by_id,
    )


@transaction.atomic
def coins_refund(*, usage: LlmUsage, reason: str, created_by_id: int | None) -> LedgerEntry | None:
    """Give back what one provider call charged; refunding the same call twice does nothing."""
    if usage.coins_charged <= 0:
        return None
    return _move(
        _locked_account(usage.user_id),
        kind=LedgerEntry.Kind.REFUND,
        amount=usage.coins_charged,
        reference=f"refund:usage:{usage.pk}",
        reason=reason,
        conversation_id=usage.conversation_id,
        message_id=usage.message_id,
        created_by_id=created_by_id,
    )


def reply_hold(
    *,
    user_id: int,
    model: ModelInfo,
    input_characters: int,
    max_tokens: int,
    reference: str,
    conversation_id: int,
    message_id: int | None,
    purpose: str = "Reply",
) -> Hold:
    """Hold the worst case of a reply, lowering `max_tokens` to what the balance can pay for.

    Must run inside the transaction that creates the reply, so a refusal leaves nothing behind.
    `reference` is the attempt's own, new one: a reference already used raises IntegrityError
    (the ledger's unique reference) and the transaction holds nothing.
    """
    assert transaction.get_connection().in_atomic_block
    input_tokens = pricing.estimate_input_tokens(input_characters)
    amount = pricing.hold_coins(model, input_tokens=input_tokens, max_tokens=max_tokens)
    # The common case: the balance covers the whole of `max_tokens`.
    held = sql.one(_HOLD_ALL, [amount, sql.now(), user_id, amount]) if amount > 0 else None
    if held is not None:
        account_id, balance, granted = held[0], int(held[1]), max_tokens
    else:
        account = _locked_account(user_id)
        affordable = pricing.affordable_max_tokens(
            model, balance=account.balance, input_tokens=input_tokens
        )
        granted = min(max_tokens, affordable)
        if granted < min(settings.MIN_REPLY_TOKENS, max_tokens):
            raise InsufficientCoins(
                f"You don't have enough coins for a reply from {model.display_name} "
                f"(your balance is {account.balance} coin{'' if account.balance == 1 else 's'}). "
                f"{NO_COINS_NEXT}",
                balance=account.balance,
            )
        amount = pricing.hold_coins(model, input_tokens=input_tokens, max_tokens=granted)
        debited = _add(account, -amount)
        assert debited is not None  # the account is locked: what was affordable still is
        account_id, balance = account.pk, debited
    LedgerEntry.objects.create(
        account_id=account_id,
        kind=LedgerEntry.Kind.HOLD,
        amount=-amount,
        balance_after=balance,
        reference=reference,
        reason=f"Hold: {purpose} from {model.id}"[:200],
        conversation_id=conversation_id,
        message_id=message_id,
    )
    return Hold(reference=reference, amount=amount, max_tokens=granted)


def billable_usage(usage: Usage, *, produced_output: bool, final: bool, text_length: int) -> Usage:
    """The usage to bill: the provider's own numbers; nothing when nothing was produced.

    A stream that ended early (stop, cut) never got its final count: the output is then the
    larger of the provider's running count and an estimate from the text the person received.
    """
    if not produced_output:
        return Usage()
    if final:
        return usage
    estimate = math.ceil(text_length / 4)
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=max(usage.output_tokens, estimate),
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        cost_usd=usage.cost_usd,
    )


def reply_settle(
    *,
    user_id: int,
    model: ModelInfo,
    usage: Usage,
    hold: Hold | None,
    reference: str,
    conversation_id: int,
    message_id: int | None,
    purpose: str = "Reply",
) -> Settlement:
    """Capture what the reply cost and release the rest of its hold, in the caller's transaction.
    `purpose` names it in the ledger ("Reply", "Title").
    A reply settled before is reported as it was settled then, and nothing changes."""
    assert transaction.get_connection().in_atomic_block
    usd = pricing.cost_usd(model, usage)
    if hold is None:  # BYOK: the person's own key paid
        return Settlement(coins_charged=0, balance=balance_of(user_id=user_id), cost_usd=usd)
    release = f"{reference}:release"
    # Release and capture are one change of the balance and two entries in one statement.
    charge = pricing.coins_for(usd)
    change = hold.amount - charge
    settled = sql.one(_SETTLE_ALL, [change, sql.now(), user_id, -change, release])
    if settled is not None:  # the common case: the balance covers the charge
        account_id, balance = settled[0], int(settled[1])
    else:
        account = _locked_account(user_id)
        if LedgerEntry.objects.filter(reference=release).exists():
            # Settled before: report what was charged then, change nothing.
            capture = LedgerEntry.objects.filter(reference=f"{reference}:capture").first()
            charged = -capture.amount if capture is not None else 0
            return Settlement(coins_charged=charged, balance=account.balance, cost_usd=usd)
        # The hold covers the worst case; if the estimate was short, charge what the balance
        # allows (the account is locked, so that is what it allows).
        charge = min(charge, account.balance + hold.amount)
        changed = _add(account, hold.amount - charge)
        assert changed is not None  # never below zero: the charge was capped by the balance
        account_id, balance = account.pk, changed
    ids: dict[str, Any] = {"conversation_id": conversation_id, "message_id": message_id}
    entries = [
        {
            "kind": LedgerEntry.Kind.RELEASE,
            "amount": hold.amount,
            "balance_after": balance + charge,
            "reference": release,
            "reason": "Hold released",
        }
    ]
    if charge > 0:
        entries.append(
            {
                "kind": LedgerEntry.Kind.CAPTURE,
                "amount": -charge,
                "balance_after": balance,
                "reference": f"{reference}:capture",
                "reason": f"{purpose} from {model.id}"[:200],
            }
        )
    LedgerEntry.objects.bulk_create(
        LedgerEntry(account_id=account_id, **ids, **entry) for entry in entries
    )
    return Settlement(coins_charged=charge, balance=balance, cost_usd=usd)


def open_hold(*, message_id: int) -> Hold | None:
    """The hold of a reply that was never settled (its process died), if any."""
    holds = LedgerEntry.objects.filter(
        message_id=message_id, kind=LedgerEntry.Kind.HOLD, reference__startswith="reply:"
    )
    for entry in holds:
        reference = entry.reference.removesuffix(":hold")
        if not LedgerEntry.objects.filter(reference=f"{reference}:release").exists():
            return Hold(reference=reference, amount=-entry.amount, max_tokens=0)
    return None


def unreleased_holds() -> QuerySet[LedgerEntry]:
    """Holds whose release is not in the ledger: a reply or title still being written, or one
    never settled (its process died)."""
    released = LedgerEntry.objects.filter(
        reference=Replace(OuterRef("reference"), Value(":hold"), Value(":release"))
    )
    return LedgerEntry.objects.filter(kind=LedgerEntry.Kind.HOLD).filter(~Exists(released))


def open_holds(*, older_than: dt.timedelta) -> list[LedgerEntry]:
    """Holds never released (their reply or title was never settled) older than `older_than`:
    coins still held from their person. A live reply's hold is open for as long as it runs."""
    holds = unreleased_holds().filter(created_at__lt=timezone.now() - older_than)
    return list(holds.select_related("account").order_by("pk"))


def usage_record(*, usage: Usage | None = None, **fields: Any) -> int:
    """One provider call's row (its id); `usage` fills its token counts."""
    if usage is not None:
        fields |= {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
        }
    return LlmUsage.objects.create(**fields).pk


def reconcile() -> list[tuple[int, int, int]]:
    """Accounts whose balance differs from the sum of their entries: (user id, balance, sum)."""
    from django.db.models import Sum

    sums = dict(
        LedgerEntry.objects.values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    return [
        (account.user_id, account.balance, int(sums.get(account.pk) or 0))
        for account in CoinAccount.objects.all()
        if account.balance != int(sums.get(account.pk) or 0)
    ]
