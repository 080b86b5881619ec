"""The room page's grid pages (web/static/grid.js), run in Node as the browser runs it (an ES module, no DOM)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

GRID_JS = Path(__file__).resolve().parents[2] / "src" / "herewith" / "web" / "static" / "grid.js"

SCRIPT = """
import {GridPager, pageSizeFor} from %s;
const cam = (id, self = false) => ({key: `${id}:camera`, id, source: 'camera', self});
const screen = id => ({key: `${id}:screen`, id, source: 'screen', self: false});
const ids = r => r.tiles.map(t => t.key);
const out = {};
out.sizes = [pageSizeFor(1280, 800), pageSizeFor(390, 700), pageSizeFor(800, 300), pageSizeFor(0, 0)];
const people = [cam('me', true), ...Array.from({length: 21}, (_, i) => cam('p' + String(i).padStart(2, '0')))];
const pager = new GridPager({pageSize: 9});
let r = pager.arrange(people);
out.first = {tiles: ids(r), page: r.page, pages: r.pages, total: r.total};
pager.next(); r = pager.arrange(people);
out.second = ids(r);
pager.next(); pager.next(); r = pager.arrange(people);
out.last = {tiles: ids(r), page: r.page};
pager.goTo(0);
out.changed = pager.speaker('p20');
r = pager.arrange(people);
out.promoted = ids(r);
pager.speaker('p15'); r = pager.arrange(people);
out.promoted2 = ids(r);
pager.speaker('p03'); r = pager.arrange(people);  // already on the first page: nothing moves
out.unchanged = ids(r);
r = pager.arrange([screen('p05'), ...people.filter(p => p.id !== 'p01')]);
out.withScreen = ids(r);
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_pages_and_the_active_speaker() -> None:
    script = SCRIPT % json.dumps(GRID_JS.as_uri())
    run = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["sizes"] == [9, 4, 4, 9]
    cams = lambda *names: [f"{n}:camera" for n in names]  # noqa: E731
    assert out["first"] == {"tiles": cams("me", *[f"p{i:02d}" for i in range(8)]), "page": 0, "pages": 3, "total": 22}
    assert out["second"] == cams(*[f"p{i:02d}" for i in range(8, 17)])
    assert out["last"] == {"tiles": cams("p17", "p18", "p19", "p20"), "page": 2}  # no page beyond the last
    assert out["changed"] is True
    # the speaker from the last page takes the last slot of the first page (nobody there has spoken yet) ...
    assert out["promoted"] == cams("me", *[f"p{i:02d}" for i in range(7)], "p20")
    # ... the next one takes the slot of the least recent speaker, not p20's
    assert out["promoted2"] == cams("me", *[f"p{i:02d}" for i in range(6)], "p15", "p20")
    assert out["unchanged"] == out["promoted2"]
    # a screen share comes first on every page and takes one of the nine places; p01 left
    assert out["withScreen"][0] == "p05:screen" and len(out["withScreen"]) == 9
    assert out["withScreen"][1] == "me:camera" and "p01:camera" not in out["withScreen"]
