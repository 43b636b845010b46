from __future__ import annotations

from collections.abc import Iterator

import pytest

from chat import retry


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """A fake clock: the runner's retry waits are recorded, not slept."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(retry, "sleep", fake_sleep)
    yield recorded
