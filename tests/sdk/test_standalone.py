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


def test_retry_after_in_seconds_or_as_an_http_date():
    import email.utils
    import time

    import httpx
    from herewith_client._retry import retry_after_seconds, wait_for_response

    def answer(status: int, headers: dict[str, str], body: dict | None = None) -> httpx.Response:
        return httpx.Response(status, headers=headers, json=body)

    assert retry_after_seconds(answer(429, {"Retry-After": "7"})) == 7
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= retry_after_seconds(answer(429, {"Retry-After": in_ten})) <= 10
    assert retry_after_seconds(answer(429, {}, {"error": "x", "data": {"msLeft": 1500}})) == 1.5
    assert wait_for_response(answer(429, {"Retry-After": "90"}), max_wait=60) is None  # longer than the client waits
    assert wait_for_response(answer(503, {"Retry-After": "1"}), max_wait=60) == 1
    assert wait_for_response(answer(503, {}), max_wait=60) is None  # a plain 503 is final
    assert wait_for_response(answer(500, {"Retry-After": "1"}), max_wait=60) is None


def test_sdk_type_checks_strictly(tmp_path):
    """The SDK's annotations hold (it ships ``py.typed``, so integrators' type checkers read them)."""
    import subprocess

    run = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"),
                          str(SDK / "src" / "herewith_client")], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
