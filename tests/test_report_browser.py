"""report.html in a real browser: Debian's chromium driven through chromedriver by selenium, at a
laptop's window size, on strong and weak runs with W up to 64 (the widest tables the report makes).

Every image loads, every table renders, no table pushes the page sideways (a table wider than its
room must sit in a horizontally scrolling container), the console has no errors, and a screenshot
is saved in the test's tmp folder.

The browser, its driver and selenium are optional parts (tests/_optional.py): missing, the test is
skipped locally and fails under CI=true. AUGSCALE_CHROMIUM and AUGSCALE_CHROMEDRIVER override the
binaries' paths."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _optional import findable, in_ci, require
from conftest import build_run

from harness.report import write_report

CHROMIUM = Path(os.environ.get("AUGSCALE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("AUGSCALE_CHROMEDRIVER", "/usr/bin/chromedriver"))
WORKERS = [1, 2, 4, 8, 16, 32, 64]
WINDOW = (1280, 900)
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
]
APT = "apt-get install -y --no-install-recommends chromium chromium-driver"


def executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def require_browser() -> None:
    """Skip (locally) or fail (CI=true) when chromium, chromedriver or selenium is missing."""
    require(f"chromium ({CHROMIUM})", executable(CHROMIUM), f"{APT} (Debian)")
    require(f"chromedriver ({CHROMEDRIVER})", executable(CHROMEDRIVER), f"{APT} (Debian)")
    require(
        "Python package selenium",
        findable("selenium"),
        "pip install -e '.[dev]' (or pip install selenium)",
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Callable[[], object]]:
    """One Chromium for the module, started by the first test that calls browser() (after
    require_browser(), so a missing part skips or fails that test rather than erroring a
    fixture)."""
    drivers: list = []

    def start() -> object:
        if drivers:
            return drivers[0]
        os.environ["SE_OFFLINE"] = (
            "true"  # belt and braces: the explicit paths already bypass selenium-manager
        )
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(
            executable_path=str(CHROMEDRIVER),
            log_output=str(tmp_path_factory.getbasetemp() / "chromedriver.log"),
        )
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(30)
        driver.set_window_size(*WINDOW)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.quit()


# For each table: rendered width, the nearest ancestor that scrolls horizontally, and where both
# end.
LAYOUT_JS = """
const doc = document.documentElement;
const tables = Array.from(document.querySelectorAll('table')).map((t, i) => {
  let scroller = null;
  for (let a = t.parentElement; a && a !== doc; a = a.parentElement) {
    const o = getComputedStyle(a).overflowX;
    if (o === 'auto' || o === 'scroll') { scroller = a; break; }
  }
  const box = t.getBoundingClientRect();
  return {
    index: i, cls: t.className, offsetWidth: t.offsetWidth, scrollWidth: t.scrollWidth,
    right: box.right + window.scrollX, parentWidth: t.parentElement.clientWidth,
    scroller: scroller && {
      cls: scroller.className, clientWidth: scroller.clientWidth,
      right: scroller.getBoundingClientRect().right + window.scrollX,
    },
  };
});
return {innerWidth: window.innerWidth, clientWidth: doc.clientWidth,
        scrollWidth: doc.scrollWidth, tables: tables};
"""

IMAGES_JS = """
return Array.from(document.images).map((img, i) => ({
  index: i, alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, width: img.width,
}));
"""


def layout_problems(layout: dict) -> list[str]:
    """What is wrong with the tables' layout; the empty list when nothing is."""
    problems = []
    visible = layout["clientWidth"]  # the page's visible width, without a vertical scroll bar
    if layout["scrollWidth"] > visible or layout["scrollWidth"] > layout["innerWidth"]:
        problems.append(
            f"the page overflows sideways: document scrollWidth {layout['scrollWidth']}px > "
            f"visible width {visible}px (innerWidth {layout['innerWidth']}px)"
        )
    for t in layout["tables"]:
        name = f"table {t['index']} (class {t['cls']!r})"
        scroller = t["scroller"]
        if scroller is None:
            if t["scrollWidth"] > t["parentWidth"]:
                problems.append(
                    f"{name} is {t['scrollWidth']}px wide in a {t['parentWidth']}px container "
                    "with no horizontally scrolling ancestor (overflow-x: auto or scroll)"
                )
            if t["right"] > visible + 0.5:
                problems.append(
                    f"{name} ends at {t['right']:.0f}px, past the visible width {visible}px, "
                    "outside any scrolling container"
                )
        elif scroller["right"] > visible + 0.5:
            problems.append(
                f"{name}'s scrolling container (class {scroller['cls']!r}) ends at "
                f"{scroller['right']:.0f}px, past the visible width {visible}px"
            )
    return problems


def save_screenshot(driver: object, path: Path) -> str:
    """The whole page as a PNG through the DevTools protocol, else the viewport; returns which."""
    try:
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return "full page"
    except Exception:  # noqa: BLE001 - any DevTools failure: the viewport is still worth having
        driver.save_screenshot(str(path))
        return "viewport"


@pytest.mark.parametrize("kind", ["strong", "weak"])
@pytest.mark.slow
def test_report_html_in_chromium(kind, tmp_path, browser):
    require_browser()
    run = build_run(tmp_path / "run", kind=kind, workers=WORKERS, repeats=3)
    html = run / "report.html"
    assert html in write_report(run)
    driver = browser()
    driver.get_log("browser")  # drop whatever an earlier page left
    driver.get(html.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.execute_script("return [window.innerWidth, window.innerHeight]")[0] == WINDOW[0]

    images = driver.execute_script(IMAGES_JS)
    assert images, "report.html shows no image"
    broken = [img for img in images if not img["complete"] or img["naturalWidth"] <= 0]
    assert not broken, f"images that did not load: {broken}"

    layout = driver.execute_script(LAYOUT_JS)
    assert layout["tables"], "report.html has no table"
    hidden = [t for t in layout["tables"] if t["offsetWidth"] <= 0]
    assert not hidden, f"tables not rendered (offsetWidth 0): {hidden}"

    shot = tmp_path / f"report-{kind}.png"
    how = save_screenshot(driver, shot)
    assert shot.stat().st_size > 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", (
        f"{how} screenshot {shot}"
    )

    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"console errors: {errors}"

    problems = layout_problems(layout)
    assert not problems, f"at {WINDOW[0]}x{WINDOW[1]} (screenshot: {shot}):\n" + "\n".join(problems)


def test_layout_problems_reads_overflow():
    """The overflow rule itself, on hand-made measurements."""
    table = {
        "index": 0,
        "cls": "paper",
        "offsetWidth": 900,
        "scrollWidth": 900,
        "right": 950,
        "parentWidth": 1000,
        "scroller": None,
    }
    page = {"innerWidth": 1280, "clientWidth": 1265, "scrollWidth": 1265}
    assert layout_problems({**page, "tables": [table]}) == []
    wide = {**table, "scrollWidth": 1500, "offsetWidth": 1500, "right": 1550}
    assert len(layout_problems({**page, "scrollWidth": 1550, "tables": [wide]})) == 3
    scrolled = {
        **wide,
        "right": 1550,
        "scroller": {"cls": "scroll", "clientWidth": 1000, "right": 1050},
    }
    assert layout_problems({**page, "tables": [scrolled]}) == []


def test_optional_part_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert not in_ci()
    with pytest.raises(
        pytest.skip.Exception, match="chromium is missing; install it with: apt-get"
    ):
        require("chromium", False, "apt-get install chromium")
    monkeypatch.setenv("CI", "true")
    assert in_ci()
    with pytest.raises(
        pytest.fail.Exception, match="CI=true.*chromium is missing; install it with: apt-get"
    ):
        require("chromium", False, "apt-get install chromium")
    require("chromium", True, "apt-get install chromium")  # present: nothing happens
