"""Chat (instruct-model) mode: the fixed system instruction and code extraction from a reply."""

from __future__ import annotations

import re

SYSTEM_INSTRUCTION = "You are an expert Python programmer. Answer with Python code in a single ```python code block."

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(reply: str) -> str:
    """The first fenced block tagged python (or untagged), else the first fenced block, else the whole reply."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(reply)]
    for lang, body in blocks:
        if lang in ("python", "py", "python3", ""):
            return body
    if blocks:
        return blocks[0][1]
    return reply
