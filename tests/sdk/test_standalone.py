"""The SDK installs alone (its own ``sdk/python/pyproject.toml``): it imports nothing of the server, only the
standard library, httpx and pydantic, and declares exactly those two dependencies."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdk" / "python"


def test_sdk_imports_only_httpx_pydantic_and_the_standard_library():
    allowed = {"httpx", "pydantic", "herewith_client", "__future__"}
    found: dict[str, set[str]] = {}
    for path in (SDK / "src" / "herewith_client").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in allowed and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(path.name)
    assert found == {}, f"the SDK must stay installable alone; it imports {found}"
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    assert project["name"] == "herewith-client"
    assert sorted(d.split(">")[0] for d in project["dependencies"]) == ["httpx", "pydantic"]
