"""The first screen of a 60-host HTML drift report, as headless chromium lays it out at
1280x720, shows every drifted host (and the failed and unreachable ones): where on the
page chromium puts the first mention of each host's name is read back from the page
itself (a probe script added to a copy), and a screenshot is taken of the page as is."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html import unescape

from drift_fleet import fleet_report

from vnetctl.drift import formats
from vnetctl.drift.report import HostState

WIDTH, HEIGHT = 1280, 720
PROBE = """<script>
const names = %s, found = {};
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walk.nextNode(); node; node = walk.nextNode()) {
  for (const name of names) {
    const at = node.textContent.indexOf(name);
    if (name in found || at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at); range.setEnd(node, at + name.length);
    found[name] = range.getBoundingClientRect().bottom;
  }
}
const out = document.createElement("pre");
out.id = "probe";
out.textContent = JSON.stringify({height: innerHeight, found});
document.body.appendChild(out);
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    browser = shutil.which("chromium")
    assert browser, "chromium is missing: scripts/setup.sh installs Debian's chromium"
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={WIDTH},{HEIGHT}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_first_screen_shows_every_host_that_needs_attention(tmp_path):
    report = fleet_report(60, drifted=(7, 19, 23, 31, 41, 47, 52, 58))
    page = formats.render(report, "html")
    wanted = [h.host for h in report.hosts if h.state is not HostState.IN_SYNC]
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE % json.dumps(wanted) + "</body>"))
    done = chromium("--dump-dom", probe.as_uri())
    result = json.loads(unescape(re.search(r'<pre id="probe">(.*?)</pre>', done.stdout).group(1)))
    fold = result["height"]  # the viewport of a 1280x720 window, less its frame
    assert 600 <= fold <= HEIGHT
    below = {n: y for n, y in result["found"].items() if y > fold}
    assert set(result["found"]) == set(wanted) and not below, below

    shot = tmp_path / "drift-60.png"
    (tmp_path / "drift.html").write_text(page)
    chromium(f"--screenshot={shot}", (tmp_path / "drift.html").as_uri())
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (WIDTH, HEIGHT)
