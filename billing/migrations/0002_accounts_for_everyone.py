"""Every person has a coin account: people made before accounts opened with them (a
`createsuperuser`, the admin, the shell) get an empty one, which an admin can grant coins to."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations


def open_missing_accounts(apps: Any, schema_editor: Any) -> None:
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    CoinAccount = apps.get_model("billing", "CoinAccount")
    missing = User.objects.filter(coin_account__isnull=True).values_list("pk", flat=True)
    CoinAccount.objects.bulk_create(CoinAccount(user_id=pk) for pk in missing.iterator())


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(open_missing_accounts, migrations.RunPython.noop)]
