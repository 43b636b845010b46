from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from billing import pricing
from billing.typical import typical_reply_coins
from chat import (
    conversations,
    frames,
    maintenance,
    search,
    selectors,
    services,
    tool_loop,
    tree,
)
from chat.hub import live_replies
from chat.model_choice import conversation_model_choose, conversation_model_refresh
from chat.models import Message
from providers import model_sync, registry
from providers.catalogue import find_model
from providers.errors import ProviderError
from providers.limits import clamp_max_tokens
from providers.resolution import describe, listed_models, unavailable_reason
from providers.services import own_providers
from tools import offer
from tools.offer import tool_names

# Offered in an empty conversation: a click puts one in the message box.
EXAMPLE_PROMPTS = (
    "Explain how sourdough starter works, in three short paragraphs.",
    "Write a Python function that checks whether a string is a palindrome, with tests.",
    "Compare PostgreSQL and SQLite in a table: when to use each.",
    "Plan a three-day trip to Lisbon on a small budget.",
)


def _user_id(request: HttpRequest) -> int:
    user_id = request.user.pk
    assert user_id is not None, "views that call this are login_required"
    return int(user_id)


# The sidebar's most recent conversations; the list page has them all, by pages.
SIDEBAR_SIZE = 50


def _sidebar(owner_id: int) -> dict[str, object]:
    recent = list(conversations.listed(owner_id=owner_id)[: SIDEBAR_SIZE + 1])
    return {
        "conversations": recent[:SIDEBAR_SIZE],
        "more_conversations": len(recent) > SIDEBAR_SIZE,
    }


@login_required
@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    """The person's conversations, newest first, a page at a time (`after`: the cursor of the
    page before)."""
    owner_id = _user_id(request)
    query = request.GET.get("q", "").strip()
    context: dict[str, object] = {"deleted": "deleted" in request.GET, **_sidebar(owner_id)}
    if query:
        # A search over their titles and messages (chat/search.py).
        found = search.search(owner_id=owner_id, query=query)
        context |= {"q": query, "results": found.results, "more": found.more}
        return render(request, "chat/search.html", context)
    listing = conversations.page(owner_id=owner_id, after=request.GET.get("after") or None)
    context |= {"page": listing, "paged": bool(request.GET.get("after"))}
    return render(request, "chat/list.html", context)


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    try:
        conversation = services.conversation_start(owner_id=_user_id(request))
    except services.TooManyConversations as refused:
        messages.error(request, str(refused))
        return redirect("chat:list")
    return redirect("chat:conversation", conversation_id=conversation.pk)


def _costed(message: Message) -> bool:
    """Whether the page shows a reply's cost: as its tabs were told it at its end (by
    `message_stop`, or by an `error` after text was written)."""
    if message.status in ("complete", "stopped"):
        return True
    return message.status in ("error", "interrupted") and bool(message.content)


def _message_asked(request: HttpRequest, parents: dict[int, int | None]) -> int | None:
    """The message `?at=` names, if it is one of this conversation's."""
    try:
        asked = int(request.GET.get("at", ""))
    except ValueError:
        return None
    return asked if asked in parents else None


def _blank(role: str, status: str) -> Message:
    """A message as the page's script copies it for one that arrives while the page is open."""
    blank = Message(role=role, status=status)
    blank.on_branch = True  # type: ignore[attr-defined]
    return blank


@login_required
@require_GET
def conversation_detail(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_for_owner(
        owner_id=_user_id(request), conversation_id=conversation_id
    )
    if conversation is None:
        raise Http404("No such conversation.")
    model_sync.reload()
    conversation = conversation_model_refresh(conversation=conversation)
    maintenance.replies_sweep_stale(conversation_id=conversation.pk)
    messages = list(selectors.conversation_messages(conversation=conversation))
    # Every message is on the page; those of the current branch are shown (the script
    # switches branches without a reload).
    parents = {m.pk: m.parent_id for m in messages}
    leaf = conversation.current_leaf_id
    shown = set(tree.path_to(parents, leaf if leaf in parents else max(parents, default=None)))
    # Opened at a message (a search result): its branch is shown, and becomes the current one.
    found = _message_asked(request, parents)
    if found is not None and found not in shown:
        path = services.branch_select(
            owner_id=_user_id(request), conversation_id=conversation.pk, message_id=found
        )
        conversations.tell_branch(_user_id(request), conversation.pk, path)
        shown = set(path)
    for message in messages:
        message.on_branch = message.pk in shown  # type: ignore[attr-defined]
        message.found = message.pk == found  # type: ignore[attr-defined]
        # A reply streaming in this process: show what it has now, not the last checkpoint.
        live = live_replies.get(message.pk) if message.status == "streaming" else None
        if live is not None:
            message.content, message.thinking = live.peek()
            message.tools = live.peek_tools()
    # Under each finished reply, what it cost: the same line `message_stop` wrote live.
    finished = [m for m in messages if m.role == "assistant" and _costed(m)]
    finished_ids = [m.pk for m in finished]
    charges = selectors.reply_charges(message_ids=finished_ids)
    titles = selectors.title_calls(message_ids=finished_ids)
    for message in finished:
        message.coins_charged = charges.get(message.pk)  # type: ignore[attr-defined]
        message.title_usage = titles.get(message.pk)  # type: ignore[attr-defined]
    streaming = any(m.status == "streaming" for m in messages)
    models = _model_choices(_user_id(request))
    return render(
        request,
        "chat/conversation.html",
        {
            "conversation": conversation,
            "chat_messages": messages,
            "streaming": streaming,
            "models": models,
            **_sidebar(_user_id(request)),
            "retry_statuses": frames.RETRY_STATUSES,
            "example_prompts": EXAMPLE_PROMPTS,
            "blank_user": _blank(Message.Role.USER, Message.Status.COMPLETE),
            "blank_assistant": _blank(Message.Role.ASSISTANT, Message.Status.STREAMING),
            "blank_tool": {"call_id": "", "name": "", "input": {}, "result": None},
            "tools_available": tool_names(offer.setup()),
            # The picker's labels stay short: why a model is unavailable is said once, below
            # it, for all the models it applies to.
            "unavailable": _unavailable_by_reason(models),
            # What the page's script needs of the contract, and the providers' names.
            "chat_config": json.dumps(
                {
                    **frames.client_contract(),
                    "providers": {p.name: p.label for p in registry.PROVIDERS.values()},
                    "model_names": {m["id"]: m["display_name"] for m in models},
                    "estimate": _estimate_config(models),
                    "tool_limit_ending": tool_loop.limit_ending(),
                }
            ),
        },
    )


@login_required
@require_POST
def conversation_model(request: HttpRequest, conversation_id: int) -> JsonResponse:
    """Remember the model picked for a conversation (the picker posts here on change)."""
    conversation = selectors.conversation_for_owner(
        owner_id=_user_id(request), conversation_id=conversation_id
    )
    if conversation is None:
        return JsonResponse({"error": "This conversation does not exist."}, status=404)
    model_sync.reload()
    model = find_model(request.POST.get("model", ""))
    if model is None:
        return JsonResponse({"error": "That model does not exist."}, status=400)
    reason = unavailable_reason(model, frozenset(own_providers(user_id=_user_id(request))))
    if reason is not None:
        return JsonResponse({"error": reason}, status=400)
    try:
        conversation_model_choose(conversation=conversation, model_id=model.id)
    except ProviderError as exc:
        return JsonResponse({"error": exc.message}, status=400)
    return JsonResponse({"model": model.id})


def _unavailable_by_reason(models: list[dict[str, object]]) -> list[tuple[str, list[str]]]:
    grouped: dict[str, list[str]] = {}
    for choice in models:
        if not choice["available"] and choice["unavailable_reason"]:
            grouped.setdefault(str(choice["unavailable_reason"]), []).append(
                str(choice["display_name"])
            )
    return list(grouped.items())


def _estimate_config(models: list[dict[str, object]]) -> dict[str, object]:
    """What the composer's estimate needs: the numbers of the server's own hold arithmetic
    (billing/pricing.py, which conversation.js's `holdCoins` repeats exactly) and each model's
    typical reply."""
    typical = typical_reply_coins()
    per_model = {}
    for choice in models:
        model = find_model(str(choice["id"]))
        if model is None:
            continue
        per_model[model.id] = {
            "input": pricing.scaled_price(model.input_price),
            "output": pricing.scaled_price(model.output_price),
            "max_tokens": clamp_max_tokens(model, None),
            "own_key": choice["own_key"],
            "typical": typical.get(model.id),
        }
    return {
        "coins_per_usd": settings.COINS_PER_USD,
        "price_scale": pricing.PRICE_SCALE,
        "min_reply_tokens": settings.MIN_REPLY_TOKENS,
        "models": per_model,
    }


def _model_choices(user_id: int) -> list[dict[str, object]]:
    """The models the person may pick, as `/api/models/` lists them, with their prices in
    coins (what people pay in) and the output a reply may use."""
    model_sync.reload()
    own = frozenset(own_providers(user_id=user_id))
    return [
        describe(m, own_providers=own)
        | {
            "price_in_coins": pricing.price_in_coins(m),
            "default_max_tokens": m.default_max_tokens,
        }
        for m in listed_models()
    ]


@login_required
@require_GET
def models_api(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"models": _model_choices(_user_id(request))})
