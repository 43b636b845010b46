"""Tools in the admin: the built-in ones switched on and off, and MCP servers added with their
URL and headers (write-only: their names are shown, never their values), switched on and off
and checked ("List its tools"); each offered to every model that takes tools or to those
named."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from providers.catalogue import find_model
from tools.mcp import McpServerSpec, list_tools
from tools.models import BuiltinTool, McpServer, model_ids
from tools.registry import REGISTRY, ToolError


def _formfield(field: Any, **kwargs: Any) -> Any:
    # An address typed without a scheme is https (Django 6's default, asked for now).
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


def _offered_to(models: str) -> str:
    ids = sorted(model_ids(models))
    return ", ".join(ids) if ids else "every model that takes tools"


class ModelsField(forms.CharField):
    """Model ids, one per line or separated by commas: each one the catalogue knows."""

    def __init__(self) -> None:
        super().__init__(
            required=False,
            label="Models",
            widget=forms.Textarea(attrs={"rows": 3}),
            help_text=BuiltinTool._meta.get_field("for_models").help_text,
        )

    def clean(self, value: Any) -> str:
        text = super().clean(value)
        unknown = sorted(name for name in model_ids(text) if find_model(name) is None)
        if unknown:
            raise forms.ValidationError(f"No such model: {', '.join(unknown)}.")
        return str(text)


class McpServerForm(forms.ModelForm):
    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=(
            "One per line, as <code>Name: value</code> (e.g. <code>Authorization: Bearer "
            "…</code>). Kept encrypted and never shown again; leave empty to keep the ones saved."
        ),
    )
    clear_headers = forms.BooleanField(required=False, help_text="Remove the saved headers.")
    for_models = ModelsField()

    class Meta:
        model = McpServer
        fields = ("name", "url", "enabled", "for_models")
        formfield_callback = staticmethod(lambda field, **kwargs: _formfield(field, **kwargs))

    def clean_headers(self) -> dict[str, str]:
        parsed: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["headers"].splitlines(), 1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip() or not value.strip():
                raise forms.ValidationError(f"Line {number} is not 'Name: value'.")
            parsed[name.strip()] = value.strip()
        return parsed


class BuiltinToolForm(forms.ModelForm):
    for_models = ModelsField()

    class Meta:
        model = BuiltinTool
        fields = ("enabled", "for_models")


@admin.register(BuiltinTool)
class BuiltinToolAdmin(admin.ModelAdmin):
    """The site's own tools: each switched on or off, and offered to which models. The rows
    are made by `migrate` (one per built-in tool): none is added or deleted here."""

    form = BuiltinToolForm
    list_display = ("name", "enabled", "offered_to", "description")
    list_editable = ("enabled",)
    readonly_fields = ("name", "description")

    @admin.display(description="offered to")
    def offered_to(self, tool: BuiltinTool) -> str:
        return _offered_to(tool.for_models)

    @admin.display(description="what it does")
    def description(self, tool: BuiltinTool) -> str:
        found = REGISTRY.get(tool.name)
        return found.description if found else "(no longer built in)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    form = McpServerForm
    list_display = ("name", "url", "enabled", "offered_to", "header_names", "last_checked_at")
    list_filter = ("enabled",)
    readonly_fields = ("header_names", "last_checked_at", "last_check")
    actions = ("check_tools",)

    @admin.display(description="offered to")
    def offered_to(self, server: McpServer) -> str:
        return _offered_to(server.for_models)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"  # as _formfield
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The name binds its encrypted headers: fixed once saved.
        return ("name", *self.readonly_fields) if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: McpServer, form: Any, change: bool) -> None:
        if form.cleaned_data.get("clear_headers"):
            obj.set_headers({})
        elif form.cleaned_data.get("headers"):
            obj.set_headers(form.cleaned_data["headers"])
        super().save_model(request, obj, form, change)

    @admin.action(description="List its tools (checks that it answers)")
    def check_tools(self, request: HttpRequest, queryset: QuerySet[McpServer]) -> None:
        for server in queryset:
            spec = McpServerSpec(name=server.name, url=server.url, headers=server.headers())
            try:
                found = async_to_sync(list_tools)(spec)
            except ToolError as failure:
                server.last_check, level = str(failure), messages.ERROR
            else:
                names = ", ".join(tool.name for tool in found) or "none"
                server.last_check, level = f"{len(found)} tools: {names}", messages.SUCCESS
            server.last_checked_at = timezone.now()
            server.save(update_fields=["last_check", "last_checked_at", "updated_at"])
            self.message_user(request, f"{server.name}: {server.last_check}", level)
