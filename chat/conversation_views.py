"""Pages and requests that manage a conversation: rename, delete (with its confirmation),
export."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import conversations, export, selectors
from chat.services import ConversationNotFound


def _user_id(request: HttpRequest) -> int:
    assert request.user.pk is not None, "views that call this are login_required"
    return int(request.user.pk)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_POST
def conversation_rename(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The person's own title (form field `title`): `{"title"}`, or `{"error"}` with 400 or
    404, to the page's script; a plain form post goes back to the conversation."""
    try:
        title = conversations.rename(
            owner_id=_user_id(request),
            conversation_id=conversation_id,
            title=request.POST.get("title", ""),
        )
    except ConversationNotFound:
        if _wants_json(request):
            return JsonResponse({"error": "This conversation does not exist."}, status=404)
        raise Http404("No such conversation.") from None
    except conversations.BadTitle as bad:
        if _wants_json(request):
            return JsonResponse({"error": str(bad)}, status=400)
        messages.error(request, str(bad))
        return redirect("chat:conversation", conversation_id=conversation_id)
    if _wants_json(request):
        return JsonResponse({"title": title})
    return redirect("chat:conversation", conversation_id=conversation_id)


@login_required
@require_POST
def conversation_tools(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The person's switch for tools here (form field `enabled`: "true" if any of its values
    is, as a ticked box beside the form's hidden "false" sends): `{"enabled"}`, or `{"error"}`
    with 404, to the page's script; a plain form post (the switch without the script) goes
    back to the conversation."""
    enabled = "true" in request.POST.getlist("enabled")
    try:
        conversations.tools_switch(
            owner_id=_user_id(request), conversation_id=conversation_id, enabled=enabled
        )
    except ConversationNotFound:
        if _wants_json(request):
            return JsonResponse({"error": "This conversation does not exist."}, status=404)
        raise Http404("No such conversation.") from None
    if _wants_json(request):
        return JsonResponse({"enabled": enabled})
    return redirect("chat:conversation", conversation_id=conversation_id)


@login_required
@require_http_methods(["GET", "POST"])
def conversation_delete(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """GET: the confirmation, naming the conversation (the page's own dialog says the same).
    POST: delete it (its reply stopped first) and go to the list."""
    owner_id = _user_id(request)
    conversation = selectors.conversation_for_owner(
        owner_id=owner_id, conversation_id=conversation_id
    )
    if conversation is None:
        raise Http404("No such conversation.")
    if request.method == "GET":
        return render(request, "chat/delete.html", {"conversation": conversation})
    try:
        conversations.delete(owner_id=owner_id, conversation_id=conversation_id)
    except ConversationNotFound:
        raise Http404("No such conversation.") from None
    # Said by the list page (not a session message: another tab of the conversation goes to
    # the list at the same moment, and would take it).
    return redirect(reverse("chat:list") + "?deleted=1")


def _owned(request: HttpRequest, conversation_id: int) -> Any:
    conversation = selectors.conversation_for_owner(
        owner_id=_user_id(request), conversation_id=conversation_id
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _download(body: str, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_GET
def export_markdown(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The current branch as Markdown."""
    conversation = _owned(request, conversation_id)
    return _download(
        export.as_markdown(conversation),
        "text/markdown; charset=utf-8",
        export.filename(conversation, "md"),
    )


@login_required
@require_GET
def export_json(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The whole tree as JSON, with each reply's model, times, tokens and coins."""
    conversation = _owned(request, conversation_id)
    return _download(
        json.dumps(export.as_json(conversation), ensure_ascii=False, indent=2),
        "application/json; charset=utf-8",
        export.filename(conversation, "json"),
    )
