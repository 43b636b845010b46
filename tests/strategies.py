"""Named hypothesis strategies shared by the property tests."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

# Any text a model could stream: every Unicode category but surrogates, and no NUL (which no
# database column can hold; the runner replaces it, see chat.frames.clean_text).
reply_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=400,
)

emoji_heavy_text = st.text(alphabet=st.sampled_from("a é 漢 👍 👩‍👩‍👧 🇫🇷 \u0301 \n"), min_size=1)


@st.composite
def delta_splits(draw: st.DrawFn, text: st.SearchStrategy[str] = reply_text) -> list[str]:
    """A text cut into random non-empty deltas (how a provider might stream it)."""
    whole = draw(text)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(whole) - 1)), max_size=40)))
    bounds = [0, *[c for c in cuts if c < len(whole)], len(whole)]
    return [whole[a:b] for a, b in itertools.pairwise(bounds) if whole[a:b]]


requested_max_tokens = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63))


@st.composite
def byte_splits(draw: st.DrawFn, whole: bytes) -> list[bytes]:
    """`whole` cut into random pieces (how the network might deliver a body)."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(whole) - 1)), max_size=30)))
    bounds = [0, *[c for c in cuts if c < len(whole)], len(whole)]
    return [whole[a:b] for a, b in itertools.pairwise(bounds)]


# A server-sent event as a provider might send it: an optional name, data lines (any text
# without line breaks, JSON being one such text) and an optional comment before it.
sse_line_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"),
    max_size=40,
)
sse_events = st.lists(
    st.tuples(
        st.one_of(st.just(""), st.from_regex(r"[a-z_]{1,20}", fullmatch=True)),
        st.lists(sse_line_text, min_size=1, max_size=3),
        st.one_of(st.none(), sse_line_text),
    ),
    max_size=12,
)
sse_line_ends = st.sampled_from(["\n", "\r\n", "\r"])
