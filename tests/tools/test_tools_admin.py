"""The admin's switches for tools: the built-in ones (on or off, for which models) and an MCP
server's models; what a reply is then offered."""

from __future__ import annotations

import dataclasses

import pytest
from django.test import Client

from providers.catalogue import get_model
from tools import offer
from tools.models import BuiltinTool, McpServer

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/tools/builtintool/"


def offered(model_id: str) -> list[str]:
    offer.forget_setup()
    setup = offer.offered_setup(offer.setup(), get_model(model_id), conversation_allows=True)
    return sorted(name for name, _ in setup.builtins)


def test_every_built_in_tool_has_a_switch_and_the_fetcher_starts_off(admin_client: Client) -> None:
    switches = dict(BuiltinTool.objects.values_list("name", "enabled"))
    assert switches == {"calculator": True, "current_time": True, "fetch_url": False}
    page = admin_client.get(CHANGELIST).content.decode()
    assert "every model that takes tools" in page and "Exact arithmetic" in page
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403  # made by migrate only


def test_an_admin_switches_a_tool_on_for_some_models(admin_client: Client) -> None:
    fetcher = BuiltinTool.objects.get(name="fetch_url")
    response = admin_client.post(
        f"{CHANGELIST}{fetcher.pk}/change/",
        {"enabled": "on", "for_models": "claude-sonnet-5-5,\ngpt-5.5"},
    )
    assert response.status_code == 302
    assert offered("claude-sonnet-5-5") == ["calculator", "current_time", "fetch_url"]
    assert offered("claude-haiku-5-5") == ["calculator", "current_time"]
    # A model the catalogue does not know is refused, and nothing changes.
    response = admin_client.post(
        f"{CHANGELIST}{fetcher.pk}/change/", {"enabled": "on", "for_models": "gpt-9"}
    )
    assert "No such model: gpt-9." in response.content.decode()
    assert BuiltinTool.objects.get(name="fetch_url").for_models == "claude-sonnet-5-5,\ngpt-5.5"


def test_an_mcp_server_is_offered_to_the_models_named(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/tools/mcpserver/add/",
        {"name": "docs", "url": "https://mcp.example.com/mcp", "enabled": "on",
         "for_models": "gpt-5.5", "headers": ""},
    )  # fmt: skip
    assert response.status_code == 302
    assert McpServer.objects.get(name="docs").for_models == "gpt-5.5"
    offer.forget_setup()
    for model_id, expected in (("gpt-5.5", ["docs"]), ("claude-sonnet-5-5", [])):
        setup = offer.offered_setup(offer.setup(), get_model(model_id), conversation_allows=True)
        assert [spec.name for spec, _ in setup.servers] == expected
    # The person's switch, or a model that takes no tools: nothing at all.
    setup = offer.offered_setup(offer.setup(), get_model("gpt-5.5"), conversation_allows=False)
    assert not setup
    no_tools = dataclasses.replace(get_model("gpt-5.5"), tools=False)
    assert not offer.offered_setup(offer.setup(), no_tools, conversation_allows=True)
