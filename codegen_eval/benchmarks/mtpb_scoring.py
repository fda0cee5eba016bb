"""MTPB scoring: the in-sandbox checker (the authors' comparison and a strict one) and its verdict parser.

`build_program` wraps one MTPB program in a checker that runs it as the authors' checker did (last top-level
statement wrapped in `print`, `print` intercepted, exceptions swallowed) and writes verdict lines, tagged with
a per-job nonce, to the process's real stdout as prints happen; `parse_verdict` reads them back.

The checker is the block between the SANDBOX CHECKER markers below. It is this module's own implementation
(so `reference_equal` and `strict_equal` are unit-tested directly) and, copied verbatim by `build_program`,
the code that runs in the sandbox: one implementation, not two. The block uses the standard library only;
numpy and pandas are looked up in `sys.modules`, since a value can only be a numpy or pandas object if the
program imported them.

Two verdicts for the value of the last print:
- reference: the authors' `check_equivalence`, quirks included (see `reference_equal`), with one intended
  fix: a pandas Series is recognised by its type, not by the type name pandas < 3 printed, so on
  pandas >= 3 it still gets the tolerant array comparison the authors meant. A right value printed
  before a crash or a hang passes, as theirs did.
- strict: the benchmark's known defects fixed (see `strict_equal`), and the program must also finish without
  an exception and exit cleanly.
"""

from __future__ import annotations

# ---- BEGIN SANDBOX CHECKER ----------------------------------------------------------------------------
# Copied verbatim into every sandbox program by build_program. Standard library only; self-contained.
import ast
import json
import math
import os
import reprlib
import sys
from typing import Any

_FLOAT_TOLERANCE = 1e-6  # the authors' absolute tolerance for float golds
_STRICT_REL_TOLERANCE = 1e-9  # strict only: golds like 7e+100 are beyond any absolute tolerance
_REPR_CHARS = 200
_MAX_DEPTH = 100  # strict comparison of nested values; deeper (or cyclic) values fail


def reference_equal(value: object, gold: object) -> bool:
    """The authors' comparison of the printed value with the gold (mtpb_exec.check_equivalence).

    1. Normalise the value (one rule at most, in this order): a pandas Series becomes an array and so does the
       gold; a list whose first element is a tuple becomes a list of lists; numpy uint8/int16/int32/int64 ->
       int, float16/32/64 -> float, bool_ -> bool; ndarray -> list.
    2. If the types differ: against a bool gold compare str(value) with str(gold); otherwise cast the value to
       the gold's type (so 16.7 against 16 becomes 16 and passes, and '7980' against 7980 passes).
    3. == for str, int, set, list, bool, tuple; abs(v - g) < 1e-6 for float; numpy.allclose for arrays. Any
       other type (dict, None) cannot pass.
    Anything that raises on the way (a failed cast, an ambiguous truth value) is a fail, as it was for them.
    """
    try:
        return bool(_reference_compare(value, gold))
    except Exception:
        return False


def _reference_compare(o1: Any, o2: Any) -> Any:
    np: Any = sys.modules.get("numpy")
    pd: Any = sys.modules.get("pandas")
    # The authors tested str(type(o1)) == "<class 'pandas.core.series.Series'>", which pandas >= 3 no longer
    # prints ("<class 'pandas.Series'>"); testing the type itself keeps the behaviour they meant.
    if pd is not None and type(o1) is pd.Series:
        o1 = o1.to_numpy()
        o2 = np.array(o2)
    elif type(o1) is list:
        if len(o1) > 0 and type(o1[0]) is tuple:
            o1 = [list(t) for t in o1]
    elif np is not None and type(o1) in (np.uint8, np.int16, np.int32, np.int64):
        o1 = int(o1)
    elif np is not None and type(o1) in (np.float16, np.float32, np.float64):
        o1 = float(o1)
    elif np is not None and type(o1) is np.bool_:
        o1 = bool(o1)
    elif np is not None and type(o1) is np.ndarray:
        o1 = o1.tolist()

    if type(o1) is not type(o2):
        if type(o2) is bool:
            o1, o2 = str(o1), str(o2)  # bool("False") is True, so they compared in string space
        else:
            o1 = type(o2)(o1)

    kind = type(o1)
    if kind in (str, int, set, list, bool, tuple):
        return o1 == o2
    if kind is float:
        return abs(o1 - o2) < _FLOAT_TOLERANCE
    if np is not None and kind is np.ndarray:
        return np.allclose(o1, o2)
    return False  # they raised "Unsupported type", which their caller scored as a fail


def strict_equal(value: object, gold: object) -> bool:
    """The comparison with the benchmark's defects fixed. The gold is JSON, so it is None, bool, int, float,
    str, list or dict.

    - The value is first made plain, recursively: numpy scalars and arrays, pandas Series and Index become
      Python scalars and lists; tuples become lists (JSON has no tuples).
    - None and dict golds compare by deep equality (the authors' checker could never pass them); dict keys
      must be the gold's string keys.
    - Numbers compare with tolerance (abs 1e-6, or relative 1e-9 for large magnitudes), also inside lists and
      dicts; an int gold accepts a float only when it is that integer within tolerance (not a truncated 16.7).
    - bool is not a number: True does not equal 1, inside containers or out.
    - No casts: a str is not a list of characters, a set or a dict is not a list. At the top level only, a
      str that prints exactly like the gold passes ('7980' for 7980, 'None' for None, 'True' for True; a
      float gold accepts a str that parses to it within tolerance), since the task asks for printed output.
    - A str gold is compared as the authors did (str of the normalised value), which has no known defect.
    """
    try:
        if isinstance(gold, str):
            return reference_equal(value, gold)
        return _strict_top(_plain(value, 0), gold)
    except Exception:
        return False


def _plain(v: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError("value nested too deeply")
    np: Any = sys.modules.get("numpy")
    pd: Any = sys.modules.get("pandas")
    if isinstance(v, (list, tuple)):
        return [_plain(x, depth + 1) for x in v]
    if isinstance(v, dict):
        return {_plain_key(k): _plain(x, depth + 1) for k, x in v.items()}
    if np is not None:
        if isinstance(v, np.ndarray):
            return _plain(v.tolist(), depth + 1)
        if isinstance(v, np.generic):
            return v.item()
    if pd is not None and isinstance(v, (pd.Series, pd.Index)):
        return _plain(v.tolist(), depth + 1)
    return v


def _plain_key(k: Any) -> Any:
    np: Any = sys.modules.get("numpy")
    return k.item() if np is not None and isinstance(k, np.generic) else k


def _strict_top(v: Any, g: Any) -> bool:
    if g is None:
        return v is None or (isinstance(v, str) and v == "None")
    if isinstance(g, bool):
        if isinstance(v, bool):
            return v is g
        return isinstance(v, str) and v == str(g)
    if isinstance(v, str) and isinstance(g, int):
        return v == str(g)
    if isinstance(v, str) and isinstance(g, float):
        try:
            return _close(float(v), g)
        except ValueError:
            return False
    return _strict_inner(v, g, 0)


def _strict_inner(v: Any, g: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if g is None:
        return v is None
    if isinstance(g, bool):
        return isinstance(v, bool) and v is g
    if isinstance(g, (int, float)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if isinstance(g, int) and isinstance(v, int):
            return v == g
        return _close(v, g)
    if isinstance(g, str):
        return isinstance(v, str) and v == g
    if isinstance(g, list):
        return (
            isinstance(v, list)
            and len(v) == len(g)
            and all(_strict_inner(a, b, depth + 1) for a, b in zip(v, g, strict=True))
        )
    if isinstance(g, dict):
        return (
            isinstance(v, dict)
            and len(v) == len(g)
            and all(isinstance(k, str) and k in g and _strict_inner(x, g[k], depth + 1) for k, x in v.items())
        )
    return False


def _close(v: float, g: float) -> bool:
    return math.isclose(v, g, rel_tol=_STRICT_REL_TOLERANCE, abs_tol=_FLOAT_TOLERANCE)


def rewrite_last_statement(tree: ast.Module) -> ast.Module:
    """The authors' rewrite: unless the last top-level statement's value is a call of a name starting with
    "print", wrap that value in print(...). `x = f()` becomes `x = print(f())`, as in theirs; a statement
    without a value (for, if, def, ...) is left as is. Modifies and returns `tree`."""
    if not tree.body:
        return tree
    last = tree.body[-1]
    value = getattr(last, "value", None)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id.startswith("print"):
        return tree
    if isinstance(value, ast.expr):
        call = ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[value], keywords=[])
        ast.copy_location(call, value)
        setattr(last, "value", call)  # noqa: B010 - `stmt` has no declared `value`; the subclasses that do vary
        ast.fix_missing_locations(tree)
    return tree


def short_repr(value: object) -> str:
    """A repr of at most 200 characters, cheap even for huge containers; never raises."""
    try:
        shortener = reprlib.Repr()
        shortener.maxstring = shortener.maxother = _REPR_CHARS
        shortener.maxlist = shortener.maxtuple = shortener.maxset = shortener.maxdict = 20
        text = shortener.repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= _REPR_CHARS else text[: _REPR_CHARS - 3] + "..."


class _Swallow:
    """Stands in for sys.stdout while the program runs: the authors captured printed text and discarded it."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def run_checked(program: str, gold_json: str, nonce: str) -> None:
    """Run one MTPB program under the authors' rules and report on the real stdout, one line each:

        <nonce> V {"printed": true, "reference": ..., "strict": ..., "value": repr}   the verdict changed
        <nonce> END {... final state ...}            the program finished (a clean sys.exit counts)
        <nonce> ERR {... final state, "error": name, "phase": "parse"|"compile"|"run"}   it did not

    V lines are written as prints happen (only when the pair of verdicts changes, so a loop of prints cannot
    flood the output), so a program that prints the right value and then hangs is still scored when the
    sandbox kills it. Each line starts on a fresh line, whatever the program wrote before.
    """
    # Keep a private handle on the real stdout before the program can replace, close or redirect it.
    out_fd = os.dup(1)
    dumps = json.dumps
    write = os.write
    gold = json.loads(gold_json)
    builtin_print = print

    def emit(tag: str, payload: dict[str, object]) -> None:
        data = f"\n{nonce} {tag} {dumps(payload)}\n".encode("utf-8", "backslashreplace")
        try:
            while data:
                data = data[write(out_fd, data) :]
        except OSError:
            pass  # the program closed our descriptor; the missing END fails the strict verdict

    state: dict[str, Any] = {"printed": False, "has_arg": False, "value": None, "strict": False}
    last_key: list[tuple[bool, bool] | None] = [None]
    busy = [False]

    def snapshot(reference: bool) -> dict[str, object]:
        if not state["printed"]:
            return {"printed": False, "reference": False, "strict": False, "value": ""}
        shown = short_repr(state["value"]) if state["has_arg"] else "<print() without arguments>"
        return {"printed": True, "reference": reference, "strict": state["strict"], "value": shown}

    def report(reference: bool) -> None:
        key = (reference, bool(state["strict"]))
        if key != last_key[0]:
            last_key[0] = key
            emit("V", snapshot(reference))

    def intercepted_print(*args: Any, **kwargs: Any) -> Any:
        # Record first and then print into the swallowed stdout, as the authors' overload did; prints made
        # while a value is being compared (a __str__ or __eq__ that prints) are not the program's output.
        if not busy[0]:
            busy[0] = True
            try:
                state["printed"] = True
                state["has_arg"] = bool(args)
                state["value"] = args[0] if args else None
                reference = reference_equal(args[0], gold) if args else False
                state["strict"] = strict_equal(args[0], gold) if args else False
                report(reference)
            finally:
                busy[0] = False
        return builtin_print(*args, **kwargs)

    def final_reference() -> bool:
        # The authors compared after the program ended, so a printed object mutated later counts as mutated.
        if not (state["printed"] and state["has_arg"]):
            return False
        busy[0] = True
        try:
            return reference_equal(state["value"], gold)
        finally:
            busy[0] = False

    try:
        tree = rewrite_last_statement(ast.parse(program))
    except BaseException as e:  # SyntaxError, ValueError (NUL bytes), RecursionError, MemoryError
        emit("ERR", {**snapshot(False), "error": type(e).__name__, "phase": "parse"})
        return
    try:
        code = compile(tree, "<mtpb program>", "exec", dont_inherit=True)
    except BaseException as e:  # e.g. 'return' outside function
        emit("ERR", {**snapshot(False), "error": type(e).__name__, "phase": "compile"})
        return

    namespace: dict[str, Any] = {"__name__": "__main__", "print": intercepted_print}
    error: str | None = None
    sys.stdout = _Swallow()
    try:
        exec(code, namespace)
    except SystemExit as e:
        if e.code not in (None, 0):
            error = f"SystemExit({e.code!r})"
    except BaseException as e:  # the authors swallowed exceptions; the value printed so far still counts
        error = type(e).__name__
    reference = final_reference()
    report(reference)
    if error is None:
        emit("END", snapshot(reference))
    else:
        emit("ERR", {**snapshot(reference), "error": error, "phase": "run"})


# ---- END SANDBOX CHECKER ------------------------------------------------------------------------------

import functools  # noqa: E402 - host-only imports follow the block above, which must stand alone
import inspect  # noqa: E402
import re  # noqa: E402
from dataclasses import dataclass  # noqa: E402

_BLOCK = re.compile(r"^# ---- BEGIN SANDBOX CHECKER -+\n(.*?)^# ---- END SANDBOX CHECKER -+$", re.M | re.S)
_NONCE = re.compile(r"\S{1,256}")


@dataclass(frozen=True, slots=True)
class MtpbVerdict:
    """What the checker reported for one program."""

    reference: bool  # the authors' verdict: the last print's value passes their comparison
    strict: bool  # the strict comparison passes and the program finished and exited cleanly
    printed: bool  # print was called at least once
    finished: bool  # the program ran to its end without an exception
    detail: str  # "passed", "no print", "wrong value: 16.7", "syntax error", "crashed after print: X", ...


@functools.cache
def checker_source() -> str:
    """The SANDBOX CHECKER block of this module's own source."""
    match = _BLOCK.search(inspect.getsource(sys.modules[__name__]))
    if match is None:  # pragma: no cover - only if this file was edited without its markers
        raise RuntimeError("mtpb_scoring: the SANDBOX CHECKER block is missing from the module source")
    return match.group(1)


def build_program(program: str, gold: object, nonce: str) -> str:
    """The full Python source to run in the sandbox for one (problem, test case) program."""
    if not _NONCE.fullmatch(nonce):
        raise ValueError(f"nonce must be 1-256 non-space characters, got {nonce!r}")
    gold_json = json.dumps(gold)
    return (
        '"""MTPB checker (generated by codegen_eval.benchmarks.mtpb_scoring)."""\n\n'
        "from __future__ import annotations\n\n"
        f"{checker_source()}\n"
        f"run_checked({program!r}, {gold_json!r}, {nonce!r})\n"
    )


def parse_verdict(stdout: str, nonce: str, exited_ok: bool) -> MtpbVerdict:
    """Read the checker's lines from a program's stdout. Lines not starting with the nonce are the program's
    own output and are ignored; the last state line wins. `exited_ok`: the process exited with status 0."""
    prefix = f"{nonce} "
    final: dict[str, Any] | None = None
    finished = False
    error: str | None = None
    phase: str | None = None
    for line in stdout.splitlines():
        if not line.startswith(prefix):
            continue
        tag, _, payload = line[len(prefix) :].partition(" ")
        if tag not in ("V", "END", "ERR"):
            continue
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        final = data
        if tag == "END":
            finished = True
        elif tag == "ERR":
            error = str(data.get("error", "error"))
            phase = str(data.get("phase", "run"))

    if phase in ("parse", "compile"):
        return MtpbVerdict(False, False, False, False, "syntax error")
    printed = bool(final and final.get("printed"))
    reference = printed and bool(final and final.get("reference"))
    value_strict = printed and bool(final and final.get("strict"))
    strict = value_strict and finished and exited_ok
    return MtpbVerdict(
        reference,
        strict,
        printed,
        finished,
        _detail(final, printed, reference, value_strict, finished, error, exited_ok),
    )


def _detail(
    final: dict[str, Any] | None,
    printed: bool,
    reference: bool,
    value_strict: bool,
    finished: bool,
    error: str | None,
    exited_ok: bool,
) -> str:
    if final is None:
        return "no verdict from the checker" + ("" if exited_ok else " (the process did not exit cleanly)")
    if error is not None:
        ending = f"crashed after print: {error}" if printed else f"crashed: {error}"
    elif not finished:
        ending = "did not finish after print" if printed else "did not finish"
    elif not exited_ok:
        ending = "did not exit cleanly"
    else:
        ending = ""
    if not printed:
        parts = ["no print", ending]
    else:
        value = str(final.get("value", ""))
        if reference and value_strict:
            parts = [ending or "passed"]
        elif not reference and not value_strict:
            parts = [f"wrong value: {value}", ending]
        elif reference:
            parts = [f"wrong value (strict): {value}", ending]
        else:
            parts = [f"wrong value (reference): {value}", ending]
    return "; ".join(p for p in parts if p)
