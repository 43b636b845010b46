"""Search over a person's own titles and messages: whole words, all of them, marked in a
snippet; the same results on SQLite and PostgreSQL for plain words (this file runs on both);
another person's and deleted conversations never found; any query text is only a parameter."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import search
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db
_people = itertools.count()


def _conversation(owner: Any, title: str, *texts: str) -> tuple[Conversation, list[Message]]:
    conversation = Conversation.objects.create(owner=owner, model="demo", title=title)
    made: list[Message] = []
    for i, text in enumerate(texts):
        made.append(
            Message.objects.create(
                conversation=conversation,
                role=("user", "assistant")[i % 2],
                content=text,
                parent=made[-1] if made else None,
            )
        )
    if made:
        Conversation.objects.filter(pk=conversation.pk).update(current_leaf=made[-1])
    return conversation, made


def _found(owner: Any, query: str) -> list[tuple[int, int | None]]:
    return [
        (r.conversation.pk, r.message_id)
        for r in search.search(owner_id=owner.pk, query=query).results
    ]


def test_whole_words_all_of_them_in_one_message_or_the_title(alice: Any) -> None:
    bread, (ask, answer) = _conversation(
        alice, "Baking", "How do I bake sourdough bread?", "Feed the starter, then bake at 250°C."
    )
    trip, _ = _conversation(alice, "Lisbon sourdough trip", "Where to eat in Lisbon?")
    _conversation(alice, "Other", "A breadth-first search, and a category theory note.")

    assert _found(alice, "sourdough") == [(trip.pk, None), (bread.pk, ask.pk)]
    assert _found(alice, "BAKE") == [(bread.pk, answer.pk)]  # the newest matching message
    assert _found(alice, "bake starter") == [(bread.pk, answer.pk)]
    assert _found(alice, "bread sourdough") == [(bread.pk, ask.pk)]
    # Parts of words are not words: "bread" is not in "breadth", "cat" not in "category".
    assert _found(alice, "breadth") != [] and _found(alice, "cat") == []
    # Every word must be there, in the same message (or the title).
    assert _found(alice, "lisbon starter") == []


def test_a_snippet_marks_the_words_and_escapes_the_rest(alice: Any) -> None:
    long_start = "word " * 60
    _, (message,) = _conversation(
        alice, "Markup", long_start + "then <script>alert(1)</script> & the KEY point, key."
    )
    (result,) = search.search(owner_id=alice.pk, query="key").results
    assert result.message_id == message.pk
    assert "<mark>KEY</mark>" in result.snippet and "<mark>key</mark>" in result.snippet
    assert "&lt;script&gt;" in result.snippet and "<script>" not in result.snippet
    assert result.snippet.startswith("…") and len(result.snippet) < 400
    assert str(result.title) == "Markup"


def test_no_one_else_s_and_no_deleted_conversation_is_found(alice: Any, bob: Any) -> None:
    _conversation(bob, "Secret", "the secret recipe")
    gone, _ = _conversation(alice, "Gone", "another secret")
    Conversation.objects.filter(pk=gone.pk).update(deleted_at="2026-01-01T00:00:00Z")
    assert _found(alice, "secret") == []
    assert _found(bob, "secret") != []


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "!!! ??? ...",
        "x" * 1000,
        "word " * 200,
        "'; DROP TABLE chat_message; --",
        "a & b | !c <-> d:*",  # tsquery operators are words to plainto_tsquery
        "\\x00 %_ [abc]",
    ],
)
def test_any_query_text_is_only_words(alice: Any, query: str) -> None:
    _conversation(alice, "Kept", "drop table of contents, a b c d")
    search.search(owner_id=alice.pk, query=query)  # never an error
    assert Message.objects.count() == 1
    assert len(search.words_of(query)) <= search.MAX_WORDS


@settings(max_examples=30, deadline=None)
@given(
    texts=st.lists(
        st.lists(st.sampled_from(["alpha", "beta", "gamma", "Delta", "x-ray", "e_mail", "ü"])).map(
            " ".join
        ),
        min_size=1,
        max_size=6,
    ),
    query=st.lists(st.sampled_from(["alpha", "BETA", "delta", "ray", "mail", "ü"]), min_size=1).map(
        " ".join
    ),
)
def test_plain_words_find_what_a_reader_would(texts: list[str], query: str) -> None:
    """The same rule on both databases: a message is found when it holds every word."""
    from django.contrib.auth import get_user_model

    person = get_user_model().objects.create_user(f"searcher{next(_people)}")
    conversation, made = _conversation(person, "t", *texts)
    words = search.words_of(query)
    expected = [m.pk for m in made if all(w in search.words_of(m.content) for w in words)]
    found = _found(person, query)
    assert found == ([(conversation.pk, max(expected))] if expected else [])
    Conversation.objects.filter(owner=person).delete()


def test_the_list_page_searches_and_a_result_opens_at_its_message_on_its_branch(
    alice: Any,
) -> None:
    conversation, (ask, first) = _conversation(alice, "Versions", "Question", "first answer")
    second = Message.objects.create(
        conversation=conversation, role="assistant", content="second answer", parent=ask
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=second)
    client = Client()
    client.force_login(alice)
    page = client.get("/chat/", {"q": "FIRST answer"}).content.decode()
    link = f"/chat/{conversation.pk}/?at={first.pk}#m-{first.pk}"
    assert link.replace("&", "&amp;") in page or link in page
    assert "<mark>first</mark> <mark>answer</mark>" in page
    opened = client.get(f"/chat/{conversation.pk}/", {"at": first.pk}).content.decode()
    assert f'id="m-{first.pk}"' in opened and "message--found" in opened
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == first.pk  # its branch is the current one now
    nothing = client.get("/chat/", {"q": "nowhere"}).content.decode()
    assert "Nothing in your conversations has this word." in nothing
