"""Chat (instruct) mode helpers: the fixed system instruction and code extraction from a reply."""

from __future__ import annotations

import re

# Sent as the system message when a request carries no messages of its own (HFBackend with chat=true).
SYSTEM_INSTRUCTION = (
    "You are an expert Python programmer. Complete the Python code the user gives you. "
    "Reply with the complete code (imports, signature and body) in a single ```python code block, "
    "and nothing else."
)

# An opening fence at the start of a line: ``` or ~~~ (3 or more), then an optional info string.
_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n", re.MULTILINE)
_PYTHON_TAGS = frozenset({"python", "py", "python3", "py3"})


def extract_code(reply: str) -> str:
    """The code in a chat reply: the first ```python block, else the first fenced block, else the whole reply.

    A block the model never closed (it ran out of tokens) runs to the end of the reply.
    """
    blocks: list[tuple[str, str]] = []  # (language tag, body)
    pos = 0
    while (opening := _OPEN.search(reply, pos)) is not None:
        fence = opening.group("fence")
        tag = opening.group("info").strip().split(" ")[0].lower()
        body_start = opening.end()
        # The closing fence: same character, at least as long, alone on its line.
        closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE).search(
            reply, body_start
        )
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
