"""`socialcare run`: the composition root that wires the store, the service, the chat
surfaces, the workers and the HTTP server into one process, and stops it cleanly.

One asyncio loop serves HTTP (Slack events, /healthz, /metrics) and Socket Mode; the
outbox workers run in threads because SQLite and the publishing clients are
synchronous. SIGTERM/SIGINT stop intake, let each worker finish the item in hand, and
exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.config import Config, Secrets
from bot.delivery import ChatWorker, DryRunPublisher, PublishWorker
from bot.errors import ConfigError
from bot.metrics import Metrics
from bot.ports import Clock, ReplyPublisher, SystemClock
from bot.service import CareService
from bot.store import Store

log = logging.getLogger(__name__)


class WorkerLoop(threading.Thread):
    """Calls `step` until stopped; idles briefly when there is nothing to do.

    An unexpected error is logged and the loop goes on after a pause: a bug in one
    item must not stop every card or reply behind it. The item stays in the outbox.
    """

    def __init__(
        self, name: str, step: Callable[[], bool], stop: threading.Event, *, idle: float = 0.25
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.step = step
        self.stop = stop
        self.idle = idle
        self.errors = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                busy = self.step()
            except Exception:
                self.errors += 1
                log.exception("%s: unexpected error; retrying shortly", self.name)
                self.stop.wait(5.0)
                continue
            if not busy:
                self.stop.wait(self.idle)


@dataclass
class Runtime:
    config: Config
    secrets: Secrets
    clock: Clock = field(default_factory=SystemClock)
    metrics: Metrics = field(default_factory=Metrics)
    publisher: ReplyPublisher | None = None

    def __post_init__(self) -> None:
        self.store = Store(self.config.database_path)
        self.ai_client: Any = self._make_llm()
        self.service = CareService(
            self.config, self.store, clock=self.clock, ai_enabled=self.ai_client is not None
        )
        self.stop_event = threading.Event()
        self.stopped = asyncio.Event()
        self.workers: list[WorkerLoop] = []
        self.chat_workers: list[ChatWorker] = []
        self._runner: web.AppRunner | None = None
        self._socket_handler: Any = None
        self.bolt_app: Any = None
        self.scheduler: Any = None
        self.port: int | None = None
        self.publish_worker = PublishWorker(
            self.service, self.publisher or self._make_publisher(), metrics=self.metrics
        )
        if self.config.slack.enabled:
            self._setup_slack()
        self.x_source: Any = None
        if self.config.sources.x.enabled:
            self._setup_x_source()
        if self.config.teams.enabled:
            log.warning("[teams] is enabled, but Microsoft Teams is not supported yet: ignored")

    # -- wiring

    def _make_llm(self) -> Any:
        """The LLM client, or None: `[llm] enabled = false` or no key means offline only."""
        if not self.config.llm.enabled:
            return None
        if not self.secrets.openai_api_key:
            log.warning("[llm] is enabled but OPENAI_API_KEY is not set: running offline")
            return None
        from integrations.openai_llm import OpenAILLM

        return OpenAILLM(
            api_key=self.secrets.openai_api_key,
            model=self.config.llm.model,
            base_url=self.secrets.openai_base_url,
            timeout=self.config.llm.timeout_seconds,
            max_retries=self.config.llm.max_retries,
        )

    def _make_publisher(self) -> ReplyPublisher:
        if self.config.publish.dry_run:
            return DryRunPublisher(self.store, self.clock)
        from integrations.x import XPublisher, make_client

        s = self.secrets
        needed = {
            "X_CONSUMER_KEY": s.x_consumer_key,
            "X_CONSUMER_SECRET": s.x_consumer_secret,
            "X_ACCESS_TOKEN": s.x_access_token,
            "X_ACCESS_TOKEN_SECRET": s.x_access_token_secret,
            "X_BEARER_TOKEN": s.x_bearer_token,
        }
        problems = [
            f"publish: {name} is not set (needed to publish to X; or set dry_run = true)"
            for name, value in needed.items()
            if not value
        ]
        if not self.config.sources.x.user_id:
            problems.append(
                "sources.x.user_id: the brand account's id is needed to publish to X"
                " (replies are checked against its timeline after a crash)"
            )
        if problems:
            raise ConfigError(problems)
        assert self.config.sources.x.user_id is not None
        user_client = make_client(
            base_url=s.x_api_url,
            consumer_key=s.x_consumer_key,
            consumer_secret=s.x_consumer_secret,
            access_token=s.x_access_token,
            access_token_secret=s.x_access_token_secret,
        )
        read_client = make_client(base_url=s.x_api_url, bearer_token=s.x_bearer_token)
        return XPublisher(user_client, read_client, brand_user_id=self.config.sources.x.user_id)

    def _setup_x_source(self) -> None:
        from integrations.x import XMentionSource, make_client

        if not self.secrets.x_bearer_token:
            raise ConfigError(["sources.x: X_BEARER_TOKEN is not set (needed to read X)"])
        x = self.config.sources.x
        self.x_source = XMentionSource(
            make_client(base_url=self.secrets.x_api_url, bearer_token=self.secrets.x_bearer_token),
            brand_user_id=x.user_id,
            queries=list(x.queries),
            poll_seconds=x.poll_seconds,
            clock=self.clock,
            cursors=self.service,
        )

    def poll_sources(self) -> bool:
        """One step of the source worker: poll whatever is due and ingest it."""
        if self.x_source is None:
            return False
        return bool(self.x_source.poll_due(self._ingest_logged))

    def _ingest_logged(self, mentions: list[Any]) -> None:
        stats = self.service.ingest_many(mentions)
        log.info(
            "x: %d new cases, %d joined conversations, %d already stored",
            stats.created,
            stats.joined,
            stats.duplicates,
        )

    def _setup_slack(self) -> None:
        from handlers.slack import SlackSurface, build_app
        from integrations.slack_api import SlackApi, make_async_web_client, make_web_client

        token = self.secrets.slack_bot_token
        problems = []
        if not token:
            problems.append("slack.enabled: SLACK_BOT_TOKEN is not set")
        if self.config.slack.mode == "http" and not self.secrets.slack_signing_secret:
            problems.append("slack.mode: http mode needs SLACK_SIGNING_SECRET")
        if self.config.slack.mode == "socket" and not self.secrets.slack_app_token:
            problems.append("slack.mode: socket mode needs SLACK_APP_TOKEN")
        if problems:
            raise ConfigError(problems)
        assert token is not None
        url = self.secrets.slack_api_url
        from integrations.charts import digest_chart

        surface = SlackSurface(
            SlackApi(make_web_client(token, url)), self.config, self.clock, chart=digest_chart
        )
        self.chat_workers.append(
            ChatWorker(
                self.service,
                surface,
                messages_per_second=self.config.slack.messages_per_second,
                metrics=self.metrics,
            )
        )
        self.bolt_app = build_app(
            self.service,
            client=make_async_web_client(token, url),
            signing_secret=(
                self.secrets.slack_signing_secret if self.config.slack.mode == "http" else None
            ),
            clock=self.clock,
            metrics=self.metrics,
        )

    # -- HTTP

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**2)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self.bolt_app is not None and self.config.slack.mode == "http":
            app.router.add_post("/slack/events", self._slack_events)
        app.router.add_post("/api/messages", self._teams_messages)
        return app

    async def _teams_messages(self, request: web.Request) -> web.Response:
        # The route of the contract exists; the Teams surface does not yet.
        return web.json_response(
            {"error": "Microsoft Teams is not supported by this version of socialcare"},
            status=501,
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        writable = await asyncio.to_thread(self.store.is_writable)
        workers = (
            bool(self.workers)
            and all(w.is_alive() for w in self.workers)
            and not self.stop_event.is_set()
        )
        ok = writable and workers
        uncertain = await asyncio.to_thread(self.service.uncertain_publishes)
        body: dict[str, object] = {
            "status": "ok" if ok else "unhealthy",
            "store": writable,
            "workers": workers,
            # Replies that may be out unrecorded: being checked, never re-sent blindly.
            "uncertain_publishes": [
                {"case": c.id, "network": c.network, "since": c.publish_uncertain_since.isoformat()}
                for c in uncertain
                if c.publish_uncertain_since is not None
            ],
        }
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        depth = await asyncio.to_thread(self.service.outbox.depth)
        stored = await asyncio.to_thread(self.store.scalar, "SELECT count(*) FROM mentions")
        self.metrics.mentions_stored.set(stored or 0)
        for kind in ("card", "note", "publish"):
            self.metrics.outbox_depth.labels(kind=kind).set(depth.get(kind, 0))
        from prometheus_client import CONTENT_TYPE_LATEST

        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _slack_events(self, request: web.Request) -> web.Response:
        from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

        bolt_request = await to_bolt_request(request)
        bolt_response = await self.bolt_app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    # -- lifecycle

    async def start(self) -> None:
        self.publish_worker.recover()
        from bot.delivery import CHAT_KINDS

        # Whatever a dead process left `sending` goes back to the queue (else it would
        # block its channel for good).
        self.service.outbox.release_in_flight(CHAT_KINDS)
        for worker in self.chat_workers:
            self.workers.append(
                WorkerLoop(f"chat-{worker.surface.name}", worker.run_once, self.stop_event)
            )
        self.workers.append(WorkerLoop("publish", self.publish_worker.run_once, self.stop_event))
        self._start_scheduler()
        if self.x_source is not None:
            self.workers.append(WorkerLoop("x-poller", self.poll_sources, self.stop_event))
        if self.ai_client is not None:
            from bot.ai import AI, AIEnricher

            self.service.outbox.release_in_flight([AI])
            enricher = AIEnricher(self.service, self.ai_client)
            for n in range(self.config.llm.max_concurrency):
                self.workers.append(WorkerLoop(f"llm-{n}", enricher.run_once, self.stop_event))
        for thread in self.workers:
            thread.start()
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.server.port
        if self.bolt_app is not None and self.config.slack.mode == "socket":
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
            from slack_sdk.errors import SlackApiError

            self._socket_handler = AsyncSocketModeHandler(
                self.bolt_app, self.secrets.slack_app_token
            )
            client = self._socket_handler.client
            try:
                # slack_sdk's connect() retries a refused token forever; asking for the
                # first URL ourselves turns that into a clear start-up error.
                client.wss_uri = await client.issue_new_wss_url()
            except SlackApiError as exc:
                await self.shutdown()
                raise ConfigError(
                    [
                        "slack.mode: Slack refused SLACK_APP_TOKEN for Socket Mode"
                        f" ({exc.response.get('error')}); it must be an app-level xapp- token"
                        " with connections:write"
                    ]
                ) from None
            await self._socket_handler.connect_async()
        log.info(
            "socialcare running: http://%s:%s (slack: %s)",
            self.config.server.host,
            self.port,
            self.config.slack.mode if self.bolt_app else "off",
        )

    def _start_scheduler(self) -> None:
        import uuid

        from bot.followup import FollowUp
        from integrations.scheduler import start_scheduler

        followup = FollowUp(self.service)
        owner = f"{uuid.uuid4()}"

        def tick() -> None:
            try:
                followup.tick(self.clock.now(), owner=owner)
            except Exception:
                log.exception("follow-up tick failed; the next tick retries")

        self.scheduler = start_scheduler(
            tick, digest_time=self.config.digest.time, tz=self.config.tz
        )

    def request_stop(self) -> None:
        self.stopped.set()

    async def shutdown(self) -> None:
        """Stop intake, let workers finish the item in hand, close everything. Idempotent."""
        if self._socket_handler is not None:
            handler, self._socket_handler = self._socket_handler, None
            await handler.close_async()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        # Listeners keep working after their ack: let them finish before the store closes.
        running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if running:
            await asyncio.wait(running, timeout=5)
        if self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            await asyncio.to_thread(scheduler.shutdown, True)
        self.stop_event.set()
        for thread in self.workers:
            await asyncio.to_thread(thread.join, 30)
        self.store.close()

    async def serve(self) -> None:
        await self.start()
        try:
            await self.stopped.wait()
        finally:
            await self.shutdown()


def run(config: Config, secrets: Secrets) -> int:
    """Run until SIGINT/SIGTERM; exit 0 after draining."""

    async def main() -> None:
        runtime = Runtime(config, secrets)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.request_stop)
        await runtime.serve()
        log.info("socialcare stopped cleanly")

    asyncio.run(main())
    return 0
