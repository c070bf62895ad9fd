"""The Grafana dashboard's panels as one PNG, from a real short run (docs/dashboard.png).

Grafana cannot be assumed on a build box, Prometheus can (Debian's
`prometheus` package, which `make system-deps` installs for promtool). So
this script runs what a site runs and asks a real Prometheus the
dashboard's own queries:

1. a Mosquitto on a free loopback port (tests/brokers.py);
2. `edge-agent run` over config/demo.yaml (the walkway clip, played once,
   about 80 s) with the metrics endpoint on;
3. a Prometheus scraping it every 2 s and evaluating
   config/prometheus/edge-agent-rules.yml;
4. a recipient, `edge-agent subscribe --status-key`, trusting the site by a
   registry file with its public JWK and answering each alert with a signed
   `received`; the agent knows the recipient's public key as its
   `feedback_keys`, so the Recipients row shows the statuses coming back;
5. a broker outage in the middle (`--outage-at`, `--outage-s`), so the
   broker, outbox and delivery-time panels show what they are for;
6. every panel of config/grafana/edge-agent.json, its PromQL evaluated over
   the run by Prometheus' range API (`$site` and `$camera` as all,
   `$__rate_interval` as 10 s), drawn with matplotlib in the dashboard's order.

    python -m benchmarks.dashboard_plot [--out docs/dashboard.png] [--outage-at 30] [--outage-s 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
ASSETS = (REPO / ".." / "shared" / "assets").resolve()
DASHBOARD = REPO / "config" / "grafana" / "edge-agent.json"
RULES = REPO / "config" / "prometheus" / "edge-agent-rules.yml"
SCRAPE_S = 2
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval for a 2 s scrape is 8 s; a round 10 s reads the same
sys.path.insert(0, str(REPO))

from agent.config import load_config  # noqa: E402
from agent.delivery.jws import key_id_for, public_jwk  # noqa: E402
from agent.delivery.signing import generate_key_file, write_public_key_files  # noqa: E402
from tests.brokers import MosquittoBroker, free_port  # noqa: E402

RECIPIENT = "default"  # config/demo.yaml's one recipient (the default policy)


def _prometheus_config(directory: Path, metrics_port: int) -> Path:
    rules = directory / "edge-agent-rules.yml"
    shutil.copy(RULES, rules)
    config = directory / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: {SCRAPE_S}s, evaluation_interval: {SCRAPE_S}s}}\n"
        f"rule_files: [{rules}]\n"
        "scrape_configs:\n"
        "  - job_name: edge-agent\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    return config


def _start_prometheus(directory: Path, metrics_port: int) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("error: no prometheus binary: `make system-deps` (or apt-get install prometheus) installs it")
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={_prometheus_config(directory, metrics_port)}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"error: prometheus did not start; see {directory / 'prometheus.log'}")


def _env() -> dict[str, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(REPO / ".cache" / "numba"))
    env.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
    return env


def _recipient(config: Path, broker_port: int, work: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`edge-agent subscribe` as the recipient, sending `received`; returns it and its public JWK file.

    The site's signing key is made here (the agent loads the same file), so the
    registry can name it before the agent starts.
    """
    site = load_config(config)
    site_key = generate_key_file(work / "key.pem")
    registry = work / "registry.yaml"
    jwk = public_jwk(site_key.public_key(), key_id_for(site_key.public_key()))
    registry.write_text(
        f"sites:\n  - site_id: {site.site.id}\n    topic_prefix: {site.mqtt.topic_prefix}\n"
        f"    keys:\n      - jwk: {json.dumps(jwk)}\n"
    )
    status_key = work / f"{RECIPIENT}-status.pem"
    files = write_public_key_files(generate_key_file(status_key), work, f"{RECIPIENT}-status")
    args = [
        *(sys.executable, "-m", "agent", "--log-level", "warning", "subscribe"),
        *("--broker", f"mqtt://127.0.0.1:{broker_port}", "--registry", str(registry)),
        *("--recipient", RECIPIENT, "--status-key", str(status_key)),
        *("--seen-db", str(work / "seen.sqlite"), "--out", str(work / "received.jsonl")),
    ]
    log = (work / "recipient.log").open("wb")
    proc = subprocess.Popen(args, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    while b"ready" not in (work / "recipient.log").read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"error: the recipient did not start; see {work / 'recipient.log'}")
        time.sleep(0.2)
    return proc, files.jwk


def _agent(
    config: Path, broker_port: int, metrics_port: int, clip: Path, work: Path, feedback_keys: Path
) -> subprocess.Popen[bytes]:
    sets = {
        "mqtt.port": broker_port,
        "runtime.metrics.enabled": "true",
        "runtime.metrics.port": metrics_port,
        "runtime.stats_interval_s": 2,
        "cameras.0.source": clip,
        "outbox.path": work / "outbox.sqlite",
        "signing.key_file": work / "key.pem",
        "policies.pseudonym_key_file": work / "pseudonym.key",
        "policies.audit_log": work / "audit.jsonl",
        "runtime.state_dir": work / "run",
        "policies.recipients": json.dumps([{"name": RECIPIENT, "feedback_keys": str(feedback_keys)}]),
    }
    args = [sys.executable, "-m", "agent", "--log-level", "warning", "run", "--config", str(config)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return subprocess.Popen(args, cwd=REPO, env=_env(), stderr=(work / "agent.log").open("wb"))


def _query_range(port: int, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": SCRAPE_S})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query_range?{query}", timeout=30) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {expr}: {body}")
    return body["data"]["result"]  # type: ignore[no-any-return]


def _dashboard_expr(expr: str) -> str:
    """A panel's query as Grafana would send it with every site and camera selected."""
    return expr.replace("$site", ".*").replace("$camera", ".*").replace("$__rate_interval", RATE_INTERVAL)


def _legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


# Grafana units -> (factor, axis label).
_UNITS = {"s": (1e3, "ms"), "bytes": (1e-6, "MB"), "percentunit": (100.0, "%"), "short": (1.0, "")}


def plot_dashboard(port: int, start: float, end: float, out: Path, note: str) -> list[str]:
    """Draw every panel of the dashboard; return the titles of panels that had no data."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    columns = 3
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.0 * columns, 2.9 * rows), squeeze=False)
    empty = []
    for ax, panel in zip(axes.flat, panels, strict=False):
        factor, unit = _UNITS.get(panel["fieldConfig"]["defaults"].get("unit", "short"), (1.0, ""))
        drawn = 0
        stacked: list[tuple[str, list[float], list[float]]] = []
        for target in panel["targets"]:
            for series in _query_range(port, _dashboard_expr(target["expr"]), start, end):
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) * factor for _, v in series["values"]]
                label = _legend(target.get("legendFormat", ""), series["metric"])
                if panel["fieldConfig"]["defaults"]["custom"].get("stacking", {}).get("mode") == "normal":
                    stacked.append((label, xs, ys))
                    continue
                style = "steps-post" if panel["type"] == "state-timeline" else "default"
                ax.plot(xs, ys, label=label, drawstyle=style, linewidth=1.2)
                drawn += 1
        if stacked:
            grid = sorted({x for _, xs, _ in stacked for x in xs})
            layers = [[dict(zip(xs, ys, strict=True)).get(x, 0.0) for x in grid] for _, xs, ys in stacked]
            ax.stackplot(grid, layers, labels=[label for label, _, _ in stacked], alpha=0.8)
            drawn += len(stacked)
        if not drawn:
            empty.append(panel["title"])
            ax.text(0.5, 0.5, "no data in this run", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xlim(0, end - start)
        # The panel's own axis bounds, as Grafana draws them (a flat line at 1 is not centred).
        defaults = panel["fieldConfig"]["defaults"]
        if "min" in defaults:
            ax.set_ylim(bottom=defaults["min"] * factor)
        if "max" in defaults:
            ax.set_ylim(top=defaults["max"] * factor * 1.05)
        elif drawn:
            ax.set_ylim(top=max(1.0, ax.dataLim.y1 * 1.1))  # counters that stayed at zero get an axis too
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=6, loc="upper left")
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("seconds since the agent started", fontsize=8)
    fig.suptitle(f"edge-agent dashboard (config/grafana/edge-agent.json) over a real run: {note}", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return empty


def _alerts_seen(port: int, start: float, end: float) -> list[str]:
    seen = {
        f"{s['metric']['alertname']} ({s['metric']['alertstate']})" for s in _query_range(port, "ALERTS", start, end)
    }
    return sorted(seen)


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "demo.yaml")
    parser.add_argument("--clip", type=Path, default=ASSETS / "videos" / "vtest.avi")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    parser.add_argument("--outage-at", type=float, default=30.0, help="seconds after start to stop the broker")
    parser.add_argument("--outage-s", type=float, default=20.0, help="how long the broker stays down (0: no outage)")
    parser.add_argument("--timeout-s", type=float, default=240.0, help="stop the agent after this long")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edge-dashboard-") as tmp:
        work = Path(tmp)
        metrics_port = free_port()
        with MosquittoBroker(work / "broker") as broker:
            prometheus, prom_port = _start_prometheus(work, metrics_port)
            recipient, feedback_keys = _recipient(args.config, broker.port, work)
            try:
                start = time.time()
                agent = _agent(args.config, broker.port, metrics_port, args.clip, work, feedback_keys)
                outage_done = args.outage_s <= 0
                while agent.poll() is None and time.time() - start < args.timeout_s:
                    elapsed = time.time() - start
                    if not outage_done and elapsed >= args.outage_at:
                        print(f"dashboard: broker down at {elapsed:.0f} s for {args.outage_s:g} s", flush=True)
                        broker.stop()
                        time.sleep(args.outage_s)
                        broker.start()
                        outage_done = True
                    time.sleep(0.5)
                if agent.poll() is None:
                    agent.terminate()
                    agent.wait(30)
                time.sleep(2 * SCRAPE_S)  # the last scrape and rule evaluation
                end = time.time()
                print(f"dashboard: agent ran {end - start:.0f} s, exit {agent.returncode}", flush=True)
                note = f"config/demo.yaml, {end - start:.0f} s, its recipient answering received"
                if args.outage_s > 0:
                    note += f", broker down {args.outage_at:g}-{args.outage_at + args.outage_s:g} s"
                empty = plot_dashboard(prom_port, start, end, args.out, note)
                print(f"dashboard: wrote {args.out} ({len(empty)} panels without data: {', '.join(empty) or 'none'})")
                print("dashboard: alert rules seen: " + (", ".join(_alerts_seen(prom_port, start, end)) or "none"))
                print(f"dashboard: the recipient accepted {_lines(work / 'received.jsonl')} alerts", flush=True)
            finally:
                recipient.terminate()
                recipient.wait(30)
                prometheus.terminate()
                prometheus.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
