"""``pipeline.visualize(engine="widget")``: the interactive graph.  Its data (nested names
mapped to the outer ones, details per node), a real notebook executed by nbclient showing it,
and that output rendered and driven in Debian's headless Chromium: nodes drawn, a nested
pipeline expanded by a click, a node's details, the dark theme, zoom and pan.

``HYPERNODES_UI_SCREENSHOTS=docs/images`` keeps the screenshots for docs/visualization.md.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import pytest

from hypernodes import Pipeline, node
from hypernodes.exceptions import HyperNodesError
from hypernodes.viz.widget import GraphWidget, graph_data

SRC = str(Path(__file__).resolve().parents[1] / "src")


@node(output_name="y")
def double(x: int) -> int:
    """Doubles x."""
    return 2 * x


@node(output_name="z", retries=2)
def shift(y: int, k: int = 3) -> int:
    return y + k


@node(output_name="total")
def add_up(zs: list[int]) -> int:
    return sum(zs)


def nested() -> Pipeline:
    inner = Pipeline([double, shift], name="inner")
    each = inner.as_node(
        input_mapping={"xs": "x"}, output_mapping={"z": "zs"}, map_over="xs", name="each"
    )
    return Pipeline([each, add_up], name="outer")


def test_the_data_maps_nested_names_to_the_outer_ones_and_holds_details():
    data = graph_data(nested())
    each, total = data["nodes"]
    assert (each["id"], each["kind"], each["inputs"], each["outputs"]) == (
        "each",
        "pipeline",
        ["xs", "k"],
        ["y", "zs"],
    )
    assert each["details"]["options"] == {"map_over": "xs", "map_mode": "zip"}
    first, second = each["children"]
    assert (first["id"], first["inputs"], first["outputs"]) == ("each/double", ["xs"], ["y"])
    assert (second["inputs"], second["outputs"]) == (["y", "k"], ["zs"])
    assert first["details"]["inputs"] == [{"name": "x", "type": "int"}]
    assert first["details"]["doc"] == "Doubles x."
    assert second["details"]["options"] == {"retries": 2}
    assert total["inputs"] == ["zs"]


def test_visualize_gives_the_widget_by_either_name(tmp_path):
    pipeline = nested()
    for engine in ("widget", "js"):
        widget = pipeline.visualize(engine=engine)
        assert isinstance(widget, GraphWidget)
        html = widget._repr_html_()
        assert "hypernodesGraph(" in html and '"each/double"' in html
        assert "<script src" not in html  # the script is inline
    saved = pipeline.visualize(engine="widget", filename=tmp_path / "graph.html", style="dark")
    assert saved.theme == "dark" and "hn-dark" in (tmp_path / "graph.html").read_text()
    assert pipeline.visualize(engine="widget", depth=None).data["expanded"] == ["each"]
    with pytest.raises(HyperNodesError, match="engine must be"):
        pipeline.visualize(engine="plotly")
    # the script ships inside the package (a wheel carries it as package data)
    assert (
        "window.hypernodesGraph"
        in resources.files("hypernodes.viz").joinpath("widget.js").read_text()
    )


@pytest.fixture(scope="module")
def notebook_html(tmp_path_factory):
    nbformat = pytest.importorskip("nbformat", reason="the dev extra installs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the dev extra installs nbclient")
    here = Path(__file__).resolve().parent
    setup = (
        f"import sys; sys.path[:0] = [{SRC!r}, {str(here)!r}]\nfrom test_viz_widget import nested\n"
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(setup),
        nbformat.v4.new_code_cell('nested().visualize(engine="widget")'),
    ]
    folder = tmp_path_factory.mktemp("widget-notebook")
    nbclient.NotebookClient(
        notebook,
        timeout=300,
        startup_timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    (output,) = notebook.cells[1].outputs
    assert output["output_type"] == "execute_result"
    return output["data"]["text/html"]


@pytest.mark.timeout(600)
def test_a_notebook_shows_the_widget(notebook_html):
    assert "hypernodesGraph(" in notebook_html and '"each/shift"' in notebook_html


@pytest.fixture
def browser(tmp_path):
    pytest.importorskip("selenium", reason="the widget test drives Chromium with selenium")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(
            "needs Debian's chromium and chromedriver: apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1000,700",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.timeout(600)
def test_the_notebook_output_works_in_chromium(notebook_html, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = tmp_path / "widget.html"
    page.write_text(f"<!DOCTYPE html><html><body>{notebook_html}</body></html>", encoding="utf-8")
    browser.get(page.as_uri())
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".hn-graph[data-ready]")
    )

    def names() -> list[str]:
        return sorted(
            n.get_attribute("data-name") for n in browser.find_elements(By.CSS_SELECTOR, ".hn-node")
        )

    assert names() == ["add_up", "each", "k", "xs"]
    browser.find_element(By.CSS_SELECTOR, ".hn-node[data-id='each']").click()  # expand it
    assert names() == ["add_up", "double", "k", "shift", "xs"]
    assert browser.find_elements(By.CSS_SELECTOR, ".hn-group[data-id='each']")
    details = browser.find_element(By.CLASS_NAME, "hn-details")
    assert "each (pipeline)" in details.text and "map_over: xs" in details.text
    browser.find_element(By.CSS_SELECTOR, ".hn-node[data-id='each/shift']").click()
    assert "shift (function)" in details.text and "y: int" in details.text
    assert "retries: 2" in details.text
    _shot(browser, tmp_path, "widget.png")

    view = browser.find_element(By.CLASS_NAME, "hn-view")
    before = view.get_attribute("transform")
    stage = browser.find_element(By.CLASS_NAME, "hn-stage")
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(stage), 0, -200).perform()
    zoomed = view.get_attribute("transform")
    assert zoomed != before
    ActionChains(browser).move_to_element_with_offset(
        stage, -300, -200
    ).click_and_hold().move_by_offset(60, 40).release().perform()
    assert view.get_attribute("transform") != zoomed  # panned

    browser.find_element(By.CSS_SELECTOR, ".hn-group[data-id='each'] text").click()  # collapse
    assert names() == ["add_up", "each", "k", "xs"]
    browser.find_element(By.CLASS_NAME, "hn-theme").click()
    assert "hn-dark" in browser.find_element(By.CLASS_NAME, "hn-graph").get_attribute("class")


def _shot(driver, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("HYPERNODES_UI_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(folder / name))
    assert (folder / name).stat().st_size > 5000
