"""Teams invoke ack latency: socialcare's `POST /api/messages` handler vs a bare Microsoft 365
Agents SDK agent whose `Action.Execute` handler answers a small card at once, both served on
loopback aiohttp in the same process and measured in the same run.

Each request is an `adaptiveCard/action` invoke (verb `claim`, its own case) with a fresh RS256
bearer token from the fake Bot Framework issuer (tests/fakes/teams.py); the latency is the
client's round trip, the HTTP response being the invoke's answer (the card Teams shows).

socialcare: `Runtime(...).web_app()` with Teams enabled: token check (TeamsTokenValidator),
Activity validation, service-URL bookkeeping, delivery dedupe, the real claim and the
re-rendered case card, all before the answer.

Baseline: the SDK's own stack: `jwt_authorization_middleware` (JwtTokenValidator),
`start_agent_process` -> `CloudAdapter.process` -> `AgentApplication` (MemoryStorage turn state,
a `ConnectionManager` of the SDK's `MsalAuth` against the fake Entra login) with an
`adaptive_card.action_execute("claim")` handler returning a one-TextBlock card.

Neither side fetches signing keys during the measurement: socialcare reads the fake issuer's
OpenID metadata and JWKS once (TEAMS_OPENID_METADATA_URL) and keeps the keys; the SDK's
validator gets its PyJWKClient for login.botframework.com's JWKS URL pre-registered, pointed at
the fake issuer's JWKS (fetched once, cached for an hour). Both fetch during the warm-up.

Modes: sequential (one client; socialcare and baseline requests alternate) and concurrent
(`--clients` threads at once against one server; blocks of clients x 5 requests alternate between
the two servers, so both see the same moments of the run). Then both modes again "during a
burst": bursts of `--burst` mentions (`CareService.ingest_many`, as bench_slack_ack does) are
ingested back to back in another thread from before the first request until after the last, so
every measured request overlaps one (one burst alone is over in about 2 s, before a tenth of
the requests). The bursts share the process (and its GIL) with both servers, so they load the
baseline too; only socialcare also waits for SQLite's write lock.

Checks (exit 1 if one fails): every answer is HTTP 200 with an Adaptive Card invoke response,
and every socialcare invoke claimed its case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from jwt import PyJWKClient  # noqa: E402
from microsoft_agents.activity import AdaptiveCardInvokeResponse  # noqa: E402
from microsoft_agents.authentication.msal import MsalAuth  # noqa: E402
from microsoft_agents.hosting.aiohttp import (  # noqa: E402
    CloudAdapter,
    jwt_authorization_middleware,
    start_agent_process,
)
from microsoft_agents.hosting.core import (  # noqa: E402
    AgentApplication,
    AgentAuthConfiguration,
    AuthTypes,
    ConnectionManager,
    MemoryStorage,
    TurnContext,
    TurnState,
)
from microsoft_agents.hosting.core.authorization import AuthenticationConstants  # noqa: E402
from microsoft_agents.hosting.core.authorization.jwt.jwt_token_validator import (  # noqa: E402
    JwtTokenValidator,
    _JwkClientCacheEntry,
)
from msal import ConfidentialClientApplication  # noqa: E402

from bot.config import Secrets, parse_config  # noqa: E402
from bot.models import Mention  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from tests.fakes.teams import (  # noqa: E402
    ADAPTIVE_CARD,
    BOT_APP_ID,
    CHANNEL_ID,
    CLIENT_SECRET,
    TENANT_ID,
    USER_AAD_ID,
    FakeBotConnector,
    FakeBotIssuer,
    FakeEntraLogin,
    card_action,
)

WARMUP = 20
GOAL = 1.5  # socialcare's p99 within 1.5x of the bare SDK handler's
BLOCK_PER_CLIENT = 5  # concurrent mode: each block is clients x this many requests
AUTH = (
    "JWT on both: socialcare's TeamsTokenValidator (RS256, iss, aud, exp, serviceurl claim);"
    " the SDK's jwt_authorization_middleware / JwtTokenValidator (RS256, aud, exp; issuer"
    " allow-list off by default). Keys from the fake issuer, fetched once at warm-up by each."
)


class Served:
    """An aiohttp app on 127.0.0.1 (ephemeral port), on its own event loop thread."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app, access_log=None)
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# ------------------------------------------------------------------ the baseline


class LoopbackMsalAuth(MsalAuth):
    """The SDK's MsalAuth with MSAL's instance discovery off (else MSAL would ask
    login.microsoftonline.com about the loopback authority), as tests/test_fake_teams.py."""

    def _create_client_application(self, tenant_id: str | None = None) -> Any:
        config = self._msal_configuration
        return ConfidentialClientApplication(
            client_id=config.CLIENT_ID,
            authority=MsalAuth._resolve_authority(config, tenant_id),
            client_credential=config.CLIENT_SECRET,
            instance_discovery=False,
        )


SMALL_CARD = {
    "type": "AdaptiveCard",
    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Claimed.", "wrap": True}],
}


def bare_sdk(login: FakeEntraLogin, issuer: FakeBotIssuer) -> web.Application:
    """A bare Agents SDK agent: JWT middleware, CloudAdapter, AgentApplication, one handler."""
    auth_config = AgentAuthConfiguration(
        AuthTypes.client_secret,
        client_id=BOT_APP_ID,
        tenant_id=TENANT_ID,
        client_secret=CLIENT_SECRET,
        authority=login.authority,
    )
    connections = ConnectionManager(
        provider_factory=LoopbackMsalAuth,
        connections_configurations={"SERVICE_CONNECTION": auth_config},
    )
    # Bot Framework tokens (iss api.botframework.com) are checked against the keys at the
    # hard-coded login.botframework.com JWKS URL: that URL's client is registered up front,
    # reading the fake issuer's JWKS instead (cached an hour: no refetch during the run).
    JwtTokenValidator._jwk_client_manager._cache[AuthenticationConstants.PUBLIC_ABS_JWKS_URL] = (
        _JwkClientCacheEntry(PyJWKClient(issuer.jwks_url, lifespan=3600), threading.Lock())
    )
    adapter = CloudAdapter(connection_manager=connections)
    # No typing indicator: an invoke is answered in its HTTP response.
    agent = AgentApplication[TurnState](
        storage=MemoryStorage(), connection_manager=connections, start_typing_timer=False
    )

    @agent.adaptive_card.action_execute("claim")
    async def claim(context: TurnContext, state: TurnState, data: Any) -> Any:
        return AdaptiveCardInvokeResponse(status_code=200, type=ADAPTIVE_CARD, value=SMALL_CARD)

    async def messages(request: web.Request) -> web.Response:
        response = await start_agent_process(request, agent, adapter)
        assert response is not None
        return response

    app = web.Application(middlewares=[jwt_authorization_middleware])
    app.router.add_post("/api/messages", messages)
    app["agent_configuration"] = auth_config
    app["agent_app"] = agent
    app["adapter"] = adapter
    return app


# ------------------------------------------------------------------ requests


class Client:
    """Sends signed claim invokes; records failures (anything but a 200 card answer)."""

    def __init__(self, issuer: FakeBotIssuer, service_url: str) -> None:
        self.issuer = issuer
        self.service_url = service_url
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def invoke(self, port: int, case_id: int) -> float:
        root = str(1_700_000_000_000 + case_id)
        activity = card_action(
            "claim",
            {"case": case_id},
            conversation_id=f"{CHANNEL_ID};messageid={root}",
            reply_to_id=root,
            service_url=self.service_url,
            action_id="claim",
            title="Claim",
        )
        token = self.issuer.token(BOT_APP_ID, self.service_url)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/messages",
            data=json.dumps(activity).encode(),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Authorization": f"Bearer {token}",
            },
            method="POST",
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        elapsed = time.perf_counter() - start
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not (
            status == 200
            and isinstance(body, dict)
            and body.get("statusCode") == 200
            and body.get("type") == ADAPTIVE_CARD
        ):
            with self._lock:
                self.failures.append(f"port {port} case {case_id}: HTTP {status} {raw[:200]!r}")
        return elapsed


def sequential(
    client: Client, ours: int, bare: int, case_ids: list[int]
) -> tuple[list[float], list[float]]:
    """One client; socialcare and the baseline alternate request by request."""
    ours_s: list[float] = []
    bare_s: list[float] = []
    for n, case_id in enumerate(case_ids):
        order = [(ours, ours_s), (bare, bare_s)]
        for port, samples in order if n % 2 == 0 else reversed(order):
            samples.append(client.invoke(port, case_id))
    return ours_s, bare_s


def concurrent(
    client: Client, ours: int, bare: int, case_ids: list[int], clients: int
) -> tuple[list[float], list[float]]:
    """`clients` threads at once against one server, in blocks alternating between servers."""
    ours_s: list[float] = []
    bare_s: list[float] = []
    block = clients * BLOCK_PER_CLIENT
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for b, start in enumerate(range(0, len(case_ids), block)):
            ids = case_ids[start : start + block]
            order = [(ours, ours_s), (bare, bare_s)]
            for port, samples in order if b % 2 == 0 else reversed(order):
                samples.extend(pool.map(lambda case_id, p=port: client.invoke(p, case_id), ids))
    return ours_s, bare_s


class Bursts(threading.Thread):
    """Ingests bursts of `size` mentions back to back until stopped (the burst in hand is
    finished), so every request measured meanwhile overlaps one."""

    def __init__(self, runtime: Runtime, size: int, tag: str) -> None:
        super().__init__(name=f"bursts-{tag}", daemon=True)
        self.runtime, self.size, self.tag = runtime, size, tag
        self.halt = threading.Event()
        self.seconds: list[float] = []

    def run(self) -> None:
        while not self.halt.is_set():
            start = time.perf_counter()
            self.runtime.service.ingest_many(
                mentions(
                    f"{self.tag}{len(self.seconds)}-",
                    self.size,
                    lambda i: f"@BenchAir complaint {i}: my bag {i % 97} is lost, flight {i} late",
                )
            )
            self.seconds.append(time.perf_counter() - start)

    def __enter__(self) -> Bursts:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.join()


# ------------------------------------------------------------------ figures


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": percentile(ordered, 50) * 1000,
        "p95_ms": percentile(ordered, 95) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def compare(ours: list[float], bare: list[float]) -> dict[str, Any]:
    result: dict[str, Any] = {"socialcare": summary(ours), "bare_sdk": summary(bare)}
    for p in ("p50", "p95", "p99"):
        result[f"{p}_ratio"] = result["socialcare"][f"{p}_ms"] / result["bare_sdk"][f"{p}_ms"]
    result["within_goal"] = result["p99_ratio"] <= GOAL
    return result


def mentions(prefix: str, count: int, text: Callable[[int], str]) -> Iterator[Mention]:
    now = datetime.now(UTC)
    for i in range(count):
        yield Mention(
            network="x",
            id=f"{prefix}{i}",
            author_id=f"{prefix}a{i}",
            author_handle=f"{prefix}u{i}",
            text=text(i),
            created_at=now,
        )


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=300,
        help="invokes measured per app in each mode and scenario (default 300)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=8,
        help="client threads at once in the concurrent mode (default 8)",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=5000,
        help="mentions per burst in the loaded scenario; bursts are ingested back to back in"
        " another thread for as long as the requests take (default 5000)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.requests < 1 or args.clients < 1 or args.burst < 1:
        parser.error("--requests, --clients and --burst must be at least 1")
    n = args.requests

    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        login = stack.enter_context(FakeEntraLogin())
        connector = stack.enter_context(FakeBotConnector(login))
        issuer = stack.enter_context(FakeBotIssuer())
        # MSAL (requests) trusts the fake login's throwaway CA this way.
        assert login.ca_file is not None
        os.environ["REQUESTS_CA_BUNDLE"] = login.ca_file
        data = {
            "bot": {"brand": "Bench Air", "database": "bench.db"},
            "slack": {"enabled": False},
            "teams": {"enabled": True},
            "departments": [
                {
                    "id": "care",
                    "name": "Care",
                    "teams_channel": CHANNEL_ID,
                    "members": [USER_AAD_ID],
                    "default": True,
                }
            ],
            "publish": {"dry_run": True},
        }
        config = parse_config(data, base_dir=Path(tmp))
        secrets = Secrets(
            teams_app_id=BOT_APP_ID,
            teams_app_password=CLIENT_SECRET,
            teams_tenant_id=TENANT_ID,
            teams_login_url=login.url,
            teams_openid_metadata_url=issuer.metadata_url,
            teams_service_url=connector.service_url,
        )
        runtime = Runtime(config, secrets)
        stack.callback(runtime.store.close)
        stack.callback(runtime.teams_api.close)
        stats = runtime.service.ingest_many(
            mentions("c", WARMUP + 4 * n, lambda i: "my flight was delayed, refund please")
        )
        case_ids = list(stats.case_ids)
        ours_server = Served(runtime.web_app())
        stack.callback(ours_server.stop)
        bare_server = Served(bare_sdk(login, issuer))
        stack.callback(bare_server.stop)
        ours, bare = ours_server.port, bare_server.port
        client = Client(issuer, connector.service_url)

        # Warm-up: key fetches, the SDK's first MSAL token, imports, connections.
        for case_id in case_ids[:WARMUP]:
            client.invoke(ours, case_id)
            client.invoke(bare, case_id)
        ids = iter([case_ids[WARMUP + i * n : WARMUP + (i + 1) * n] for i in range(4)])

        results: dict[str, Any] = {}
        results["idle_sequential"] = compare(*sequential(client, ours, bare, next(ids)))
        results["idle_concurrent"] = compare(
            *concurrent(client, ours, bare, next(ids), args.clients)
        )
        for mode in ("sequential", "concurrent"):
            with Bursts(runtime, args.burst, f"{mode}-") as load:
                if mode == "sequential":
                    samples = sequential(client, ours, bare, next(ids))
                else:
                    samples = concurrent(client, ours, bare, next(ids), args.clients)
            results[f"burst_{mode}"] = compare(*samples) | {
                "burst": args.burst,
                "bursts": len(load.seconds),
                "burst_seconds_mean": statistics.fmean(load.seconds),
            }
        claimed = runtime.store.scalar("SELECT count(*) FROM cases WHERE state = 'claimed'")

    expected_claims = WARMUP + 4 * n
    result: dict[str, Any] = {
        "requests": n,
        "clients": args.clients,
        "burst": args.burst,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "auth": AUTH,
        "goal_p99_ratio": GOAL,
        **results,
        "claims_applied": claimed,
        "claims_expected": expected_claims,
        "failures": client.failures[:10],
        "failed_requests": len(client.failures),
    }
    ok = not client.failures and claimed == expected_claims
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"Teams invoke ack latency, {n} signed claim invokes per app and mode"
            f" (loopback HTTP, {os.cpu_count()} CPUs)"
        )
        print(f"auth: {AUTH}")
        head = f"{'scenario':<22}{'app':<12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        print(head)
        for name in ("idle_sequential", "idle_concurrent", "burst_sequential", "burst_concurrent"):
            r = result[name]
            for app in ("socialcare", "bare_sdk"):
                s = r[app]
                print(
                    f"{name if app == 'socialcare' else '':<22}{app:<12}{s['p50_ms']:>9.2f}"
                    f"{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['max_ms']:>9.2f}"
                )
            line = (
                f"{'':<22}{'ratio':<12}{r['p50_ratio']:>8.2f}x{r['p95_ratio']:>8.2f}x"
                f"{r['p99_ratio']:>8.2f}x  p99 goal <= {GOAL}x:"
                f" {'met' if r['within_goal'] else 'NOT met'}"
            )
            if "burst" in r:
                line += (
                    f"; {r['bursts']} bursts of {r['burst']} back to back,"
                    f" {r['burst_seconds_mean']:.1f} s each"
                )
            print(line)
        print(f"claims applied: {claimed} of {expected_claims}")
        for failure in client.failures[:10]:
            print(f"failed: {failure}")
    if not ok:
        print(
            f"check failed: {len(client.failures)} failed request(s),"
            f" {claimed} claims applied of {expected_claims}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
