"""JUnit XML for the CI gate (`codegen-eval check --junit`)."""

from __future__ import annotations

import datetime as dt
import platform
import xml.etree.ElementTree as ET
from collections import Counter

from codegen_eval.compare import LoadedRun
from codegen_eval.summaries import GateResult


def junit_xml(run: LoadedRun, result: GateResult, baseline: LoadedRun | None = None) -> str:
    """JUnit XML: a `gate` suite with the regression check, and one test case per problem item of the run.

    An item is a failure when none of its samples passed under the gate's scorer (with n = 1: it did not pass).
    The outcome names the failure type; `failed` is a <failure>, any other outcome (error, timeout, …) an <error>,
    so CI systems count wrong answers and crashes separately. The baseline's status of the item goes to system-out.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    host = platform.node() or "localhost"
    root = ET.Element("testsuites", name="codegen-eval")

    gate_suite = ET.SubElement(
        root,
        "testsuite",
        name="codegen-eval.gate",
        tests="1",
        failures=str(int(result.failed)),
        errors="0",
        skipped="0",
        time="0",
        timestamp=stamp,
        hostname=host,
    )
    case = ET.SubElement(
        gate_suite,
        "testcase",
        classname="codegen-eval.gate",
        name=f"{result.metric} ({result.scorer}) vs baseline, max drop {100 * result.max_drop:.2f} pp",
        time="0",
    )
    if result.failed:
        ET.SubElement(case, "failure", message=result.explanation[:200], type="regression").text = result.explanation
    ET.SubElement(case, "system-out").text = result.explanation

    counts = run.counts[result.scorer]
    suite = ET.SubElement(root, "testsuite", name=run.bench, timestamp=stamp, hostname=host)
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("model", run.model),
        ("n", str(run.n)),
        ("scorer", result.scorer),
        ("config_hash", run.summary.config_hash or ""),
        ("run", str(run.path)),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    failures = errors = 0
    total_time = 0.0
    base_counts = baseline.counts.get(result.scorer) if baseline is not None else None
    for item, (n, c) in counts.items():
        group = run.groups[item][0]
        records = run.executions.get(item, ()) if run.executions is not None else ()
        seconds = sum(r.duration_s for r in records)
        total_time += seconds
        classname = run.bench if group == item else group
        tc = ET.SubElement(suite, "testcase", classname=classname, name=item, time=f"{seconds:.3f}")
        outcomes = Counter(r.outcome.value for r in records)
        if c == 0:
            # The most common outcome among the samples; without executions.jsonl all we know is "failed".
            outcome = outcomes.most_common(1)[0][0] if outcomes else "failed"
            detail = next((r.detail for r in records if r.outcome.value == outcome and r.detail), "")
            tail = next((r.stderr_tail for r in records if r.outcome.value == outcome and r.stderr_tail), "")
            message = f"{outcome}: {detail}" if detail else outcome
            if n > 1:
                message += f" (0/{n} samples passed)"
            tag = "failure" if outcome == "failed" else "error"
            failures += tag == "failure"
            errors += tag == "error"
            ET.SubElement(tc, tag, message=message, type=outcome).text = tail or message
        out = []
        if n > 1 or c < n:
            seen = ", ".join(f"{o} {k}" for o, k in outcomes.items())
            out.append(f"{c}/{n} samples passed" + (f": {seen}" if outcomes else ""))
        if base_counts is not None:
            if item in base_counts:
                bn, bc = base_counts[item]
                status = "passed" if bc == bn else "failed" if bc == 0 else f"{bc}/{bn} passed"
                change = " (regression)" if bc > 0 and c == 0 else " (fixed)" if bc == 0 and c > 0 else ""
                out.append(f"baseline: {status}{change}")
            else:
                out.append("baseline: not present")
        if out:
            ET.SubElement(tc, "system-out").text = "\n".join(out)
    suite.attrib.update(
        tests=str(len(counts)), failures=str(failures), errors=str(errors), skipped="0", time=f"{total_time:.3f}"
    )
    root.set("tests", str(len(counts) + 1))
    root.set("failures", str(failures + int(result.failed)))
    root.set("errors", str(errors))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
