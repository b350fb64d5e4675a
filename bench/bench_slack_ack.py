"""Interaction ack latency: socialcare's Slack handlers vs a bare Bolt app with a no-op
handler, both behind the same aiohttp adapter and signature check, measured in one run.

Each request is a signed `claim` button click on its own case, sent over loopback HTTP;
the latency is the client's round trip (the HTTP response is Bolt's ack).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Secrets, parse_config  # noqa: E402
from bot.models import Mention  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from tests.fakes.slack import start_fake_slack  # noqa: E402

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-not-real"


class Served:
    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.runner = web.AppRunner(app)
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def click(port: int, case_id: int, n: int) -> float:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0AGENT1", "team_id": "T0ACME"},
        "team": {"id": "T0ACME"},
        "channel": {"id": "C0CARE"},
        "trigger_id": f"bench-{n}",
        "actions": [{"action_id": "claim", "value": str(case_id), "action_ts": "1"}],
    }
    body = "payload=" + urllib.parse.quote(json.dumps(payload))
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events",
        data=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        },
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        assert response.status == 200
    return time.perf_counter() - start


def bare_bolt(api_url: str) -> web.Application:
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=api_url), signing_secret=SECRET)

    @bolt.action("claim")
    async def noop(ack: Any) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--burst", type=int, default=5000, help="mentions ingested during the loaded phase"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with start_fake_slack() as fake, tempfile.TemporaryDirectory() as tmp:
        data = {
            "bot": {"brand": "Bench Air", "database": "bench.db"},
            "slack": {"enabled": True, "mode": "http"},
            "departments": [
                {
                    "id": "care",
                    "name": "Care",
                    "slack_channel": "C0CARE",
                    "members": ["U0AGENT1"],
                    "default": True,
                }
            ],
            "publish": {"dry_run": True},
        }
        config = parse_config(data, base_dir=Path(tmp))
        secrets = Secrets(
            slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=fake.api_url
        )
        runtime = Runtime(config, secrets)
        now = datetime.now(UTC)
        stats = runtime.service.ingest_many(
            Mention(
                network="x",
                id=str(i),
                author_id=str(i),
                author_handle=f"u{i}",
                text="my flight was delayed, refund please",
                created_at=now,
            )
            for i in range(2 * args.requests + 20)
        )
        ours, bare = Served(runtime.web_app()), Served(bare_bolt(fake.api_url))
        for i in range(20):  # warm-up: first auth.test, imports, connections
            click(ours.port, stats.case_ids[i], -i - 1)
            click(bare.port, 1, -i - 1000)
        ours_samples: list[float] = []
        bare_samples: list[float] = []
        idle_ids = stats.case_ids[20 : 20 + args.requests]
        for n, case_id in enumerate(idle_ids):
            ours_samples.append(click(ours.port, case_id, n))
            bare_samples.append(click(bare.port, 1, n + 100_000))
        # Loaded: a viral burst is ingested (classify, route, store, queue) meanwhile.
        burst_done = threading.Event()

        def ingest_burst() -> None:
            runtime.service.ingest_many(
                Mention(
                    network="x",
                    id=f"burst-{i}",
                    author_id=f"b{i}",
                    author_handle=f"b{i}",
                    text=f"@BenchAir complaint {i}: my bag {i % 97} is lost, flight {i} late",
                    created_at=now,
                )
                for i in range(args.burst)
            )
            burst_done.set()

        loader = threading.Thread(target=ingest_burst)
        loader.start()
        burst_samples = [
            click(ours.port, case_id, n + 200_000)
            for n, case_id in enumerate(stats.case_ids[20 + args.requests :])
        ]
        during = not burst_done.is_set()
        loader.join()
        ours.stop()
        bare.stop()
        claimed = runtime.store.scalar("SELECT count(*) FROM cases WHERE state = 'claimed'")
        runtime.store.close()
    result = {
        "requests": args.requests,
        "socialcare": summary(ours_samples),
        "bare_bolt_noop": summary(bare_samples),
        "claims_applied": claimed,
        "socialcare_during_burst": summary(burst_samples)
        | {"max_ms": max(burst_samples) * 1000, "burst": args.burst, "overlapped": during},
    }
    result["p50_ratio"] = result["socialcare"]["p50_ms"] / result["bare_bolt_noop"]["p50_ms"]
    result["p99_ratio"] = result["socialcare"]["p99_ms"] / result["bare_bolt_noop"]["p99_ms"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"interaction ack latency over {args.requests} signed claim clicks (loopback HTTP)")
        print(f"{'app':<24}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
        for name in ("socialcare", "bare_bolt_noop"):
            s = result[name]
            print(f"{name:<24}{s['p50_ms']:>10.2f}{s['p99_ms']:>10.2f}{s['mean_ms']:>10.2f}")
        print(
            f"ratio socialcare / bare: p50 {result['p50_ratio']:.2f}x,"
            f" p99 {result['p99_ratio']:.2f}x"
        )
        print(f"claims applied after the run: {claimed} (acks come first; work follows)")
        b = result["socialcare_during_burst"]
        print(
            f"during a burst of {args.burst} mentions being ingested"
            f"{'' if b['overlapped'] else ' (burst finished before the clicks did)'}:"
            f" p50 {b['p50_ms']:.2f} ms, p99 {b['p99_ms']:.2f} ms, max {b['max_ms']:.2f} ms"
            f" (Slack's limit: 3000 ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
