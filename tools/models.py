from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from providers import keys

_MODELS_HELP = (
    "The model ids it is offered to, one per line or separated by commas (see `manage.py "
    "list_models`); empty: every model that takes tools."
)


def model_ids(text: str) -> frozenset[str]:
    """The model ids of a `models` field (empty: every model)."""
    return frozenset(part.strip() for part in text.replace(",", "\n").splitlines() if part.strip())


class BuiltinTool(models.Model):
    """An admin's switch for one of the site's own tools (tools/registry.py): on or off, and for
    which models. A row is made for every registered tool after each migrate (tools/apps.py),
    on unless the tool is off by default (the URL fetcher)."""

    name = models.CharField(max_length=64, unique=True, editable=False)
    enabled = models.BooleanField(default=True)
    for_models = models.TextField("models", blank=True, help_text=_MODELS_HELP)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "built-in tool"

    def __str__(self) -> str:
        return self.name


# The server's name prefixes its tools' names for the models (`<name>__<tool>`).
_NAME = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,29}$", "Lower-case letters, digits, - and _.")


class McpServer(models.Model):
    """An MCP server whose tools the models are offered (tools/mcp.py), added by an admin.

    Its headers (a token, usually) are kept encrypted, under the same keys as people's own
    provider keys, bound to the server's name; the admin shows their names, never their values.
    """

    name = models.CharField(max_length=30, unique=True, validators=[_NAME])
    url = models.URLField(max_length=500, help_text="Its streamable HTTP endpoint, e.g. …/mcp")
    headers_encrypted = models.TextField(blank=True, editable=False)
    header_names = models.CharField(max_length=300, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    for_models = models.TextField("models", blank=True, help_text=_MODELS_HELP)
    # What the last check found (admin's "List its tools"): its tools, or why it failed.
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_check = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"

    def __str__(self) -> str:
        return self.name

    def set_headers(self, headers: dict[str, str]) -> None:
        text = "\n".join(f"{name}: {value}" for name, value in headers.items())
        self.headers_encrypted = (
            keys.encrypt(user_id=0, provider=f"mcp:{self.name}", key=text) if text else ""
        )
        self.header_names = ", ".join(headers)

    def headers(self) -> dict[str, str]:
        if not self.headers_encrypted:
            return {}
        text = keys.decrypt(
            user_id=0, provider=f"mcp:{self.name}", ciphertext=self.headers_encrypted
        )
        return dict(line.split(": ", 1) for line in text.splitlines())
