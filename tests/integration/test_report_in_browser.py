"""The report of a saved real sweep, opened in headless Chromium (Debian's): it loads without the
network, every chart decodes, and the answer and the heat map are in the first screen."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from storprof.views.report import write_report
from tests.conftest import setup_provides

pytestmark = [pytest.mark.integration]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SWEEP = Path(__file__).resolve().parents[1] / "fixtures" / "results-union"
SCREEN = (1280, 900)

# Appended to a copy of the page (the report itself has no script): where things landed, and
# whether each image decoded, written where --dump-dom shows it.
PROBE = """<script>
const box = (el) => el ? el.getBoundingClientRect() : null;
const heat = [...document.images].find((i) => i.alt.startsWith('Heat map'));
document.body.dataset.layout = JSON.stringify({
  answer_top: box(document.getElementById('the-answer')).top,
  first_item_bottom: box(document.querySelector('ul.answer li')).bottom,
  heat_top: box(heat).top, heat_bottom: box(heat).bottom,
  images: document.images.length,
  decoded: [...document.images].filter((i) => i.complete && i.naturalWidth > 0).length,
});
</script>"""


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # No network at all: every host resolves to nothing, so a fetch would fail and show.
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={SCREEN[0]},{SCREEN[1]}",
                           *args], capture_output=True, text=True, timeout=timeout)


@setup_provides(CHROMIUM is not None, "chromium is not installed (storprof setup --tests installs it)")
def test_the_answer_and_heat_map_are_in_the_first_screen_and_every_chart_decodes(tmp_path):
    _, page = write_report(SWEEP, tmp_path)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    layout = json.loads(re.search(r'data-layout="([^"]+)"', done.stdout).group(1).replace("&quot;", '"'))
    assert layout["decoded"] == layout["images"] > 5
    assert layout["answer_top"] < SCREEN[1] and layout["first_item_bottom"] < SCREEN[1]
    assert layout["heat_top"] < SCREEN[1], layout          # the heat map starts in the first screen

    shot = tmp_path / "first-screen.png"
    done = chromium(f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.read_bytes().startswith(b"\x89PNG")
