"""Hostile websocket handshakes, shared by the consumer tests and the real-daphne tests."""

from __future__ import annotations

# The origin check refuses before the app runs: daphne answers the upgrade with HTTP 403.
ORIGIN_REFUSED = 403
SAME_ORIGIN = b"http://127.0.0.1:8000"
# The Host header of the test communicator's handshakes (a real server's is its own address).
HOST = b"127.0.0.1:8000"

# (name, origin header or None, whose session: "owner" | "other" | None, which conversation,
#  expected: None = open, ORIGIN_REFUSED, or the app's close code)
HANDSHAKES: list[tuple[str, bytes | None, str | None, str, int | None]] = [
    ("same origin, owner", SAME_ORIGIN, "owner", "own", None),
    ("no origin", None, "owner", "own", ORIGIN_REFUSED),
    ("null origin", b"null", "owner", "own", ORIGIN_REFUSED),
    ("foreign origin", b"http://evil.example", "owner", "own", ORIGIN_REFUSED),
    ("look-alike suffix", b"http://127.0.0.1.evil.example", "owner", "own", ORIGIN_REFUSED),
    ("look-alike prefix", b"http://evil-127.0.0.1", "owner", "own", ORIGIN_REFUSED),
    ("userinfo trick", b"http://127.0.0.1@evil.example", "owner", "own", ORIGIN_REFUSED),
    ("file origin", b"file://", "owner", "own", ORIGIN_REFUSED),
    (
        "backslash user info",
        b"http://evil.example\\@127.0.0.1:8000",
        "owner",
        "own",
        ORIGIN_REFUSED,
    ),
    ("javascript scheme", b"javascript://127.0.0.1:8000", "owner", "own", ORIGIN_REFUSED),
    ("websocket scheme", b"ws://127.0.0.1:8000", "owner", "own", ORIGIN_REFUSED),
    ("another port", b"http://127.0.0.1:9", "owner", "own", ORIGIN_REFUSED),
    ("another allowed host", b"http://localhost:8000", "owner", "own", ORIGIN_REFUSED),
    ("origin with a path", b"http://127.0.0.1:8000/chat/", "owner", "own", ORIGIN_REFUSED),
    ("origin with a dot after", b"http://127.0.0.1.:8000", "owner", "own", ORIGIN_REFUSED),
    ("port out of range", b"http://127.0.0.1:99999", "owner", "own", ORIGIN_REFUSED),
    ("anonymous", SAME_ORIGIN, None, "own", 4401),
    ("another person", SAME_ORIGIN, "other", "own", 4404),
    ("missing conversation", SAME_ORIGIN, "owner", "missing", 4404),
]
