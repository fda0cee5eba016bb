"""The HTML report in a real headless Chromium: loads offline with no console errors and shows its plots."""

from __future__ import annotations

import os
from pathlib import Path

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
        browser.screenshot(shot)
        problems = browser.problems()
        urls = browser.requested_urls()

    assert problems == []
    assert title == "codegen-eval report"
    # Nothing but the page itself and its inline data: URIs was requested (the CSP forbids anything else).
    assert [u for u in urls if not u.startswith("data:image/png;base64,")] == [page.as_uri()]
    assert len(images) == 7, images
    for img in images:
        assert img["complete"] and img["w"] > 100 and img["h"] > 50 and img["shown"] > 100, img
    assert headings[:3] == ["Runs", "Scores", "By category"]
    assert "Single- vs multi-turn: pair/single vs pair/multi" in headings
    assert "Per-problem outcomes" in headings
    # The screenshot shows the plots: grid cells in the passed colour and the multi-turn bars.
    assert shot.stat().st_size > 50_000
    assert _count_pixels(shot, PASSED_RGB) > 5_000
    assert _count_pixels(shot, MULTI_RGB) > 2_000
