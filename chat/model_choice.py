"""Which model a conversation uses: the person's choice, remembered; a retired one replaced."""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from chat.models import Conversation
from providers.catalogue import ModelInfo, find_model, get_model, retired_phrase


def _usable(model_id: str | None, today: dt.date) -> ModelInfo | None:
    model = find_model(model_id or "")
    return model if model is not None and model.lifecycle(today) != "retired" else None


def conversation_model_choose(*, conversation: Conversation, model_id: str) -> ModelInfo:
    """Remember the person's pick; raises `ModelNotFound` for an unknown or retired model."""
    model = get_model(model_id)
    Conversation.objects.filter(pk=conversation.pk).update(model=model.id, model_note="")
    conversation.model, conversation.model_note = model.id, ""
    return model


def conversation_model_refresh(
    *, conversation: Conversation, today: dt.date | None = None
) -> Conversation:
    """Move a conversation whose model retired to the model's successor, with a note saying so.

    Without a usable successor, the site's default model takes over.
    """
    day = today or dt.date.today()
    model = find_model(conversation.model)
    if model is None or model.lifecycle(day) != "retired":
        return conversation
    successor = _usable(model.successor, day) or _usable(settings.DEFAULT_MODEL, day)
    if successor is None:
        return conversation
    note = f"{retired_phrase(model, day)}, so this conversation now uses {successor.display_name}."
    # Conditional: two requests racing here write the same change once.
    Conversation.objects.filter(pk=conversation.pk, model=model.id).update(
        model=successor.id, model_note=note
    )
    conversation.model, conversation.model_note = successor.id, note
    return conversation
