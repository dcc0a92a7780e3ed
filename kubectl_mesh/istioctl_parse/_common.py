"""Shared plumbing of the istioctl parsers: lazily compiled regexes, input lines, JSON round trip."""

from __future__ import annotations

import json
import re


class _lazy:
    """A regular expression compiled on first use, so that importing stays cheap."""

    __slots__ = ("_compiled", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled = None

    def __getattr__(self, name: str):
        if self._compiled is None:
            self._compiled = re.compile(self._source)
        return getattr(self._compiled, name)


def _text_lines(text) -> list[str]:
    """Lines of whatever was passed, with line ends and trailing blanks removed."""
    if text is None:
        return []
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return []
    return [line.rstrip() for line in text.splitlines()]


def _plain(value):
    """A JSON round trip: de-aliases shared dicts and proves serialisability."""
    return json.loads(json.dumps(value))


def _split_list(value: str, sep: str = ",") -> list[str]:
    return [part.strip() for part in value.split(sep) if part.strip()]
