"""MCP servers in the admin: added with headers that are kept encrypted and never shown again,
and checked by listing their tools (a real server, the wrong token, one that is down)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.tools.conftest import TOKEN, free_port
from tools.models import McpServer

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "/admin/tools/mcpserver/add/"


def _add(client: Client, url: str, headers: str) -> Any:
    return client.post(
        ADD, {"name": "weather", "url": url, "enabled": "on", "headers": headers}, follow=True
    )


def test_headers_are_kept_encrypted_and_shown_by_name_only(
    admin_client: Client, server_url: str
) -> None:
    response = _add(admin_client, server_url, f"Authorization: Bearer {TOKEN}\nX-Team: chat")
    assert response.status_code == 200
    server = McpServer.objects.get(name="weather")
    assert TOKEN not in server.headers_encrypted and server.header_names == "Authorization, X-Team"
    assert server.headers() == {"Authorization": f"Bearer {TOKEN}", "X-Team": "chat"}
    for page in ("/admin/tools/mcpserver/", f"/admin/tools/mcpserver/{server.pk}/change/"):
        html = admin_client.get(page).content.decode()
        assert TOKEN not in html and "Authorization" in html
    # Saved again with the field left empty, they stay; "clear" removes them.
    change = f"/admin/tools/mcpserver/{server.pk}/change/"
    admin_client.post(change, {"url": server_url, "enabled": "on", "headers": ""})
    server.refresh_from_db()
    assert server.headers()["Authorization"] == f"Bearer {TOKEN}"
    admin_client.post(change, {"url": server_url, "enabled": "on", "clear_headers": "on"})
    server.refresh_from_db()
    assert server.headers() == {} and server.header_names == ""


def test_a_header_line_that_is_not_name_colon_value_is_refused(admin_client: Client) -> None:
    response = _add(admin_client, "http://127.0.0.1:9/mcp", "Bearer abc")
    assert "Line 1 is not" in response.content.decode()
    assert not McpServer.objects.exists()


def _check(client: Client, server: McpServer) -> str:
    response = client.post(
        "/admin/tools/mcpserver/",
        {"action": "check_tools", "_selected_action": [server.pk]},
        follow=True,
    )
    return str(response.content.decode())


def test_listing_its_tools_checks_it(admin_client: Client, server_url: str) -> None:
    _add(admin_client, server_url, f"Authorization: Bearer {TOKEN}")
    server = McpServer.objects.get(name="weather")
    page = _check(admin_client, server)
    # (The admin starts its messages with a capital.)
    listed = "weather__forecast, weather__slow, weather__broken, weather__trace_context"
    assert f"Weather: 4 tools: {listed}" in page
    server.refresh_from_db()
    assert server.last_check.startswith("4 tools") and server.last_checked_at is not None

    server.set_headers({"Authorization": "Bearer not-the-token"})
    server.save()
    page = _check(admin_client, server)
    assert "Weather: The MCP server weather could not be reached." in page
    assert "not-the-token" not in page

    server.url = f"http://127.0.0.1:{free_port()}/mcp"
    server.save()
    assert "could not be reached" in _check(admin_client, server)
