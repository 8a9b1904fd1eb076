"""The demo runs and prints the report it promises."""

from __future__ import annotations

import json
import pathlib
import shlex
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_demo_runs_and_reports_all_tickets():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "300 tickets" in result.stdout
    assert "warm run: 300 tickets" in result.stdout and "cache: " in result.stdout
    assert "one ticket: {'sentiment': 3, 'product': 'router'}" in result.stdout


def test_demo_pipeline_matches_a_plain_loop():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import demo
    finally:
        sys.path.pop(0)
    lines = demo.load_lines(str(demo.DATA))
    report = demo.build_pipeline().run({"path": str(demo.DATA)}, output_name="report")["report"]
    products = [demo.find_product(demo.tokenize(line)) for line in lines]
    assert report["tickets"] == len(lines) == 300
    assert {p: r["tickets"] for p, r in report["by_product"].items()} == {
        p: products.count(p) for p in set(products)
    }


def test_make_demo_also_runs_the_demo_through_the_command():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    (line,) = [x.strip() for x in recipe.splitlines() if "/hypernodes run " in x]
    command = shlex.split(line.replace("$(BIN)", str(pathlib.Path(sys.executable).parent)))
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(result.stdout)["report"]
    assert report["tickets"] == 300 and report["most_mentioned"] == "phone"
