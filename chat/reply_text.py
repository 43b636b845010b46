"""A reply's growing text: the whole of it, its length in code points (the contract's offsets),
and what each audience (this process's sockets, other workers) has not yet been sent."""

from __future__ import annotations


class ReplyText:
    """One growing text (answer or thinking) and what each audience has not yet been sent."""

    __slots__ = ("length", "local", "local_from", "parts", "remote", "remote_from")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0  # in code points, as the contract's offsets are
        self.local: list[str] = []
        self.local_from = 0
        self.remote: list[str] = []
        self.remote_from = 0

    def add(self, text: str, remote: bool) -> None:
        # A pending buffer that starts empty starts at the current end of the text.
        if not self.local:
            self.local_from = self.length
        self.local.append(text)
        if remote:
            if not self.remote:
                self.remote_from = self.length
            self.remote.append(text)
        self.parts.append(text)
        self.length += len(text)

    def value(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def peek(self) -> str:
        """The text so far, safe to call from another thread (never mutates)."""
        return "".join(list(self.parts))

    def take_local(self) -> tuple[int, str] | None:
        if not self.local:
            return None
        taken = (self.local_from, "".join(self.local))
        self.local.clear()
        return taken

    def take_remote(self) -> tuple[int, str] | None:
        if not self.remote:
            return None
        taken = (self.remote_from, "".join(self.remote))
        self.remote.clear()
        return taken
