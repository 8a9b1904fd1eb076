"""``hypernodes ui``: the run log's local web page, served on 127.0.0.1 by the real command and
driven with Debian's headless Chromium through selenium: it lists the runs, shows a failed node
with its inputs, and follows a map running in another process.

Screenshots go to the test's folder; set ``HYPERNODES_UI_SCREENSHOTS=docs/images`` to refresh
the ones docs/observability.md shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the UI tests need the ui extra: pip install -e '.[ui]'")
pytest.importorskip("uvicorn", reason="the UI tests need the ui extra: pip install -e '.[ui]'")
pytest.importorskip("selenium", reason="the UI tests drive Chromium with selenium (dev extra)")

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hypernodes import Pipeline, node
from hypernodes.telemetry import RunLog

SRC = str(Path(__file__).resolve().parents[2] / "src")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "the UI tests need Debian's chromium and chromedriver: apt-get install chromium chromium-driver",
        allow_module_level=True,
    )
ENV = {**os.environ, "PYTHONPATH": SRC}


@node(output_name="parsed")
def parse(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"not a number: {text!r}")
    return int(text)


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def serve(tmp_path):
    """Start ``hypernodes ui FOLDER --port 0``; yields a function giving its URL."""
    started: list[subprocess.Popen[str]] = []

    def start(folder: Path) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hypernodes", "ui", str(folder), "--port", "0"],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        return found.group(0)

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(20)
        assert proc.returncode is not None


def _shot(driver, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("HYPERNODES_UI_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000  # a real picture, not an empty page
    return path


def test_the_page_lists_runs_and_shows_a_failed_node_with_its_inputs(tmp_path, serve, browser):
    folder = tmp_path / "runs"
    Pipeline([parse], callbacks=[RunLog(folder)], name="numbers").map(
        {"text": ["1", "2", "three"]}, map_over="text", on_error="continue"
    )
    Pipeline([parse], callbacks=[RunLog(folder)], name="single").run({"text": "7"})
    url = serve(folder)
    browser.get(url)
    WebDriverWait(browser, 20).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs tr")) == 2
    )
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#runs tr")]
    assert "single" in rows[0] and "ok" in rows[0]
    assert "numbers" in rows[1] and "failed" in rows[1] and "3/3" in rows[1]
    _shot(browser, tmp_path, "ui-runs.png")

    browser.find_element(By.CSS_SELECTOR, "#runs tr:nth-child(2) a").click()
    WebDriverWait(browser, 20).until(lambda d: "Failures" in d.page_source)
    failures = browser.find_element(By.XPATH, "//h2[text()='Failures']/following-sibling::table[1]")
    assert "parse" in failures.text and "not a number: 'three'" in failures.text
    assert "text='three'" in failures.text
    assert browser.find_elements(By.CSS_SELECTOR, ".graph svg g.node")  # the graph, drawn by dot
    _shot(browser, tmp_path, "ui-run.png")


_SLOW_MAP = """
import sys, time
from pathlib import Path
from hypernodes import Pipeline, node
from hypernodes.telemetry import RunLog

@node(output_name="y")
def slow(x: int, go: str) -> int:
    while x == 0 and not Path(go).exists():  # the first item waits for the test
        time.sleep(0.02)
    time.sleep(0.15)
    return x

log = RunLog(sys.argv[1], flush_interval=0.1)
Pipeline([slow], callbacks=[log], name="slowmap").map(
    {"x": list(range(30)), "go": sys.argv[2]}, map_over="x"
)
"""


def test_the_run_page_follows_a_running_map(tmp_path, serve, browser):
    folder, go = tmp_path / "runs", tmp_path / "go"
    runner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SLOW_MAP), str(folder), str(go)],
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = serve(folder)
        page = None
        deadline = time.monotonic() + 90  # the run appears once the map has started
        while page is None and time.monotonic() < deadline:
            assert runner.poll() is None, runner.stderr.read()  # the map's process is alive
            browser.get(url)
            links = browser.find_elements(By.CSS_SELECTOR, "#runs a")
            if links:
                page = links[0].get_attribute("href")
            else:
                time.sleep(0.2)
        assert page is not None, "the running map never showed in the list"
        browser.get(page)

        def progress(driver) -> str:
            return driver.find_element(By.ID, "progress-text").text

        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "running"
        WebDriverWait(browser, 20).until(lambda d: progress(d).startswith("running: 0/30 items"))
        go.touch()
        WebDriverWait(browser, 30).until(
            lambda d: re.match(r"running: ([1-9]\d*)/30 items", progress(d))
        )
        moved = int(re.match(r"running: (\d+)/30", progress(browser)).group(1))
        assert 0 < moved < 30
        assert int(browser.find_element(By.ID, "bar").get_attribute("value")) >= moved
        # the report below follows: its node table counts the calls so far
        WebDriverWait(browser, 30).until(
            lambda d: re.search(r"slow \d", d.find_element(By.ID, "report").text)
        )
        _shot(browser, tmp_path, "ui-live.png")
        # when the map ends the report shows the final counts, without a reload
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "ok"
        )
        WebDriverWait(browser, 30).until(
            lambda d: "30/30 items" in d.find_element(By.CLASS_NAME, "meta").text
        )
        assert "slow 30" in browser.find_element(By.ID, "report").text
    finally:
        go.touch()
        _, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err
