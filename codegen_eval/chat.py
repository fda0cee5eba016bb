"""Chat (instruct-model) mode: the fixed system instruction and code extraction from a reply."""

from __future__ import annotations

import re

SYSTEM_INSTRUCTION = "You are an expert Python programmer. Answer with Python code in a single ```python code block."

# An opening fence at the start of a line: ``` or ~~~ (3 or more), then an optional info string.
_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n", re.MULTILINE)
_PYTHON_TAGS = frozenset({"python", "py", "python3", "py3", ""})  # untagged blocks are taken for Python


def extract_code(reply: str) -> str:
    """The first fenced block tagged python (or untagged), else the first fenced block, else the whole reply.

    A block the model never closed (it ran out of tokens) runs to the end of the reply. A closing fence is
    the opening one's character, at least as long, alone on its line, so a block may quote a shorter fence.
    """
    blocks: list[tuple[str, str]] = []  # (language tag, body)
    pos = 0
    while (opening := _OPEN.search(reply, pos)) is not None:
        fence = opening.group("fence")
        tag = (opening.group("info").split() or [""])[0].lower()
        body_start = opening.end()
        closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE).search(reply, body_start)
        if closing is None:
            blocks.append((tag, reply[body_start:]))
            break
        # The body ends at the newline before the closing fence (kept: code ends with a newline).
        blocks.append((tag, reply[body_start : closing.start()]))
        pos = closing.end()
    for tag, body in blocks:
        if tag in _PYTHON_TAGS:
            return body
    if blocks:
        return blocks[0][1]
    return reply
