from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ToolsConfig(AppConfig):
    name = "tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(builtin_tools_listed, sender=self)


def builtin_tools_listed(using: str = "default", **kwargs: Any) -> None:
    """Every built-in tool has its admin switch (a new one starts on, unless the tool is off by
    default); one no longer built in loses it."""
    from tools.models import BuiltinTool
    from tools.offer import BUILT_IN

    for tool in BUILT_IN:
        BuiltinTool.objects.using(using).get_or_create(
            name=tool.name, defaults={"enabled": not tool.off_by_default}
        )
    BuiltinTool.objects.using(using).exclude(name__in=[tool.name for tool in BUILT_IN]).delete()
