"""Feedback benchmark: a live site's time from a camera frame to the recipient's signed `received` coming back.

Runs over loopback what a site and a recipient run: a real Mosquitto
(`set_tcp_nodelay true`, as the shipped broker configs set it), `edge-agent
run` with `--cameras` cameras (2 by default) looping vtest.avi at the file's
own 10 fps, detect 5 fps, an intrusion zone over the whole walkway
(min_duration 0.4 s, update_interval 0.5 s, end after 1 s, cooldown 1 s) so
that alerts flow, and `edge-agent subscribe --status-key` as the recipient
`police`, which checks every alert against its trust registry, freshness and
seen-store and answers each one it accepts with a signed `received`. The site
verifies that status with the key in `policies.recipients[].feedback_keys`.

Timestamps, all read from the same machine's wall clock (UTC):

- frame: the alert's `sent`. The alert builder sets it to the rule event's
  `ts_utc`, the time of the frame that produced the event, which the live
  source stamps (`datetime.now(UTC)`) as it decodes the frame. (`detection.last_seen`
  is the last frame an object counted in: the same frame for a start or an
  update, an earlier one for an end.) Taken from the alerts the recipient
  accepted (`subscribe --out` JSON lines).
- stored: when the site's audit log recorded the message, just after the
  outbox stored it (`feedback_sent.queued_utc`, the audit record's `ts`).
- published: the broker's PUBACK as the site's MQTT client saw it, from the
  site's feedback ledger (`feedback_published.acked_utc` of the message
  `feedback_sent` lists for the alert and the recipient).
- received: when the status reached the site's MQTT client, before it was
  checked (`FeedbackIntake.on_message`), from the ledger
  (`feedback_statuses.received_utc`; the audit log's `status` record carries
  the same time as its `ts`).

Alerts count when their frame falls in the measured window, after a warm-up
from the moment the agent's feedback subscription is granted. The agent's own
`edge_agent_feedback_received_seconds` histogram (PUBACK -> received) is read
from `/metrics` at the window's start and 2 s after its end; its difference
is shown beside the ledger's figures (its p50 / p99 are bucket estimates).

    python -m benchmarks.bench_feedback                 # 120 s window, 2 cameras
    python -m benchmarks.bench_feedback --quick         # 30 s window: a smoke run
    python -m benchmarks.bench_feedback --duration-s 300 --cameras 1
"""

from __future__ import annotations

__all__ = ["FeedbackRun", "collect", "main", "measure", "section"]

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
ASSETS = (REPO / ".." / "shared" / "assets").resolve()
sys.path.insert(0, str(REPO))

from agent.delivery.jws import public_jwk  # noqa: E402
from agent.delivery.signing import generate_key_file  # noqa: E402
from benchmarks.report import Plot, Section, Table  # noqa: E402
from tests.brokers import MosquittoBroker, free_port  # noqa: E402
from tests.runtime.agent_process import camera, write_site_config  # noqa: E402

SITE = "feedback-bench"
RECIPIENT = "police"
CLIP = ASSETS / "videos" / "vtest.avi"
HISTOGRAM = "edge_agent_feedback_received_seconds"
SETTLE_S = 2.0  # after the window: statuses of its last alerts come back, the stats snapshot catches up


@dataclass(frozen=True, slots=True)
class Timed:
    """One alert of the window: its phase and its times in seconds from its frame (None: not known)."""

    phase: str
    queued_s: float | None
    published_s: float | None
    received_s: float | None


@dataclass(frozen=True, slots=True)
class Histogram:
    """The agent's PUBACK -> received histogram over the window: bucket upper bounds, counts per bucket
    (not cumulative, the last for +Inf), sum of seconds."""

    bounds_s: tuple[float, ...]
    counts: tuple[float, ...]
    sum_s: float

    @property
    def count(self) -> float:
        return sum(self.counts)

    def quantile(self, q: float) -> float:
        """Linear within the bucket the quantile falls in, as Prometheus' histogram_quantile does."""
        total = self.count
        if total <= 0:
            return float("nan")
        rank, seen, lower = q * total, 0.0, 0.0
        for bound, n in zip(self.bounds_s, self.counts, strict=False):
            if seen + n >= rank and n > 0:
                return lower + (bound - lower) * (rank - seen) / n
            seen, lower = seen + n, bound
        return self.bounds_s[-1] if self.bounds_s else float("nan")


@dataclass(frozen=True, slots=True)
class FeedbackRun:
    cameras: int
    window_s: float
    warmup_s: float
    alerts: tuple[Timed, ...]
    warmup_alerts: int
    histogram: Histogram
    statuses_sent: int
    rejected_at_recipient: int
    load_before: float
    load_after: float
    cores: int


def _metrics(port: int) -> Histogram:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    cumulative: dict[float, float] = {}
    sum_s = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != HISTOGRAM:
            continue
        for s in family.samples:
            if s.labels.get("recipient") != RECIPIENT:
                continue
            if s.name.endswith("_bucket"):
                cumulative[float(s.labels["le"])] = s.value
            elif s.name.endswith("_sum"):
                sum_s = s.value
    bounds = sorted(cumulative)
    counts, below = [], 0.0
    for bound in bounds:
        counts.append(cumulative[bound] - below)
        below = cumulative[bound]
    return Histogram(tuple(b for b in bounds if b != float("inf")), tuple(counts), sum_s)


def _difference(after: Histogram, before: Histogram) -> Histogram:
    if not before.counts:
        return after
    counts = tuple(a - b for a, b in zip(after.counts, before.counts, strict=True))
    return Histogram(after.bounds_s, counts, after.sum_s - before.sum_s)


def _wait_for(path: Path, pattern: str, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if re.search(pattern, path.read_text(errors="replace")):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"no {pattern!r} in {path.name}:\n{path.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen[bytes], signum: signal.Signals, timeout_s: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signum)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _write_keys(work: Path) -> tuple[Path, Path, Path]:
    """The site's signing key, the trust registry naming its public key, and the recipient's status key
    with the public JWK the site's config names (the agent and the recipient use the thumbprints as key ids)."""
    site_key = generate_key_file(work / "key.pem")
    registry = work / "registry.yaml"
    registry.write_text(
        yaml.safe_dump(
            {"sites": [{"site_id": SITE, "topic_prefix": "edge", "keys": [{"jwk": public_jwk(site_key.public_key())}]}]}
        )
    )
    status_key = work / f"{RECIPIENT}-status.pem"
    jwk = work / f"{RECIPIENT}.jwk"
    jwk.write_text(json.dumps(public_jwk(generate_key_file(status_key).public_key())))
    return registry, status_key, jwk


def _site_config(work: Path, broker_port: int, metrics_port: int, cameras: int, jwk: Path) -> Path:
    cams = []
    for i in range(cameras):
        cam = camera(f"cam{i}", str(CLIP), rule="walkway", zone="walkway")
        rules = cam["rules"]
        assert isinstance(rules, list)
        rules[0]["update_interval_s"] = 0.5  # an update whenever the count changes, at most twice a second
        cams.append(cam)
    config = write_site_config(
        work / "site.yaml",
        port=broker_port,
        site_id=SITE,
        cameras=cams,
        runtime={"metrics": {"enabled": True, "port": metrics_port}},
    )
    doc = yaml.safe_load(config.read_text())
    doc["policies"] = {
        "recipients": [{"name": RECIPIENT, "feedback_keys": jwk.name}],
        "pseudonym_key_file": "pseudonym.key",
        "audit_log": "audit.jsonl",
    }
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    return config


def _frames(accepted: Path) -> dict[str, tuple[datetime, str]]:
    """Alert id -> (its frame's time, its phase), from the alerts the recipient accepted."""
    out = {}
    for line in accepted.read_text().splitlines():
        view = json.loads(line)
        out[view["identifier"]] = (datetime.fromisoformat(view["sent"]), view.get("detection", {}).get("phase", "?"))
    return out


Times = tuple[datetime | None, datetime | None, datetime | None]


def _ledger(outbox: Path) -> dict[str, Times]:
    """Alert id -> (stored and audited, PUBACK, first `received` back), from the site's feedback ledger."""
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT s.alert_id, MIN(s.queued_utc), MIN(p.acked_utc), MIN(st.received_utc) FROM feedback_sent s"
            " LEFT JOIN feedback_published p ON p.message_id = s.message_id"
            " LEFT JOIN feedback_statuses st"
            "   ON st.alert_id = s.alert_id AND st.recipient = s.recipient AND st.status = 'received'"
            " WHERE s.recipient = ? GROUP BY s.alert_id",
            (RECIPIENT,),
        ).fetchall()
    finally:
        db.close()

    def utc(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    return {str(alert_id): (utc(queued), utc(acked), utc(received)) for alert_id, queued, acked, received in rows}


def measure(duration_s: float, cameras: int = 2, warmup_s: float = 10.0) -> FeedbackRun:
    """Run site and recipient for `warmup_s + duration_s` after the site subscribed to its feedback."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="edge-feedback-") as tmp:
        work = Path(tmp)
        registry, status_key, jwk = _write_keys(work)
        metrics_port = free_port()
        env = dict(os.environ, NUMBA_CACHE_DIR=str(REPO / ".cache" / "numba"))
        env.setdefault("EDGE_AGENT_MODEL_PATH", str(ASSETS / "models"))
        with MosquittoBroker(work / "broker", extra_conf="set_tcp_nodelay true") as broker:
            assert broker.port is not None
            config = _site_config(work, broker.port, metrics_port, cameras, jwk)
            accepted = work / "accepted.jsonl"
            sub_log, agent_log = work / "subscribe.log", work / "agent.log"
            with sub_log.open("wb") as log:
                recipient = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "agent",
                        "subscribe",
                        "--broker",
                        f"mqtt://127.0.0.1:{broker.port}",
                        "--registry",
                        str(registry),
                        "--recipient",
                        RECIPIENT,
                        "--status-key",
                        str(status_key),
                        "--seen-db",
                        str(work / "seen.sqlite"),
                        "--out",
                        str(accepted),
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            try:
                _wait_for(sub_log, r"(?m)^ready$", 60, recipient)
                with agent_log.open("wb") as log:
                    agent = subprocess.Popen(
                        [sys.executable, "-m", "agent", "run", "--config", str(config)],
                        cwd=REPO,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                try:
                    _wait_for(agent_log, rf"event=subscribed topic_filter=edge/{SITE}/feedback/\+", 120, agent)
                    ready = datetime.now(UTC)
                    start, end = ready + timedelta(seconds=warmup_s), ready + timedelta(seconds=warmup_s + duration_s)
                    time.sleep(warmup_s)
                    before = _metrics(metrics_port)
                    while datetime.now(UTC) < end + timedelta(seconds=SETTLE_S):
                        for name, proc in (("agent", agent), ("subscriber", recipient)):
                            if proc.poll() is not None:
                                log_text = (agent_log if proc is agent else sub_log).read_text(errors="replace")
                                raise RuntimeError(f"the {name} exited early ({proc.returncode}): {log_text[-2000:]}")
                        time.sleep(0.2)
                    histogram = _difference(_metrics(metrics_port), before)
                finally:
                    _stop(agent, signal.SIGTERM, 60)
            finally:
                _stop(recipient, signal.SIGINT, 20)
            frames = _frames(accepted)
            ledger = _ledger(work / "outbox.sqlite")
            recipient_log = sub_log.read_text(errors="replace")
    timed, warm = [], 0
    for alert_id, (frame, phase) in frames.items():
        if frame < start:
            warm += 1
            continue
        if frame > end:
            continue
        times = ledger.get(alert_id, (None, None, None))
        timed.append(Timed(phase, *((t - frame).total_seconds() if t else None for t in times)))
    return FeedbackRun(
        cameras=cameras,
        window_s=duration_s,
        warmup_s=warmup_s,
        alerts=tuple(timed),
        warmup_alerts=warm,
        histogram=histogram,
        statuses_sent=len(re.findall(r"event=status_sent status=received", recipient_log)),
        rejected_at_recipient=len(re.findall(r"(?m)^rejected: ", recipient_log)),
        load_before=load_before,
        load_after=os.getloadavg()[0],
        cores=os.cpu_count() or 1,
    )


def _ms(values: list[float]) -> list[float]:
    return [v * 1e3 for v in values]


def _p50_p99(values_ms: list[float], mean: bool = False) -> str:
    if not values_ms:
        return "-"
    p50, p99 = np.percentile(np.asarray(values_ms), [50, 99])
    return f"{p50:.1f} / {p99:.1f} ms" + (f" (mean {np.mean(values_ms):.1f} ms)" if mean else "")


def _series(r: FeedbackRun) -> dict[str, list[float]]:
    received, queued, published, between = [], [], [], []
    for a in r.alerts:
        if a.queued_s is not None:
            queued.append(a.queued_s)
        if a.received_s is not None:
            received.append(a.received_s)
        if a.published_s is not None:
            published.append(a.published_s)
            if a.received_s is not None:
                between.append(a.received_s - a.published_s)
    return {
        "frame -> received": _ms(received),
        "frame -> stored": _ms(queued),
        "frame -> PUBACK": _ms(published),
        "PUBACK -> received": _ms(between),
    }


def section(r: FeedbackRun) -> Section:
    series = _series(r)
    answered = len(series["frame -> received"])
    h = r.histogram
    hist_text = (
        f"{h.count:.0f} statuses, mean {1e3 * h.sum_s / h.count:.1f} ms, p50 / p99 ≈ "
        f"{1e3 * h.quantile(0.5):.1f} / {1e3 * h.quantile(0.99):.1f} ms"
        if h.count
        else "no statuses"
    )
    rows: list[tuple[str, str]] = [
        (
            "site and recipient",
            f"{r.cameras} camera(s) looping vtest.avi at 10 fps, detect 5 fps; "
            f"`edge-agent subscribe --status-key` answering; Mosquitto on loopback (set_tcp_nodelay true)",
        ),
        ("window", f"{r.window_s:.0f} s after a {r.warmup_s:.0f} s warm-up ({r.warmup_alerts} alerts in the warm-up)"),
        ("alerts in the window / answered with received", f"{len(r.alerts)} / {answered}"),
        ("frame -> received p50 / p99 (end to end)", _p50_p99(series["frame -> received"])),
        ("frame -> stored in the outbox and audited p50 / p99", _p50_p99(series["frame -> stored"])),
        ("frame -> PUBACK p50 / p99", _p50_p99(series["frame -> PUBACK"])),
        ("PUBACK -> received p50 / p99 (ledger)", _p50_p99(series["PUBACK -> received"], mean=True)),
        (f"PUBACK -> received, agent's histogram `{HISTOGRAM}`", hist_text),
        (
            "recipient: received statuses sent / messages rejected (whole run)",
            f"{r.statuses_sent} / {r.rejected_at_recipient}",
        ),
        (
            "load average before / after",
            f"{r.load_before:.1f} / {r.load_after:.1f} on {r.cores} cores",
        ),
    ]
    phases = sorted({a.phase for a in r.alerts})
    by_phase = tuple(
        (
            phase,
            len(mine := [1e3 * a.received_s for a in r.alerts if a.phase == phase and a.received_s is not None]),
            _p50_p99(mine),
        )
        for phase in phases
    )
    plot = Plot(
        "feedback_latency.png",
        "box",
        f"Frame -> received status, live agent and recipient ({r.cameras} camera(s), loopback)",
        (),
        tuple((name, tuple(values)) for name, values in series.items() if values),
        "ms",
    )
    return Section(
        "feedback",
        "Feedback: frame -> received status, live agent",
        (
            Table("Frame to `received`, end to end", ("measure", "value"), tuple(rows)),
            Table("frame -> received by alert phase", ("phase", "alerts", "p50 / p99"), by_phase),
        ),
        (plot,),
        notes=(
            "Frame: the alert's `sent`, the time the live source stamped on the frame that produced the event. "
            "Stored, PUBACK and received: the site's feedback ledger (the audit record written once the outbox "
            "stored the message; the PUBACK as the site's client saw it; the status's arrival at the site's MQTT "
            "client, before it is checked). One machine, one wall clock.",
            "frame -> received holds the wait for the detector's next slot, detection, tracking, rules, routing, "
            "signing, the outbox, the broker twice, the recipient's checks with its fsynced seen-store and its "
            "signing of the status.",
            "The histogram is the difference of two /metrics scrapes (window start, 2 s after its end); its p50 / p99 "
            "are interpolated within its buckets (the first is 5 ms wide).",
            *(
                ("The cameras loop the same clip from the same start, so their alerts mostly come close together.",)
                if r.cameras > 1
                else ()
            ),
        ),
        headline=(
            ("frame -> received p50 / p99", _p50_p99(series["frame -> received"])),
            ("publish (PUBACK) -> received p50 / p99", _p50_p99(series["PUBACK -> received"])),
        ),
    )


def collect(quick: bool = False) -> Section:
    return section(measure(30.0, 2, 5.0) if quick else measure(120.0, 2, 10.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=120.0, help="measured window after the warm-up")
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a 30 s window: a smoke run, not numbers to quote")
    args = parser.parse_args(argv)
    from benchmarks.report import print_section

    if args.quick:
        args.duration_s, args.warmup_s = 30.0, 5.0
    print_section(section(measure(args.duration_s, args.cameras, args.warmup_s)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
