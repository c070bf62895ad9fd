"""A small agent stand-in run as a subprocess by the kill -9 test.

Commits `--count` signed alerts to the outbox (then prints `put <count>`),
and lets a publisher drain it; with `--count 0` it only drains what the
outbox already holds. Prints `drained` once the outbox is empty.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: `agent`

from agent.config import MqttConfig, OutboxConfig
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import MqttPublisher
from agent.delivery.signing import AlertSigner
from tests.delivery.sample_alerts import make_alert


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--site", default="site-k")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--max-inflight", type=int, default=32)
    args = parser.parse_args()
    signer = AlertSigner.from_file(args.key)
    topic = f"edge/{args.site}/cam/alerts/yard"
    with Outbox(OutboxConfig(path=args.outbox)) as box:
        for n in range(args.count):
            box.put(make_alert(signer, topic, n))
        print(f"put {args.count}", flush=True)
        config = MqttConfig(port=args.port)
        with MqttPublisher(config, args.site, box, reconnect_max_s=1.0, max_inflight=args.max_inflight) as pub:
            pub.wait_connected(10)
            ok = pub.flush(30)
            print("drained" if ok else "not drained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
