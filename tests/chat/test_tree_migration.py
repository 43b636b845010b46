"""chat 0006: conversations from before the tree were one line; each message comes to follow
the one before it, and each conversation's branch ends at its last message."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chat import tree

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("chat", "0005_unsettled_replies")]
AFTER = [("chat", "0006_message_tree")]


def test_the_migration_links_each_conversation_into_one_line(alice: Any) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Conversation, Message = old.get_model("chat", "Conversation"), old.get_model("chat", "Message")
    lines: dict[int, list[int]] = {}
    for turns in (4, 1, 0, 3):
        conversation = Conversation.objects.create(owner_id=alice.pk, model="demo")
        lines[conversation.pk] = [
            Message.objects.create(
                conversation=conversation, role=("user", "assistant")[i % 2], content=str(i)
            ).pk
            for i in range(turns)
        ]
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    for conversation_id, line in lines.items():
        leaf = new.get_model("chat", "Conversation").objects.get(pk=conversation_id).current_leaf_id
        parents = dict(
            new.get_model("chat", "Message")
            .objects.filter(conversation_id=conversation_id)
            .values_list("id", "parent_id")
        )
        assert parents == dict(zip(line, [None, *line][: len(line)], strict=True))
        assert tree.path_to(parents, leaf) == line
    # The database as the other tests expect it: every migration applied.
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
