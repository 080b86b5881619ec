"""Text that every database can store: no NUL (U+0000) and no unpaired surrogate (U+D800..U+DFFF alone).

PostgreSQL refuses NUL in ``text`` and ``jsonb`` values, and no UTF-8 encoder takes a lone surrogate, which
JSON can spell (``"\\ud800"``) though no Unicode text contains one. Requests are checked once, at the edge
(:class:`herewith.kit.asgi.TextGuard`; signaling frames in :func:`herewith.signaling.protocol.parse_client_message`),
so nothing below ever sees such a string.

Usage::

    text_problem("a\\x00b")                                 # 'must not contain NUL (U+0000)'
    find_bad_text({"events": ["ok", "x\\x00"]})             # ('events.1', 'must not contain NUL (U+0000)')
    may_hold_bad_text(b'{"a": "\\\\u0000"}')                 # True: worth decoding and checking
"""

from __future__ import annotations

import re
from typing import Any

NUL_PROBLEM = "must not contain NUL (U+0000)"
SURROGATE_PROBLEM = "must be valid Unicode text (an unpaired surrogate was sent)"

# In valid JSON text a NUL or a surrogate can only arrive as a \u escape (raw control characters are not
# allowed in JSON strings, and UTF-8 cannot carry surrogates). An escaped backslash before "u0000" matches too;
# the full check after decoding tells the two apart.
_ESCAPE_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_ESCAPE_TEXT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """What is wrong with ``value`` as stored text (:data:`NUL_PROBLEM` or :data:`SURROGATE_PROBLEM`), or None."""
    if "\x00" in value:
        return NUL_PROBLEM
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_PROBLEM
    return None


def may_hold_bad_text(raw: bytes | str) -> bool:
    """Whether JSON text ``raw`` may decode to a string with a NUL or an unpaired surrogate (a cheap
    pre-check: False means it cannot; True means decode it and ask :func:`find_bad_text`)."""
    if isinstance(raw, str):
        return _ESCAPE_TEXT.search(raw) is not None
    return _ESCAPE_BYTES.search(raw) is not None


def printable_name(key: str) -> str:
    """``key`` with NUL and surrogates written as ``\\uXXXX``, so an error can name a key that holds them."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def find_bad_text(value: Any, root: str = "body") -> tuple[str, str] | None:
    """The first string in a decoded JSON ``value`` (object keys included, depth first in document order) that
    :func:`text_problem` refuses, as ``(dotted path, problem)``; None when every string is fine.

    Paths are spelled as :mod:`herewith.errors` names fields: ``recording.destination.bucket``, ``events.0``;
    a bad key is named by itself (``metadata.a\\u0000b``); a bad top-level string by ``root``. Iterative, so
    any nesting ``json.loads`` produced is walked.
    """
    stack: list[tuple[tuple[str, ...], Any, bool]] = [((), value, False)]  # (path, node, node is a key)
    while stack:
        path, node, is_key = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                return (".".join(path) or root, problem)
        elif is_key:
            continue
        elif isinstance(node, dict):
            children: list[tuple[tuple[str, ...], Any, bool]] = []
            for key, child in node.items():
                name = (*path, printable_name(key))
                children += [(name, key, True), (name, child, False)]
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(((*path, str(i)), child, False) for i, child in reversed(list(enumerate(node))))
    return None
