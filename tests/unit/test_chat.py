"""Code extraction from chat replies (codegen_eval.chat)."""

from __future__ import annotations

import pytest

from codegen_eval.chat import SYSTEM_INSTRUCTION, extract_code


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        # the python block wins, even after another block
        (
            "Try:\n```bash\npip install x\n```\nthen\n```python\ndef f():\n    return 1\n```\nDone.",
            "def f():\n    return 1\n",
        ),
        ("```py\nx = 1\n```", "x = 1\n"),
        ("```Python3 title=solution.py\nx = 2\n```\n", "x = 2\n"),
        # untagged blocks count as Python
        ("Here:\n```\ny = 3\n```\nand\n```\nz = 4\n```", "y = 3\n"),
        ("```text\nout\n```\n```\nq = 1\n```", "q = 1\n"),
        # no python block: the first fenced block of any kind
        ("```text\nw = 5\n```\n```bash\nls\n```", "w = 5\n"),
        # an unclosed block (the budget ran out) runs to the end of the reply
        ("```python\ndef g():\n    return [", "def g():\n    return ["),
        # a longer fence can contain a shorter one
        ("````python\ns = '''\n```\n'''\n````", "s = '''\n```\n'''\n"),
        # tilde fences
        ("~~~python\nt = 6\n~~~", "t = 6\n"),
        # no fence at all: the whole reply
        ("def h():\n    pass\n", "def h():\n    pass\n"),
        ("", ""),
        # a fence that does not start a line is not a fence
        ("use ```python\nx``` inline", "use ```python\nx``` inline"),
    ],
)
def test_extract_code(reply: str, code: str) -> None:
    assert extract_code(reply) == code


def test_the_instruction_asks_for_a_python_block() -> None:
    assert "```python" in SYSTEM_INSTRUCTION
