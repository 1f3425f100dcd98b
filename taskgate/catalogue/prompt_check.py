"""B8 prompt checker: finds a banned keyword in a prompt (case-insensitive, whole words only)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable


class PromptChecker:
    """Matches any of ``words``; a multi-word phrase matches with any whitespace between its words."""

    def __init__(self, words: Iterable[str]) -> None:
        cleaned = sorted({w.strip().lower() for w in words if w.strip()}, key=lambda w: (-len(w), w))
        self.words: tuple[str, ...] = tuple(cleaned)
        alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in cleaned)
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if cleaned else None

    def find(self, text: str) -> str | None:
        """The banned word in ``text`` (as listed), or ``None``."""
        if self._pattern is None or not text:
            return None
        match = self._pattern.search(text)
        return " ".join(match[0].lower().split()) if match else None


def parse_banned_words(text: str, source: str) -> tuple[str, ...]:
    """The ``words = [...]`` list of a banned-words TOML document; ``ValueError`` naming ``source``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{source}: not valid TOML: {e}") from e
    words = doc.get("words")
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise ValueError(f"{source}: 'words' must be a list of non-empty strings")
    return tuple(words)
