"""Text that reaches a person: suggested commands and terminal-safe rendering.

Names, annotations and messages come from the cluster or from manifests,
so they are untrusted: a suggested command is built word by word and quoted
(`command`), never by pasting values into a string, so copying a hint can
never run something else; and text output never carries a control
character from them (`printable`), so no object can clear the screen, move
the cursor or forge a line of its own.
"""

from __future__ import annotations

import re
import shlex

# C0 (but tab) and C1 controls, DEL, and the Unicode format characters that reorder or hide
# text (bidirectional overrides and isolates, zero-width characters, BOM).
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """`text` with every control character shown as an escape (\\e, \\n, \\x07, \\u202e);
    with keep_newlines, line breaks (the renderer's own) stay."""
    value = str(text)
    if keep_newlines:
        return "\n".join(_UNPRINTABLE.sub(_escape, line) for line in value.split("\n"))
    return _UNPRINTABLE.sub(_escape, value)


def quote(word: object) -> str:
    """One shell word: as shlex.quote, but a word with control characters is written
    in ANSI-C quoting ($'...'), so it stays on one line and means exactly itself."""
    value = str(word)
    if not _UNPRINTABLE.search(value):
        return shlex.quote(value)
    body = _UNPRINTABLE.sub(_escape, value.replace("\\", "\\\\").replace("'", "\\'"))
    return f"$'{body}'"


def command(*words: object) -> str:
    """A command line to show or suggest, each word quoted as needed."""
    return " ".join(quote(w) for w in words)
