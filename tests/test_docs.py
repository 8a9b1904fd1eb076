"""Every Python block of the README and of docs/*.md runs as written (one namespace per page)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page)
    assert blocks, f"{page.name} has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{page.name} block {number}", "exec"), namespace)


#: pages whose guarded blocks another test runs as a script (with the cluster it needs)
_SCRIPTED_ELSEWHERE = {"dask.md"}
GUARDED = [
    page
    for page in PAGES
    if page.name not in _SCRIPTED_ELSEWHERE
    and any('__name__ == "__main__"' in block for block in python_blocks(page))
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("page", GUARDED, ids=[p.name for p in GUARDED])
def test_guarded_examples_run_as_a_script(page: Path, tmp_path: Path) -> None:
    """Blocks under ``if __name__ == "__main__":`` (worker processes need the guard) are not
    entered above; here the whole page runs as a script, guards and all."""
    import subprocess
    import sys

    script = tmp_path / f"{page.stem}_page.py"
    script.write_text("\n\n".join(python_blocks(page)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=110, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
