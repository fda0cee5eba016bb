"""The HTML report in a real headless Chromium: loads offline with no console errors, shows its plots, leads from
a grid cell to the sample, and nothing overflows its card."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.cdp import Browser, find_chromium
from tests.conftest import run_cli
from tests.runfactory import StandardRuns, standard_runs

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (apt-get install -y --no-install-recommends chromium; CI installs it)",
    ),
]

# Colours the page must show: the grid's "passed" cells and the multi-turn bars (codegen_eval/plots.py).
PASSED_RGB = (0x2E, 0x9E, 0x5B)
MULTI_RGB = (0x2F, 0x5F, 0xB3)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> StandardRuns:
    return standard_runs(tmp_path_factory.mktemp("standard-runs"), data_dir)


def _count_pixels(png: Path, rgb: tuple[int, int, int]) -> int:
    from matplotlib.image import imread

    image = imread(png)  # floats in [0, 1], RGBA
    target = [c / 255 for c in rgb]
    close = (abs(image[..., 0] - target[0]) < 0.01) & (abs(image[..., 1] - target[1]) < 0.01)
    close &= abs(image[..., 2] - target[2]) < 0.01
    return int(close.sum())


def test_report_renders_in_chromium(runs: StandardRuns, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    r = run_cli("report", str(runs.ref), str(runs.broken), str(runs.mtpb_single), str(runs.mtpb_multi), "-o", str(page))
    assert r.returncode == 0, r.stderr
    assert CHROMIUM is not None
    shot = Path(os.environ.get("REPORT_SCREENSHOT", str(tmp_path / "report.png")))
    with Browser(CHROMIUM) as browser:
        browser.open_page(1280, 900)
        browser.load(page.as_uri())
        images = browser.evaluate(
            "[...document.images].map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,"
            " shown: i.getBoundingClientRect().width, alt: i.alt}))"
        )
        title = browser.evaluate("document.title")
        headings = browser.evaluate("[...document.querySelectorAll('h2')].map(h => h.textContent)")
        ready = browser.evaluate("document.body.dataset.viewerReady")
        rows = browser.evaluate("document.querySelectorAll('#v-rows tr').length")
        browser.screenshot(shot)
        problems = browser.problems()
        urls = browser.requested_urls()

    assert problems == []  # no console error, no CSP violation: the script ran because its hash is allowed
    assert title == "codegen-eval report"
    # Nothing but the page itself and its inline data: URIs was requested (the CSP forbids anything else).
    assert [u for u in urls if not u.startswith("data:image/png;base64,")] == [page.as_uri()]
    assert len(images) == 6, images  # five of the runs, one of the difficulty split (the pair allows it)
    for img in images:
        assert img["complete"] and img["w"] > 100 and img["h"] > 50 and img["shown"] > 100, img
    assert headings[:4] == ["Runs", "Models × benchmarks", "humaneval", "humaneval · Scores"]
    assert "mtpb · Single- vs multi-turn: pair/single vs pair/multi" in headings
    assert "humaneval · Per-problem outcomes" in headings and "mtpb · Per-problem outcomes" in headings
    # The viewer rendered its first page: the first run's 20 samples.
    assert ready == "1" and rows == 20
    # The screenshot shows the plots: grid cells in the passed colour and the multi-turn bars.
    assert shot.stat().st_size > 50_000
    assert _count_pixels(shot, PASSED_RGB) > 5_000
    assert _count_pixels(shot, MULTI_RGB) > 2_000


def _detail(browser: Browser) -> list[dict[str, Any]]:
    """What the viewer shows of the open sample(s): per pane its heading and its texts by kind."""
    value: list[dict[str, Any]] = browser.evaluate(
        "[...document.querySelectorAll('#v-detail .v-pane')].map(p => ({title: p.querySelector('h3').textContent,"
        " outcome: p.querySelector('.o-chip').textContent,"
        " prompt: [...p.querySelectorAll('pre.prompt')].map(e => e.textContent),"
        " raw: [...p.querySelectorAll('pre.raw')].map(e => e.textContent),"
        " completion: [...p.querySelectorAll('pre.completion')].map(e => e.textContent),"
        " test: [...p.querySelectorAll('pre.test')].map(e => e.textContent)}))"
    )
    return value


def test_a_grid_cell_leads_to_its_samples_and_a_flip_to_both_runs(runs: StandardRuns, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    args = (str(runs.ref), str(runs.broken), str(runs.mtpb_single), str(runs.mtpb_multi))
    r = run_cli("report", *args, "-o", str(page))
    assert r.returncode == 0, r.stderr
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as browser:
        browser.open_page(1280, 900)
        browser.load(page.as_uri())
        # Hovering names the problem; clicking the cell opens its sample.
        cell = "a.gcell[href='#problem=1/HumanEval%2F5']"
        assert browser.evaluate(f'document.querySelector("{cell}").title') == "HumanEval/5: error"
        browser.click(cell)
        browser.evaluate("new Promise(r => setTimeout(r, 100))")
        hash_ = browser.evaluate("location.hash")
        shown = _detail(browser)
        listed = browser.evaluate("[...document.querySelectorAll('#v-rows tr')].map(t => t.textContent)")
        in_view = browser.evaluate("document.getElementById('v-detail').getBoundingClientRect().top < innerHeight")
        # A flipped MTPB item: single- and multi-turn samples side by side, multi-turn prompts per turn.
        browser.click("details summary")  # the first flip list (humaneval: broken vs ref)
        browser.click("a[href='#pair=0/1/HumanEval%2F7']")
        browser.evaluate("new Promise(r => setTimeout(r, 100))")
        flip = _detail(browser)
        browser.evaluate("location.hash = '#pair=2/3/mtpb%2F3%2F1'")
        browser.evaluate("new Promise(r => setTimeout(r, 100))")
        turns = _detail(browser)
        problems = browser.problems()

    assert problems == []
    assert hash_ == "#problem=1/HumanEval%2F5"
    assert listed == ["HumanEval/50errorValueError"]
    assert in_view
    [pane] = shown
    assert pane["title"] == "broken · HumanEval/5 · sample 0" and pane["outcome"] == "error"
    assert pane["prompt"][0].startswith("from typing import List\n\n\ndef intersperse(")
    assert pane["raw"] == pane["completion"] == ["    raise ValueError('broken on purpose')\n"]
    assert "def check(candidate):" in pane["test"][0]
    assert [p["title"] for p in flip] == ["ref · HumanEval/7 · sample 0", "broken · HumanEval/7 · sample 0"]
    assert [p["outcome"] for p in flip] == ["passed", "timeout"]
    assert flip[1]["completion"] == ["    while True:\n        pass\n"]
    single, multi = turns
    assert (single["outcome"], multi["outcome"]) == ("failed", "passed")
    assert len(single["prompt"]) == 1 and len(multi["prompt"]) == len(multi["completion"]) == 3
    # Each later turn's prompt is the whole context: the earlier prompt and completion, then the new instruction.
    assert multi["prompt"][1].startswith(multi["prompt"][0] + multi["completion"][0])
    assert single["test"][0].startswith("run_checked(«the code under test», '3720', ")


OVERFLOW = """[...document.querySelectorAll('main > section')].flatMap(s => {
  const out = [];
  const name = s.querySelector('h2').textContent;
  if (s.scrollWidth > s.clientWidth + 1) out.push(name + ': section ' + s.scrollWidth + ' > ' + s.clientWidth);
  const box = s.getBoundingClientRect();
  for (const e of s.querySelectorAll('img, table, .grid, .v-pane, .v-controls, p')) {
    if (e.closest('.scroll') && e.tagName === 'TABLE') continue;  // a wide table scrolls inside its own box
    const r = e.getBoundingClientRect();
    if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) out.push(name + ': ' + e.tagName);
  }
  return out;
})"""


@pytest.mark.parametrize("width", [1400, 900])
def test_nothing_overflows_its_card(runs: StandardRuns, tmp_path: Path, width: int) -> None:
    # Long labels and model names: the run directories copied under a long name.
    long = tmp_path / ("a-run-directory-with-a-rather-long-name-" * 2 + "x")
    long.mkdir()
    ref, broken = long / "ref", long / "broken-with-seven-regressions"
    shutil.copytree(runs.ref, ref)
    shutil.copytree(runs.broken, broken)
    page = tmp_path / "report.html"
    args = (str(ref), str(broken), str(runs.n5a), str(runs.mtpb_single), str(runs.mtpb_multi))
    r = run_cli("report", *args, "-o", str(page))
    assert r.returncode == 0, r.stderr
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as browser:
        browser.open_page(width, 900)
        browser.load(page.as_uri())
        browser.evaluate("location.hash = '#pair=3/4/mtpb%2F3%2F1'")  # the widest view: two panes side by side
        browser.evaluate("new Promise(r => setTimeout(r, 100))")
        overflowing = browser.evaluate(OVERFLOW)
        page_wider = browser.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
        scrolled = browser.evaluate(
            "[...document.querySelectorAll('.scroll')].filter(d => d.scrollWidth > d.clientWidth).length"
        )
        problems = browser.problems()
    assert problems == []
    assert overflowing == []
    assert not page_wider
    if width == 900:
        assert scrolled > 0  # the wide tables scroll inside their cards instead
