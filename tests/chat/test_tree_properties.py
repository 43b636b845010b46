"""The message tree on random histories: sends (after the branch's end, after any message, as a
first message), regenerations, edits, retries, switches, replies ending every way and the
conversation's deletion, in any order. At every step nothing is lost or changed (a retry
replaces only its own reply), the text a reply is sent is exactly the branch from its root to
the message it answers (invariant 9), one reply at most streams, the current branch is the one
the last action chose, and a deleted conversation refuses everything and leaves nothing once
no reply of it streams. Runs on SQLite and on PostgreSQL (CI)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chat import conversations, maintenance, selectors, services
from chat.frames import AT_CURRENT_LEAF, RETRY_STATUSES
from chat.models import Conversation, Message
from providers.catalogue import get_model

pytestmark = pytest.mark.django_db

_people = itertools.count()
DEMO = get_model("demo")
ENDINGS = ["complete", "error", "stopped", "interrupted"]


class TreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        person = get_user_model().objects.create_user(f"tree{next(_people)}")
        self.conversation = Conversation.objects.create(owner=person, model=DEMO.id)
        # What the site must keep: every message's role, parent and text, by id.
        self.kept: dict[int, tuple[str, int | None, str]] = {}
        self.leaf: int | None = None
        self.streaming: int | None = None
        self.texts = itertools.count()
        self.deleted = False

    # --- the model's own view of the tree ---------------------------------------------------

    def _path(self, message_id: int | None) -> list[int]:
        path = []
        while message_id is not None:
            path.append(message_id)
            message_id = self.kept[message_id][1]
        return path[::-1]

    def _leaf_under(self, message_id: int) -> int:
        while children := [m for m, row in self.kept.items() if row[1] == message_id]:
            message_id = max(children)
        return message_id

    def _ids(self, role: str) -> list[int]:
        return sorted(m for m, row in self.kept.items() if row[0] == role)

    # --- actions, as the consumer runs them ---------------------------------------------------

    def _start(self, begin: Callable[..., services.ReplyStart], **fields: Any) -> Any:
        """Run a reply's start as replies._begin does; the refusal it raised, if any."""
        try:
            with transaction.atomic():
                conversation = services.conversation_lock(
                    owner_id=self.conversation.owner_id, conversation_id=self.conversation.pk
                )
                return begin(
                    conversation=conversation,
                    model=DEMO,
                    byok=True,
                    max_tokens=100,
                    hub="hub.test!",
                    **fields,
                )
        except (
            services.ReplyInProgress,
            services.MessageNotFound,
            services.ConversationNotFound,
        ) as refused:
            return refused

    def _started(self, start: Any, *, new_question: str | None) -> bool:
        """Check a reply's start against the model (or its refusal: one reply streams)."""
        if self.streaming is not None:
            assert isinstance(start, services.ReplyInProgress)
            return False
        assert isinstance(start, services.ReplyStart), start
        reply = start.assistant
        if new_question is not None:
            assert start.user_message is not None
            asked = start.user_message
            self.kept[asked.pk] = ("user", asked.parent_id, new_question)
            assert reply.parent_id == asked.pk
        if reply.pk not in self.kept:
            self.kept[reply.pk] = ("assistant", reply.parent_id, "")
        # Invariant 9: exactly the branch to the message answered, its turns that have text.
        expected = [
            (self.kept[m][0], self.kept[m][2])
            for m in self._path(reply.parent_id)
            if self.kept[m][2]
        ]
        assert [(m.role, m.content) for m in start.history] == expected
        self.streaming = self.leaf = reply.pk
        return True

    @precondition(lambda self: not self.deleted)
    @rule(data=st.data(), where=st.sampled_from(["end", "after", "first"]))
    def send(self, data: st.DataObject, where: str) -> None:
        text = f"question {next(self.texts)}"
        parent: int | None = AT_CURRENT_LEAF
        if where == "after" and self.kept:
            parent = data.draw(st.sampled_from(self._ids("assistant") or [AT_CURRENT_LEAF]))
        elif where == "first":
            parent = None
        start = self._start(services.reply_begin, content=text, client_id=None, parent_id=parent)
        self._started(start, new_question=text)

    @precondition(
        lambda self: not self.deleted and any(r[0] == "assistant" for r in self.kept.values())
    )
    @rule(data=st.data())
    def regenerate(self, data: st.DataObject) -> None:
        beside = data.draw(st.sampled_from(self._ids("assistant")))
        start = self._start(services.reply_begin_regenerate, message_id=beside)
        if beside == self.streaming:
            assert isinstance(start, services.ReplyInProgress)
            return
        if self._started(start, new_question=None):
            assert self.kept[start.assistant.pk][1] == self.kept[beside][1]

    @precondition(lambda self: not self.deleted and any(r[0] == "user" for r in self.kept.values()))
    @rule(data=st.data())
    def edit(self, data: st.DataObject) -> None:
        edited = data.draw(st.sampled_from(self._ids("user")))
        text = f"edited {next(self.texts)}"
        start = self._start(
            services.reply_begin_edit, message_id=edited, content=text, client_id=None
        )
        if self._started(start, new_question=text):
            assert start.user_message is not None
            assert start.user_message.parent_id == self.kept[edited][1]

    @precondition(
        lambda self: not self.deleted and any(r[0] == "assistant" for r in self.kept.values())
    )
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        again = data.draw(st.sampled_from(self._ids("assistant")))
        row = Message.objects.get(pk=again)
        followed = any(r[1] == again for r in self.kept.values())
        start = self._start(services.reply_begin_retry, message_id=again)
        if self.streaming is not None and not followed and row.status in RETRY_STATUSES:
            assert isinstance(start, services.ReplyInProgress)
        elif followed or row.status not in RETRY_STATUSES:
            # Only a reply nothing follows is replaced in place; a finished one never is.
            expected = services.ReplyInProgress if row.status == "streaming" else None
            assert isinstance(start, expected or services.MessageNotFound), start
        else:
            assert self._started(start, new_question=None)
            assert start.assistant.pk == again

    @precondition(lambda self: self.streaming is not None)
    @rule(ending=st.sampled_from(ENDINGS), words=st.integers(0, 3))
    def finish(self, ending: str, words: int) -> None:
        """The streaming reply ends, with text or none (a reply that failed at once)."""
        assert self.streaming is not None
        text = " ".join(f"answer{next(self.texts)}" for _ in range(words))
        assert services.reply_finish(
            message_id=self.streaming, status=ending, content=text, thinking=""
        )
        role, parent, _ = self.kept[self.streaming]
        self.kept[self.streaming] = (role, parent, text)
        self.streaming = None
        # As the runner does after a reply that was stopped (a delete stops it first).
        maintenance.deleted_conversations_remove(conversation_id=self.conversation.pk)

    @precondition(lambda self: not self.deleted)
    @rule()
    def delete(self) -> None:
        """Delete the conversation, at any point: gone for the person at once, its rows as
        soon as no reply of it streams."""
        assert conversations.delete(
            owner_id=self.conversation.owner_id, conversation_id=self.conversation.pk
        )
        self.deleted = True

    @precondition(lambda self: self.deleted)
    @rule(data=st.data())
    def act_on_the_deleted(self, data: st.DataObject) -> None:
        """Every action on a deleted conversation is refused as on a missing one."""
        some = data.draw(st.sampled_from(sorted(self.kept) or [1]))
        for begin, fields in (
            (services.reply_begin, {"content": "x", "client_id": None}),
            (services.reply_begin_regenerate, {"message_id": some}),
            (services.reply_begin_edit, {"message_id": some, "content": "x", "client_id": None}),
            (services.reply_begin_retry, {"message_id": some}),
        ):
            assert isinstance(self._start(begin, **fields), services.ConversationNotFound)
        with pytest.raises(services.ConversationNotFound):
            services.branch_select(
                owner_id=self.conversation.owner_id,
                conversation_id=self.conversation.pk,
                message_id=some,
            )

    @precondition(lambda self: not self.deleted and bool(self.kept))
    @rule(data=st.data())
    def select(self, data: st.DataObject) -> None:
        chosen = data.draw(st.sampled_from(sorted(self.kept)))
        path = services.branch_select(
            owner_id=self.conversation.owner_id,
            conversation_id=self.conversation.pk,
            message_id=chosen,
        )
        self.leaf = self._leaf_under(chosen)
        assert path == self._path(self.leaf)

    # --- what must hold at every step ---------------------------------------------------------

    @invariant()
    def nothing_is_lost_or_changed(self) -> None:
        if self.deleted:
            return  # deleted_leaves_nothing says what is left
        rows = {
            pk: (role, parent, content)
            for pk, role, parent, content in Message.objects.filter(
                conversation=self.conversation
            ).values_list("id", "role", "parent_id", "content")
        }
        # A streaming reply's text is the runner's to write; a retry keeps the earlier text
        # in the row until new text arrives.
        for pk in rows.keys() & {self.streaming}:
            rows[pk] = (rows[pk][0], rows[pk][1], self.kept[pk][2])
        assert rows == self.kept

    @invariant()
    def deleted_leaves_nothing(self) -> None:
        if not self.deleted:
            return
        owner_id = self.conversation.owner_id
        assert not conversations.listed(owner_id=owner_id).filter(pk=self.conversation.pk)
        left = Message.objects.filter(conversation=self.conversation).count()
        if self.streaming is None:
            assert left == 0
            assert not Conversation.objects.filter(pk=self.conversation.pk).exists()

    @invariant()
    def the_current_branch_is_the_last_one_chosen(self) -> None:
        if self.deleted:
            return
        assert selectors.current_branch(conversation_id=self.conversation.pk) == self._path(
            self.leaf
        )

    @invariant()
    def one_reply_at_most_streams(self) -> None:
        streaming = Message.objects.filter(conversation=self.conversation, status="streaming")
        assert list(streaming.values_list("id", flat=True)) == (
            [] if self.streaming is None else [self.streaming]
        )


def test_the_tree_keeps_everything_and_sends_the_branch_on_random_histories() -> None:
    run_state_machine_as_test(
        TreeMachine, settings=settings(max_examples=40, stateful_step_count=30, deadline=None)
    )
