"""The package layering holds (scripts/check_layers.py; docs/architecture.md, "Layers")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_layers.py"


def _load():
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = module
    spec.loader.exec_module(module)
    return module


def test_no_upward_import_no_cycle_no_app_state_outside_app():
    assert _load().check() == []


def test_the_check_sees_an_upward_import_a_cycle_and_app_state(tmp_path):
    layers = _load()
    root = tmp_path / "src" / "herewith"
    for package, body in {
        "meetings": "from herewith.signaling import protocol\n",  # layer 3 importing layer 7
        "webhooks": "from herewith.auth import models\n",
        "auth": "from herewith.webhooks import service\nrequest.app.state.x = 1\n",
    }.items():
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
        (root / package / "service.py").write_text(body)
    problems = layers.check(root)
    assert any("meetings (layer 3) imports signaling (layer 7)" in p for p in problems)
    assert any(p.startswith("import cycle between packages: auth <-> webhooks") for p in problems)
    assert any("app.state outside app.py" in p for p in problems)
