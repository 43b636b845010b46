"""Every person has a coin account, however they were made (issue 28, item 4): sign-up,
`createsuperuser`, the admin's add form, the shell; each with the welcome coins, once."""

from __future__ import annotations

import uuid
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from billing.models import CoinAccount, LedgerEntry
from billing.services import reconcile

pytestmark = pytest.mark.django_db


def _has_welcome_account(username: str, settings: Any) -> bool:
    account = CoinAccount.objects.get(user__username=username)
    grants = LedgerEntry.objects.filter(account=account, kind="grant")
    return account.balance == settings.SIGNUP_COINS and grants.count() == 1


def test_a_superuser_made_with_createsuperuser_has_an_account_and_can_be_granted(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-pass-phrase-3")
    call_command(
        "createsuperuser", "--noinput", "--username", "root", "--email", "r@example.com",
        stdout=StringIO(),
    )  # fmt: skip
    assert _has_welcome_account("root", settings)
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="root"))
    listing = admin.get("/admin/billing/coinaccount/").content.decode()
    assert "root" in listing
    account = CoinAccount.objects.get(user__username="root")
    response = admin.post(
        f"/admin/billing/coinaccount/adjust/{account.pk}/",
        {
            "direction": "grant",
            "amount": "250",
            "reason": "Operator's own tests",
            "token": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.balance == settings.SIGNUP_COINS + 250


def test_people_made_in_the_shell_or_the_admin_have_accounts(
    admin_client: Client, settings: Any
) -> None:
    get_user_model().objects.create_user("shelly", password="shell-pass-phrase-1")
    assert _has_welcome_account("shelly", settings)
    admin_client.post(
        "/admin/auth/user/add/",
        {"username": "added", "password1": "added-pass-phrase-1",
         "password2": "added-pass-phrase-1", "usable_password": "true"},
    )  # fmt: skip
    assert _has_welcome_account("added", settings)
    assert reconcile() == []


def test_signing_up_opens_one_account(client: Client, settings: Any) -> None:
    client.post(
        "/accounts/signup/",
        {"username": "newbie", "password1": "newbie-pass-phrase-1",
         "password2": "newbie-pass-phrase-1"},
    )  # fmt: skip
    assert _has_welcome_account("newbie", settings)


@pytest.mark.django_db(transaction=True)
def test_the_migration_opens_an_empty_account_for_people_made_before_accounts() -> None:
    """billing 0002: people made before every person had an account (a `createsuperuser`
    before this release) get an empty one, which an admin can grant coins to; the accounts
    that exist are left as they are."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    User = get_user_model()
    early = User.objects.create_user("early")
    kept = User.objects.create_user("kept")
    # As if made before accounts opened with people.
    LedgerEntry.objects.filter(account__user=early).delete()
    CoinAccount.objects.filter(user=early).delete()
    before = CoinAccount.objects.get(user=kept).balance
    executor = MigrationExecutor(connection)
    executor.migrate([("billing", "0001_initial")])
    executor.loader.build_graph()
    executor.migrate([("billing", "0002_accounts_for_everyone")])
    assert CoinAccount.objects.get(user=early).balance == 0
    assert CoinAccount.objects.get(user=kept).balance == before
    assert CoinAccount.objects.count() == User.objects.count()
    assert reconcile() == []
    # The database as the other tests expect it: every migration applied.
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
