"""The trace's HTML picture (issue 29), as headless chromium lays it out at 1280x720:
the source host's column left of the destination's, the destination's hops upward (its
port at the top), the dropping hop red, the probe's last-seen hop outlined; names from
hosts are text, never markup. Read back from the page itself (a probe script added to a
copy), and a screenshot of the page as is (docs/images/trace-probe.png is one)."""

from __future__ import annotations

import copy
import json
import re
import struct
from html import unescape
from pathlib import Path

from test_drift_html_screen import HEIGHT, WIDTH, chromium

from vnetctl.trace.html import host_columns, render

TRACE = json.loads((Path(__file__).parent / "fixtures/trace/vlan-drop-probed.json").read_text())
HOSTILE = '<img src=x onerror="document.title=1">'
PROBE = """<script>
const box = e => {
  const r = e.getBoundingClientRect();
  return [r.left, r.top, r.right, r.bottom];
};
const hosts = [...document.querySelectorAll("section.host")].map(box);
const hop = n => document.querySelector(`[data-hop="${n}"]`);
const style = n => getComputedStyle(hop(n));
const out = document.createElement("pre");
out.id = "probe";
out.textContent = JSON.stringify({
  hosts, images: document.querySelectorAll("img").length,
  drop: style(8).backgroundColor, ok: style(7).backgroundColor,
  last: style(6).outlineStyle, other: style(7).outlineStyle,
  port: box(hop(9)), underlay: box(hop(5)),
  text: document.body.innerText, height: innerHeight,
  bottom: Math.max(...[...document.querySelectorAll("section.host")].map(e => box(e)[3])),
});
document.body.appendChild(out);
</script>"""


def laid_out(tmp_path, trace: dict) -> dict:
    page = tmp_path / "probe.html"
    page.write_text(render(trace).replace("</body>", PROBE + "</body>"))
    done = chromium("--dump-dom", page.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(unescape(found.group(1)))


def test_hosts_side_by_side_drop_in_red_probe_point_marked(tmp_path):
    got = laid_out(tmp_path, TRACE)
    (source, dest) = got["hosts"]
    assert source[2] <= dest[0]  # the source's column ends left of the destination's
    assert got["drop"] == "rgb(253, 236, 234)" and got["ok"] != got["drop"]
    assert got["last"] == "solid" and got["other"] == "none"
    assert got["port"][1] < got["underlay"][1]  # destination: its port above its underlay
    assert "probe last seen here" in got["text"] and "3 marked frame(s)" in got["text"]
    assert got["bottom"] <= got["height"]  # the whole path on the first screen

    shot = tmp_path / "trace.png"
    (tmp_path / "trace.html").write_text(render(TRACE))
    chromium(f"--screenshot={shot}", (tmp_path / "trace.html").as_uri())
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (WIDTH, HEIGHT)


def test_names_from_hosts_are_text_never_markup(tmp_path):
    trace = copy.deepcopy(TRACE)
    trace["hops"][7]["device"] = HOSTILE
    trace["hops"][7]["reason"] = HOSTILE
    trace["hops"][7]["detail"] = {HOSTILE: HOSTILE}
    trace["hops"][7]["decision"] = '"><script>x</script>'
    trace["probe"]["last_seen"] = {"host": HOSTILE, "device": HOSTILE}
    got = laid_out(tmp_path, trace)
    assert got["images"] == 0 and got["text"].count(HOSTILE) >= 4
    page = render(trace)
    assert HOSTILE not in page and "<script>x" not in page
    assert 'class="hop d-unknown"' in page  # a decision outside the list: no class of its own


def test_columns_source_left_destination_last_and_reversed():
    assert host_columns(TRACE) == [("kvm-a1", [0, 1, 2, 3, 4]), ("kvm-b7", [9, 8, 7, 6, 5])]
    one_host = {"source": {"host": "h"}, "destination": {"host": "h"},
                "hops": [{"host": "h"}, {"host": "h"}]}  # fmt: skip
    assert host_columns(one_host) == [("h", [0, 1])]
    transit = {"source": {"host": "a"}, "destination": {"host": "c"},
               "hops": [{"host": "a"}, {"host": "c"}, {"host": "b"}]}  # fmt: skip
    assert [h for h, _ in host_columns(transit)] == ["a", "b", "c"]


def test_a_trace_without_probe_or_drop_renders(tmp_path):
    trace = dict(copy.deepcopy(TRACE), probe=None, verdict="delivered", dropped_at=None)
    page = render(trace)
    assert "probe last seen" not in page and 'class="hop d-drop drop"' not in page
    assert "v-delivered" in page
