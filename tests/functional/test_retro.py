"""The retro of a real sprint: scripted model server, real git, SQLite, DBOS, the installed CLI, and a
headless Chromium that draws the HTML report.

The sprint: AS-1 run in shadow first, then for real, done after human review; AS-2 escalated (QA
rejects it, one round allowed); AS-3 rejected by a human, reworked in a second round, then approved.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from runner_support import item, make_project

from agentsprint.domain import ItemType
from agentsprint.llm.scripted import ScriptedServer, tool_call
from agentsprint.runner.demo_script import PLANS, ScriptBook
from agentsprint.runner.service import run_items

AGENTSPRINT = str(Path(sys.executable).parent / "agentsprint")
HUMAN = [{"review": "human"}]
REJECT = tool_call("submit_verdict", verdict="reject", reasons=["not good enough yet"])
PRICES = {"t-supervisor": (0.000003, 0.000015), "t-coder": (0.0000004, 0.0000016), "t-qa": (0.0000004, 0.0000016)}
"""USD per input and output token of the test models (runner_support's TEST_CONFIG)."""
SPRINT_FILE = "name: S1\ngoal: Retro sprint\nstart: 2026-01-01\ncapacity: {tokens: 400000, usd: 2, review_hours: 6}\n" \
              "items: [AS-1, AS-2, AS-3]\n"


def writer(name: str, content: str = "X = 1\n") -> list[dict[str, Any]]:
    return [tool_call("write_file", path=f"shop/{name}.py", content=content), tool_call("finish", summary="x")]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSPRINT_")}
    return subprocess.run([AGENTSPRINT, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=env)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class RanSprint(NamedTuple):
    root: Path
    server: ScriptedServer
    shadow_usage: list[dict[str, Any]]


@pytest.fixture(scope="module")
def sprint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RanSprint]:
    """The sprint above, run and reviewed; yields the project root, the server that answered it and the
    usage it reported for the shadow run."""
    with ScriptedServer() as server:
        book = ScriptBook({i: PLANS["AS-1"] for i in ("AS-1", "AS-2", "AS-3")},
                          {("AS-1", 1): writer("one"), ("AS-2", 1): writer("two"), ("AS-3", 1): writer("three"),
                           ("AS-3", 2): writer("three", "X = 2\n")},
                          {("AS-2", 1): REJECT})
        items = [item("AS-1", dod=HUMAN, scope=["shop/one.py"]),
                 item("AS-2", dod=[], rounds=1, scope=["shop/two.py"], type_=ItemType.FEATURE),
                 item("AS-3", dod=HUMAN, scope=["shop/three.py"])]
        settings = make_project(tmp_path_factory.mktemp("retro") / "p", server, items, book)
        root = settings.root
        assert run_items(settings, ["AS-1"], shadow=True).results == {"AS-1": "awaiting_review"}
        shadow_usage = list(server.usage)
        server.usage.clear()
        assert run_items(settings, ["AS-1", "AS-2", "AS-3"]).results == {
            "AS-1": "awaiting_review", "AS-2": "escalated", "AS-3": "awaiting_review"}
        ok(cli(root, "review", "approve", "AS-1"))
        ok(cli(root, "review", "reject", "AS-3", "-m", "X must be 2"))
        assert run_items(settings, ["AS-3"]).results == {"AS-3": "awaiting_review"}
        ok(cli(root, "review", "approve", "AS-3"))
        (root / "backlog" / "sprints").mkdir(exist_ok=True)
        (root / "backlog" / "sprints" / "S1.yml").write_text(SPRINT_FILE)
        yield RanSprint(root, server, shadow_usage)


def exported(root: Path, fmt: str, *scope: str) -> str:
    target = root.parent / f"retro-{fmt}.{fmt}"
    ok(cli(root, "retro", *scope, "--format", fmt, "-o", str(target)))
    return target.read_text()


def test_json_totals_equal_what_the_model_server_reported(sprint: RanSprint) -> None:
    root, server, _ = sprint
    report = json.loads(exported(root, "json", "--sprint", "S1"))
    reported = server.usage
    assert report["calls_total"] == len(reported) > 0
    assert report["tokens_total"] == sum(u["prompt_tokens"] + u["completion_tokens"] for u in reported)
    billed = sum(u["prompt_tokens"] * PRICES[u["model"]][0] + u["completion_tokens"] * PRICES[u["model"]][1]
                 for u in reported)
    assert report["usd_total"] == pytest.approx(billed, abs=1e-6)
    assert report["cost_kind_split"]["measured"] == report["usd_total"]
    # Every USD figure is rounded to 6 decimals on its own: n rounded parts differ from the rounded
    # whole by at most (n + 1) half-units of the last place (0.015813 vs 0.015812 for 4 roles).
    roles = report["by_role"].values()
    assert sum(v["usd"] for v in roles) == pytest.approx(report["usd_total"], abs=0.5e-6 * (len(roles) + 1))


def test_a_shadow_run_is_reported_apart(sprint: RanSprint) -> None:
    root, _, shadow = sprint
    report = json.loads(exported(root, "json", "--sprint", "S1"))
    assert report["shadow"]["calls"] == len(shadow) > 0 and report["shadow"]["items"] == ["AS-1"]
    assert report["shadow"]["tokens_total"] == sum(u["prompt_tokens"] + u["completion_tokens"] for u in shadow)


def test_json_figures_of_the_sprint(sprint: RanSprint) -> None:
    root = sprint.root
    report = json.loads(exported(root, "json", "--sprint", "S1"))
    assert report["schema_version"] == 1 and report["scope"]["sprint"]["name"] == "S1"
    assert (report["items_planned"], report["items_done"], report["items_escalated"]) == (3, 2, 1)
    assert report["escalations_by_reason"]["rounds"] == 1
    assert report["first_pass_rate"] == 1.0, "QA approved both done items in their first round"
    assert report["rounds_per_done_item"] == {"mean": 1.5, "max": 2}
    assert report["review_decisions"] == 3 and report["review_rejections"] == pytest.approx(1 / 3)
    assert report["items_to_review"] == 3 and report["unreviewed_at_end"] == 0
    assert report["review_wait"]["max"] > 0 and report["review_load"]["capacity_hours"] == 6
    assert report["value_delivered"] == 6 and report["wasted_spend"]["usd"] > 0
    assert report["handoffs_total"] > 0 and report["handoff_validity"] == 1.0
    assert [p["count"] for p in report["review_queue"]] == [1, 2, 1, 0, 1, 0]
    assert report["budget_overruns"] == []


def test_forecast_error_measures_done_items_against_planning_forecasts(sprint: RanSprint) -> None:
    """AS-1 and AS-3 are the done bugs: each is forecast from the other (as `show` prints), AS-3 ran two rounds."""
    root = sprint.root
    report = json.loads(exported(root, "json", "--sprint", "S1"))
    spent = {r["id"]: float(r["usd"]) for r in csv.DictReader(io.StringIO(exported(root, "csv", "--sprint", "S1")))}
    forecast = {i: json.loads(ok(cli(root, "show", i, "--json")))["forecast"] for i in ("AS-1", "AS-3")}
    assert all(f["basis"] == "type" and f["sample"] == 1 for f in forecast.values())
    assert forecast["AS-1"]["usd"]["p50"] == pytest.approx(spent["AS-3"], abs=1e-6)
    expected = {i: (spent[i] - forecast[i]["usd"]["p50"]) / forecast[i]["usd"]["p50"] for i in ("AS-1", "AS-3")}
    assert report["forecast_error"] == pytest.approx(expected, rel=1e-3), "AS-2 is a feature: no done one forecasts it"
    assert expected["AS-3"] > 0.1 > expected["AS-1"], "the second round made AS-3 dearer than AS-1"
    median = f"{expected['AS-3']:+.0%}"
    assert f"forecasts are low: done items spent a median {median} over their forecast" in report["findings"]
    assert f"median {median} over their forecast" in ok(cli(root, "retro", "--sprint", "S1"))


def test_every_format_shows_the_same_figures(sprint: RanSprint) -> None:
    root = sprint.root
    report = json.loads(exported(root, "json"))
    markdown = exported(root, "md")
    for heading in ("## Findings", "## Outcome", "## Token ROI", "## Handoffs", "## Review bottleneck",
                    "## Reliability", "## Shadow runs"):
        assert heading in markdown
    assert f"| tokens total | {report['tokens_total']:,} |" in markdown
    rows = list(csv.DictReader(io.StringIO(exported(root, "csv"))))
    assert [r["id"] for r in rows] == ["AS-1", "AS-2", "AS-3"]
    assert [r["status"] for r in rows] == ["done", "escalated", "done"]
    assert sum(int(r["tokens"]) for r in rows) == report["tokens_total"]
    assert rows[1]["escalation_reason"] == "rounds" and rows[0]["review_wait"] != ""
    terminal = ok(cli(root, "retro", "--item", "as-1"))
    assert "Findings" in terminal and "Token ROI" in terminal


def test_bad_scopes_are_usage_errors(sprint: RanSprint) -> None:
    root = sprint.root
    for args, message in ((["--sprint", "S9"], "no sprint named 'S9'"), (["--item", "AS-99"], "AS-99: no such item"),
                          (["--since", "yesterday"], "--since 'yesterday': not a date"),
                          (["--format", "pdf"], "--format 'pdf'"), (["-o", "out.txt"], "-o out.txt")):
        done = cli(root, "retro", *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_trend_lists_the_sprint(sprint: RanSprint) -> None:
    root = sprint.root
    trend = json.loads(ok(cli(root, "retro", "--trend", "--format", "json")))
    assert [row["sprint"] for row in trend["trend"]] == ["S1"]
    assert trend["trend"][0]["first_pass_rate"] == 1.0


# --- the HTML report in a real browser ----------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("AGENTSPRINT_TEST_CHROMIUM_REQUIRED"),
                                    reason="needs Debian's chromium (installed by .ci/run)")
RECTS = """<script>document.body.insertAdjacentHTML("beforeend", "<pre id=rects>" + JSON.stringify(
[...document.querySelectorAll(".chart svg")].map(e => { const r = e.getBoundingClientRect();
return [e.closest("section").id, r.x, r.y + scrollY, r.width, r.height]; })) + "</pre>");</script>"""


QUIET = ["--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,"
         "AutofillServerCommunication,DialMediaRouteProvider,CertificateTransparencyComponentUpdater",
         "--no-pings", "--disable-client-side-phishing-detection", "--disable-domain-reliability",
         "--no-service-autorun", "--password-store=basic", "--disable-gaia-services", "--gaia-url=http://127.0.0.1:9",
         "--lso-url=http://127.0.0.1:9", "--disable-extensions"]
"""Flags that stop most of Chromium's own traffic (what is left is measured on a blank page: `own_hosts`)."""


class _Recorder(BaseHTTPRequestHandler):
    """A proxy that refuses everything and records what was asked: any request is a network request."""

    def _refuse(self) -> None:
        self.server.seen.append(self.requestline)  # type: ignore[attr-defined]
        self.send_error(502)

    do_GET = do_POST = do_CONNECT = do_HEAD = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        pass


def chromium(page: Path, out: Path, *action: str, height: int = 1200) -> list[str]:
    """Run headless Chromium on `page` through a recording proxy; the requests it made."""
    assert CHROMIUM is not None, "chromium is not installed (AGENTSPRINT_TEST_CHROMIUM_REQUIRED is set)"
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    proxy.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        done = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", *QUIET, "--force-device-scale-factor=1", f"--window-size=1280,{height}",
             f"--proxy-server=http://127.0.0.1:{proxy.server_address[1]}", "--proxy-bypass-list=<-loopback>",
             f"--user-data-dir={out.parent / 'chromium-profile'}", *action, page.as_uri()],
            capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        if "--dump-dom" in action:
            out.write_text(done.stdout)
    finally:
        proxy.shutdown()
    return list(proxy.seen)  # type: ignore[attr-defined]


def hosts(requests: list[str]) -> set[str]:
    """The hosts named in proxy request lines (`CONNECT host:443 ...`, `GET http://host/... ...`)."""
    return {re.sub(r"^(https?://)?([^/:]+).*$", r"\2", line.split()[1]) for line in requests}


CHROMIUM_SERVICES = {"www.google.com", "accounts.google.com", "clients1.google.com", "clients2.google.com",
                     "update.googleapis.com", "optimizationguide-pa.googleapis.com", "android.clients.google.com"}
"""Hosts Chromium's own services were seen calling in these tests despite QUIET (not when they call is timing)."""


def own_hosts(work: Path) -> set[str]:
    """Hosts Chromium contacts by itself (seen on a blank page, or known): not the page's requests."""
    blank = work / "blank.html"
    blank.write_text("<!doctype html><p>blank</p>")
    return hosts(chromium(blank, work / "blank.png", f"--screenshot={work / 'blank.png'}")) | CHROMIUM_SERVICES


def chart_boxes(page: Path, work: Path) -> list[tuple[str, int, int, int, int]]:
    """Where each chart's SVG lies on the page (the page copied with a script that reports it)."""
    probe = work / "probe.html"
    probe.write_text(page.read_text().replace("</body>", RECTS + "</body>"))
    chromium(probe, work / "dom.html", "--dump-dom")
    rects = re.search(r"<pre id=\"rects\">(.*?)</pre>", (work / "dom.html").read_text())
    assert rects is not None, "the probe script reported no boxes"
    found = json.loads(rects.group(1))
    return [(name, round(x), round(y), round(w), round(h)) for name, x, y, w, h in found]


def coloured_pixels(image: Any, box: tuple[int, int, int, int]) -> int:
    """Pixels in `box` that are clearly coloured (bars and lines; axes and text are grey)."""
    x, y, w, h = box
    region = image.crop((x, y, x + w, y + h)).convert("RGB")
    return sum(1 for r, g, b in region.getdata() if max(r, g, b) - min(r, g, b) > 60)


@needs_chromium
def test_the_html_report_draws_every_chart_offline(sprint: RanSprint, tmp_path: Path) -> None:
    from PIL import Image

    root = sprint.root
    page = tmp_path / "retro.html"
    page.write_text(exported(root, "html", "--sprint", "S1"))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//""", page.read_text()), \
        "the report refers to nothing outside itself"
    boxes = chart_boxes(page, tmp_path)
    assert [b[0] for b in boxes] == ["burn-up", "cost-per-item", "review-queue", "spend-by-role", "spend-by-model",
                                     "tokens", "review-wait"]
    shot = tmp_path / "retro.png"
    requests = chromium(page, shot, f"--screenshot={shot}", height=max(y + h for _, _, y, _, h in boxes) + 40)
    assert hosts(requests) - own_hosts(tmp_path) == set(), f"the page made network requests: {requests}"
    with Image.open(shot) as image:
        blank = [name for name, *box in boxes if coloured_pixels(image, tuple(box)) < 200]  # type: ignore[arg-type]
    assert blank == [], f"charts that drew nothing: {blank}"


@needs_chromium
def test_the_network_check_sees_a_remote_reference(tmp_path: Path) -> None:
    page = tmp_path / "remote.html"
    page.write_text('<!doctype html><html><body><img src="https://cdn.example.com/chart.png"></body></html>')
    requests = chromium(page, tmp_path / "x.png", f"--screenshot={tmp_path / 'x.png'}")
    assert hosts(requests) - own_hosts(tmp_path) == {"cdn.example.com"}, \
        f"a page that loads a remote image must show up in the proxy's log: {requests}"
