"""A conversation's messages as a tree: every message follows its parent; a regenerated reply
or an edited message is a sibling of the one it stands beside. The conversation's current
branch runs from a root to its `current_leaf`. Pure functions over `{id: parent_id}`; the
reads are in chat/selectors.py."""

from __future__ import annotations

from collections.abc import Mapping


class NotInTree(LookupError):
    """A message id that is not one of the conversation's."""


def path_to(parents: Mapping[int, int | None], message_id: int | None) -> list[int]:
    """The ids from the root down to `message_id` (empty for None)."""
    path: list[int] = []
    current = message_id
    while current is not None:
        if current not in parents:
            raise NotInTree(current)
        path.append(current)
        current = parents[current]
        if len(path) > len(parents):
            raise ValueError("the messages' parents form a cycle")
    path.reverse()
    return path


def newest_children(parents: Mapping[int, int | None]) -> dict[int | None, int]:
    """Each message's newest child (the highest id), by parent (None: the newest root)."""
    newest: dict[int | None, int] = {}
    for message_id, parent_id in parents.items():
        if message_id > newest.get(parent_id, 0):
            newest[parent_id] = message_id
    return newest


def leaf_under(parents: Mapping[int, int | None], message_id: int) -> int:
    """The end of the branch that goes through `message_id`: from it, the newest child at each
    step (what a person switching to a version expects to see: its latest continuation)."""
    if message_id not in parents:
        raise NotInTree(message_id)
    newest = newest_children(parents)
    current = message_id
    while current in newest:
        current = newest[current]
    return current


def siblings(parents: Mapping[int, int | None], message_id: int) -> list[int]:
    """The versions of a message (itself included), oldest first."""
    parent = parents[message_id]
    return sorted(m for m, p in parents.items() if p == parent)
