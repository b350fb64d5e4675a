"""`socialcare run`: the composition root that wires the store, the service, the chat
surfaces, the workers and the HTTP server into one process, and stops it cleanly.

One asyncio loop serves HTTP (Slack events, /healthz, /metrics) and Socket Mode; the
outbox workers run in threads because SQLite and the publishing clients are
synchronous. SIGTERM/SIGINT stop intake, let each worker finish the item in hand, and
exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.config import Config, Secrets, missing_environment
from bot.delivery import ChatWorker, DryRunPublisher, PublisherRouter, PublishWorker
from bot.errors import AlreadyRunning, ConfigError, DependencyUnreachable
from bot.health import Health
from bot.metrics import Metrics
from bot.moderation import DryRunModerator, ModerationWorker, ModeratorRouter
from bot.ports import Clock, CommentModerator, ReplyPublisher, SystemClock
from bot.service import CareService
from bot.storage import open_store

log = logging.getLogger(__name__)

# SIGTERM to exit: a rolling deploy or systemd gives about 10 s before SIGKILL.
SHUTDOWN_GRACE_SECONDS = 4.0
# Socket Mode could not reach Slack (as opposed to Slack refusing the app token).
SOCKET_UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError)


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
    # Who hides comments, per network (the Meta adapter's moderator for "facebook" and
    # "instagram"); empty: hiding fails with the reason. `[publish].dry_run` replaces
    # them all with the dry-run moderator.
    moderators: Mapping[str, CommentModerator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._bluesky: Any = None
        self._meta_graph: Any = None
        self.meta_webhook: Any = None
        self.meta_inbox: Any = None
        self.comment_moderator: Any = None  # CommentModerator, when Facebook or Instagram is on
        self.sources: list[Any] = []
        self.store = open_store(self.config.database_target())
        self.health = Health(self.clock)
        self.started_at = self.clock.now()
        self.slack_identity: Any = None
        self.ai_client: Any = self._make_llm()
        if self.ai_client is not None:
            self.health.track("llm", critical=False)
        self.service = CareService(
            self.config, self.store, clock=self.clock, ai_enabled=self.ai_client is not None
        )
        self.service.outbox.lease = timedelta(seconds=self.config.server.lease_seconds)
        self.stop_event = threading.Event()
        self.stopped = asyncio.Event()
        self._socket_task: asyncio.Task[None] | None = None
        self.workers: list[WorkerLoop] = []
        self.chat_workers: list[ChatWorker] = []
        self._runner: web.AppRunner | None = None
        self._socket_handler: Any = None
        self.bolt_app: Any = None
        self.scheduler: Any = None
        self.port: int | None = None
        self.publish_worker = PublishWorker(
            self.service,
            self.publisher or self._make_publisher(),
            metrics=self.metrics,
            # A dry run reaches no network: nothing to report about X.
            health=None if self.config.publish.dry_run else self.health,
        )
        self.moderation_worker = ModerationWorker(
            self.service,
            self._make_moderator(),
            health=None if self.config.publish.dry_run else self.health,
        )
        self.health.track("scheduler", critical=False)
        self.teams: Any = None
        self.teams_api: Any = None
        if self.config.slack.enabled:
            self._setup_slack()
        if self.config.teams.enabled:
            self._setup_teams()
        self.x_source: Any = None
        if self.config.sources.x.enabled:
            self._setup_x_source()
        self._setup_other_sources()
        if self._meta_enabled():
            self._setup_meta()

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
            max_tokens_param=self.config.llm.max_tokens_param,
        )

    def _make_moderator(self) -> CommentModerator:
        """Dry run, or the configured moderator of each network (ModeratorRouter)."""
        if self.config.publish.dry_run:
            return DryRunModerator(self.store, self.clock)
        moderators = dict(self.moderators)
        if self._meta_enabled():
            from integrations.meta_publish import MetaModerator

            # The page's one token hides comments on both networks.
            self.comment_moderator = self.comment_moderator or MetaModerator(self._graph())
            for network in ("facebook", "instagram"):
                if getattr(self.config.sources, network).enabled:
                    moderators.setdefault(network, self.comment_moderator)
        return ModeratorRouter(moderators)

    def _make_publisher(self) -> ReplyPublisher:
        """Dry run, or one publisher per network the bot answers on (PublisherRouter)."""
        if self.config.publish.dry_run:
            return DryRunPublisher(self.store, self.clock)
        sources = self.config.sources
        publishers: dict[str, ReplyPublisher] = {}
        if "x" in publishing_networks(self.config):
            publishers["x"] = self._make_x_publisher()
        publishers.update(self._meta_publishers())
        if sources.bluesky.enabled:
            from integrations.bluesky import BlueskyPublisher

            assert sources.bluesky.handle is not None
            publishers["bluesky"] = BlueskyPublisher(
                self._bluesky_client(), handle=sources.bluesky.handle
            )
        if sources.mastodon.enabled:
            from integrations.mastodon_api import MastodonPublisher

            publishers["mastodon"] = MastodonPublisher(self._mastodon_client())
        for network in publishers:
            self.health.track(network, critical=True)
        return PublisherRouter(publishers)

    def _bluesky_client(self) -> Any:
        """One Bluesky client (one login: createSession is rate limited), shared."""
        if self._bluesky is None:
            from integrations.bluesky import make_client

            bluesky = self.config.sources.bluesky
            if not bluesky.handle:
                raise ConfigError(["sources.bluesky.handle: the brand account's handle is needed"])
            assert self.secrets.bluesky_app_password is not None  # checked by run()
            self._bluesky = make_client(
                base_url=self.secrets.bluesky_api_url,
                handle=bluesky.handle,
                app_password=self.secrets.bluesky_app_password,
            )
        return self._bluesky

    def _meta_enabled(self) -> bool:
        return self.config.sources.facebook.enabled or self.config.sources.instagram.enabled

    def _graph(self) -> Any:
        """One Graph API client (the page's one token) for Facebook and Instagram."""
        if self._meta_graph is None:
            from integrations.meta import make_graph

            s = self.secrets
            assert s.meta_page_access_token and s.meta_app_secret  # checked by run()
            self._meta_graph = make_graph(
                access_token=s.meta_page_access_token,
                app_secret=s.meta_app_secret,
                version=self.config.meta.graph_version,
                base_url=s.meta_graph_url,
            )
        return self._meta_graph

    def _meta_publishers(self) -> dict[str, ReplyPublisher]:
        from integrations.meta_publish import MetaModerator, MetaPublisher

        sources = self.config.sources
        page_id, account_id = sources.facebook.page_id, sources.instagram.account_id
        found: dict[str, ReplyPublisher] = {}
        for network in ("facebook", "instagram"):
            if getattr(sources, network).enabled:
                found[network] = MetaPublisher(
                    self._graph(), network=network, page_id=page_id, account_id=account_id
                )
        if found:
            self.comment_moderator = MetaModerator(self._graph())
        return found

    def _setup_meta(self) -> None:
        """Backfill pollers, the webhook and its inbox worker for Facebook and Instagram."""
        from handlers.meta_webhook import MetaWebhook
        from integrations.meta import FacebookSource, InstagramSource, MetaInbox

        sources, s = self.config.sources, self.secrets
        for network, cls, object_id in (
            ("facebook", FacebookSource, sources.facebook.page_id),
            ("instagram", InstagramSource, sources.instagram.account_id),
        ):
            section = getattr(sources, network)
            if section.enabled and object_id:
                self.health.track(network, critical=True)
                self.sources.append(
                    cls(
                        self._graph(),
                        object_id=object_id,
                        poll_seconds=section.poll_seconds,
                        clock=self.clock,
                        cursors=self.service,
                        health=self.health,
                    )
                )
        assert s.meta_app_secret and s.meta_verify_token  # checked by run()
        self.meta_webhook = MetaWebhook(
            self.service, app_secret=s.meta_app_secret, verify_token=s.meta_verify_token
        )
        self.meta_inbox = MetaInbox(
            self.service,
            self._graph(),
            page_id=sources.facebook.page_id if sources.facebook.enabled else None,
            account_id=sources.instagram.account_id if sources.instagram.enabled else None,
            ingest=self._ingest_logged,
            health=self.health,
        )

    def _mastodon_client(self) -> Any:
        """A Mastodon client; the source and the publisher each get their own (the SDK's
        rate-limit state is per client and not thread-safe)."""
        from integrations.mastodon_api import make_client

        mastodon = self.config.sources.mastodon
        if not mastodon.instance:
            raise ConfigError(["sources.mastodon.instance: the brand account's instance is needed"])
        assert self.secrets.mastodon_access_token is not None  # checked by run()
        return make_client(
            instance=mastodon.instance, access_token=self.secrets.mastodon_access_token
        )

    def _make_x_publisher(self) -> ReplyPublisher:
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
        self.health.track("x", critical=True)
        self.x_source = XMentionSource(
            make_client(base_url=self.secrets.x_api_url, bearer_token=self.secrets.x_bearer_token),
            brand_user_id=x.user_id,
            queries=list(x.queries),
            poll_seconds=x.poll_seconds,
            clock=self.clock,
            cursors=self.service,
            health=self.health,
        )

    def _setup_other_sources(self) -> None:
        sources = self.config.sources
        if sources.bluesky.enabled:
            from integrations.bluesky import BlueskyMentionSource

            self.health.track("bluesky", critical=True)
            assert sources.bluesky.handle is not None
            self.sources.append(
                BlueskyMentionSource(
                    self._bluesky_client(),
                    handle=sources.bluesky.handle,
                    queries=list(sources.bluesky.queries),
                    poll_seconds=sources.bluesky.poll_seconds,
                    clock=self.clock,
                    cursors=self.service,
                    health=self.health,
                )
            )
        if sources.mastodon.enabled:
            from integrations.mastodon_api import MastodonMentionSource

            self.health.track("mastodon", critical=True)
            assert sources.mastodon.instance is not None
            client = self._mastodon_client()
            self.sources.append(
                MastodonMentionSource(
                    client,
                    instance=sources.mastodon.instance,
                    hashtags=list(sources.mastodon.hashtags),
                    poll_seconds=sources.mastodon.poll_seconds,
                    clock=self.clock,
                    cursors=self.service,
                    health=self.health,
                )
            )

    def poll_sources(self) -> bool:
        """One step of the source worker: poll whatever is due and ingest it.

        With several processes on one database, one polls a source at a time (a lease),
        so the network's rate limit is not spent once per process.
        """
        polled = False
        every = [s for s in [self.x_source, *self.sources] if s is not None]
        for source in every:
            seconds = getattr(source, "poll_seconds", 60)
            ttl = timedelta(seconds=max(60, 3 * seconds))
            if not self.service.hold_lease(
                f"lease:source:{source.name}", self.service.outbox.owner, self.clock.now(), ttl=ttl
            ):
                continue
            polled = bool(source.poll_due(self._ingest_logged)) or polled
        return polled

    def _ingest_logged(self, mentions: list[Any]) -> None:
        stats = self.service.ingest_many(mentions)
        network = mentions[0].network if mentions else "source"
        log.info(
            "%s: %d new cases, %d joined conversations, %d already stored",
            network,
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
        from handlers.slack import BotIdentity
        from integrations.charts import digest_chart

        self.health.track("slack", critical=True)
        surface = SlackSurface(
            SlackApi(make_web_client(token, url)), self.config, self.clock, chart=digest_chart
        )
        self.chat_workers.append(
            ChatWorker(
                self.service,
                surface,
                messages_per_second=self.config.slack.messages_per_second,
                metrics=self.metrics,
                health=self.health,
            )
        )
        self.slack_identity = BotIdentity(bot_token=token)
        self.bolt_app = build_app(
            self.service,
            # Bolt takes the token from `slack_identity` per request; a client without one
            # keeps Bolt from also running its own auth.test-based authorization.
            client=make_async_web_client(None, url),
            signing_secret=(
                self.secrets.slack_signing_secret if self.config.slack.mode == "http" else None
            ),
            clock=self.clock,
            metrics=self.metrics,
            health=self.health,
            identity=self.slack_identity,
        )

    # -- start-up checks

    def preflight(self) -> None:
        """Check each configured credential once before serving.

        A credential the service refuses is a ConfigError naming the variable (exit 2).
        A service that cannot be reached is a warning: the bot starts degraded, the
        check is retried with back-off, and the workers keep retrying their own work.
        """
        checks = self._checks()
        if not checks:
            return
        with ThreadPoolExecutor(max_workers=len(checks)) as pool:
            futures = {name: pool.submit(check) for name, check in checks.items()}
        problems: list[str] = []
        pending: dict[str, Callable[[], str]] = {}
        for name, future in futures.items():
            try:
                detail = future.result()
            except ConfigError as exc:
                problems.extend(exc.problems)
            except DependencyUnreachable as exc:
                self.health.failed(name, str(exc))
                pending[name] = checks[name]
            else:
                self.health.ok(name)
                log.info("%s: ok (%s)", name, detail)
        if problems:
            raise ConfigError(_one_line_per_key(problems))
        if pending:
            threading.Thread(
                target=self._recheck, args=(pending,), name="recheck", daemon=True
            ).start()

    def _recheck(self, checks: dict[str, Callable[[], str]]) -> None:
        """Retry start-up checks that could not reach their service, with back-off."""
        delay = 5.0
        while checks and not self.stop_event.wait(delay):
            for name, check in list(checks.items()):
                try:
                    detail = check()
                except ConfigError as exc:
                    # Reachable now, and refusing us: nothing will work until someone acts.
                    for problem in exc.problems:
                        log.error("%s", problem)
                    self.health.failed(name, "; ".join(exc.problems))
                    del checks[name]
                except DependencyUnreachable as exc:
                    self.health.failed(name, str(exc))
                else:
                    self.health.ok(name)
                    log.info("%s: ok (%s)", name, detail)
                    del checks[name]
            delay = min(delay * 2, 300.0)

    def _checks(self) -> dict[str, Callable[[], str]]:
        checks: dict[str, Callable[[], str]] = {}
        if self.slack_identity is not None:
            checks["slack"] = self._check_slack
        publisher = self.publish_worker.publisher
        needs_publisher = isinstance(publisher, PublisherRouter) and "x" in publisher.publishers
        if self.x_source is not None or needs_publisher:
            checks["x"] = lambda: self._check_x(user_context=needs_publisher)
        if self.ai_client is not None and hasattr(self.ai_client, "check"):
            checks["llm"] = self.ai_client.check
        if self.teams_api is not None:
            checks["teams"] = self.teams_api.check
        if self.config.sources.bluesky.enabled:
            from integrations.bluesky import check_credentials as bluesky_check

            checks["bluesky"] = lambda: bluesky_check(self._bluesky_client)
        if self.config.sources.mastodon.enabled:
            checks["mastodon"] = self._check_mastodon
        sources = self.config.sources
        if sources.facebook.enabled:
            checks["facebook"] = lambda: self._check_meta(page_id=sources.facebook.page_id)
        if sources.instagram.enabled:
            checks["instagram"] = lambda: self._check_meta(account_id=sources.instagram.account_id)
        return checks

    def _check_meta(self, *, page_id: str | None = None, account_id: str | None = None) -> str:
        from integrations.meta import check_credentials

        return check_credentials(self._graph(), page_id=page_id, account_id=account_id)

    def _check_slack(self) -> str:
        from integrations.slack_api import check_token

        identity = self.slack_identity
        found = check_token(identity.bot_token, self.secrets.slack_api_url)
        pinned_team, pinned_org = self.config.slack.team_id, self.config.slack.enterprise_id
        if pinned_team and found.team_id != pinned_team:
            raise ConfigError(
                [
                    f"slack.team_id: is {pinned_team}, but SLACK_BOT_TOKEN belongs to"
                    f" workspace {found.team_id} ({found.team_name}); use the token of the"
                    " app installed in the pinned workspace, or fix team_id"
                ]
            )
        if pinned_org and found.enterprise_id != pinned_org:
            raise ConfigError(
                [
                    f"slack.enterprise_id: is {pinned_org}, but SLACK_BOT_TOKEN belongs to"
                    f" org {found.enterprise_id or '(none)'}"
                ]
            )
        identity.team_id, identity.enterprise_id = found.team_id, found.enterprise_id
        identity.bot_user_id, identity.bot_id = found.bot_user_id, found.bot_id
        return f"bot {found.bot_user_id} in {found.team_name or found.team_id}"

    def _check_mastodon(self) -> str:
        from integrations.mastodon_api import check_credentials, max_characters

        client = self._mastodon_client()
        who = check_credentials(client)
        # Reply checks use the instance's own limit.
        self.service.reply_limits["mastodon"] = max_characters(client)
        return f"{who}, {self.service.reply_limits['mastodon']} characters per post"

    def _check_x(self, *, user_context: bool) -> str:
        from integrations.x import check_credentials, make_client

        s = self.secrets
        read = (
            make_client(base_url=s.x_api_url, bearer_token=s.x_bearer_token, timeout=5)
            if s.x_bearer_token
            else None
        )
        user = (
            make_client(
                base_url=s.x_api_url,
                consumer_key=s.x_consumer_key,
                consumer_secret=s.x_consumer_secret,
                access_token=s.x_access_token,
                access_token_secret=s.x_access_token_secret,
                timeout=5,
            )
            if user_context
            else None
        )
        return check_credentials(
            read_client=read, user_client=user, brand_user_id=self.config.sources.x.user_id
        )

    def _setup_teams(self) -> None:
        from handlers.teams import TeamsHandlers, TeamsSurface, TeamsTokenValidator
        from integrations.charts import digest_chart
        from integrations.teams_api import TeamsApi

        s = self.secrets
        assert s.teams_app_id and s.teams_app_password and s.teams_tenant_id  # checked by run()
        self.health.track("teams", critical=True)
        self.teams_api = TeamsApi(
            app_id=s.teams_app_id,
            password=s.teams_app_password,
            tenant_id=s.teams_tenant_id,
            login_url=s.teams_login_url,
        )
        surface = TeamsSurface(
            self.teams_api,
            self.service,
            service_url_override=s.teams_service_url,
            chart=digest_chart,
        )
        both = self.config.slack.enabled
        for worker in self.chat_workers:
            worker.only = worker.surface.name if both else None
        self.chat_workers.append(
            ChatWorker(
                self.service,
                surface,
                messages_per_second=self.config.teams.messages_per_second,
                metrics=self.metrics,
                health=self.health,
                shared=both,
            )
        )
        self.teams = TeamsHandlers(
            self.service,
            surface,
            TeamsTokenValidator(
                app_id=s.teams_app_id, metadata_url=s.teams_openid_metadata_url, clock=self.clock
            ),
            tenant_id=s.teams_tenant_id,
            health=self.health,
        )

    # -- HTTP

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**2)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self.bolt_app is not None and self.config.slack.mode == "http":
            app.router.add_post("/slack/events", self._slack_events)
        app.router.add_post("/api/messages", self._teams_messages)
        if self.meta_webhook is not None:
            app.router.add_get("/meta/webhook", self.meta_webhook.handshake)
            app.router.add_post("/meta/webhook", self.meta_webhook.deliver)
        return app

    async def _teams_messages(self, request: web.Request) -> web.Response:
        if self.teams is None:
            return web.json_response(
                {"error": "Microsoft Teams is not enabled ([teams] enabled = false)"}, status=404
            )
        response: web.Response = await self.teams.on_request(request)
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, body = await asyncio.to_thread(self.health_report)
        return web.json_response(body, status=200 if ok else 503)

    def health_report(self) -> tuple[bool, dict[str, Any]]:
        """Each part's state and last success; unhealthy (503) when the bot cannot do its
        job: the store is not writable, a worker died, a chat surface or the publisher has
        failed without a success for longer than `[server].unhealthy_after_seconds`, or
        the oldest pending card has waited longer than that."""
        now = self.clock.now()
        limit = self.config.server.unhealthy_after_seconds
        problems: list[str] = []
        parts: dict[str, dict[str, Any]] = {}
        writable = self.store.is_writable()
        parts["store"] = {"state": "ok" if writable else "failing", "critical": True}
        if not writable:
            problems.append("store: the database is not writable")
        dead = [w.name for w in self.workers if not w.is_alive()]
        running = bool(self.workers) and not dead and not self.stop_event.is_set()
        parts["workers"] = {
            "state": "ok" if running else "failing",
            "critical": True,
            "running": [w.name for w in self.workers if w.is_alive()],
            "stopped": dead,
        }
        if not running:
            problems.append(
                f"workers: stopped ({', '.join(dead)})" if dead else "workers: not running"
            )
        for dep in self.health.snapshot():
            parts[dep.name] = dep.as_json(now)
            if dep.critical and dep.down_for(now) > limit:
                problems.append(
                    f"{dep.name}: failing for {dep.down_for(now):.0f} s ({dep.last_error})"
                )
        oldest = self.service.outbox.oldest_pending(now)
        card_age = oldest.get("card")
        if card_age is not None and card_age > limit:
            problems.append(f"outbox: the oldest pending card has waited {card_age:.0f} s")
        uncertain = self.service.uncertain_publishes()
        body: dict[str, Any] = {
            "status": "unhealthy" if problems else "ok",
            "problems": problems,
            "parts": parts,
            "outbox": {"oldest_pending_seconds": {k: round(v) for k, v in oldest.items()}},
            # Replies that may be out unrecorded: being checked, never re-sent blindly.
            "uncertain_publishes": [
                {"case": c.id, "network": c.network, "since": c.publish_uncertain_since.isoformat()}
                for c in uncertain
                if c.publish_uncertain_since is not None
            ],
        }
        return not problems, body

    async def _metrics(self, request: web.Request) -> web.Response:
        depth = await asyncio.to_thread(self.service.outbox.depth)
        stored = await asyncio.to_thread(self.store.scalar, "SELECT count(*) FROM mentions")
        self.metrics.mentions_stored.set(stored or 0)
        for kind in ("card", "note", "publish"):
            self.metrics.outbox_depth.labels(kind=kind).set(depth.get(kind, 0))
        uncertain = await asyncio.to_thread(
            self.store.scalar,
            "SELECT count(*) FROM cases WHERE publish_uncertain_since IS NOT NULL",
        )
        self.metrics.uncertain_publishes.set(uncertain or 0)
        for dep in self.health.snapshot():
            self.metrics.up.labels(dependency=dep.name).set(1 if dep.state == "ok" else 0)
            if dep.last_success is not None:
                self.metrics.last_success.labels(dependency=dep.name).set(
                    dep.last_success.timestamp()
                )
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
        self.moderation_worker.recover()
        from bot.outbox import CHAT_KINDS

        # Whatever a dead process left `sending` goes back to the queue (else it would
        # block its channel for good).
        self.service.outbox.release_in_flight(CHAT_KINDS)
        # Chat items are queued once per surface served (by this and any other process).
        self.service.serve_surfaces([w.surface.name for w in self.chat_workers])
        for worker in self.chat_workers:
            self.workers.append(
                WorkerLoop(f"chat-{worker.surface.name}", worker.run_once, self.stop_event)
            )
        self.workers.append(WorkerLoop("publish", self.publish_worker.run_once, self.stop_event))
        self.workers.append(
            WorkerLoop("moderate", self.moderation_worker.run_once, self.stop_event, idle=1.0)
        )
        # Leases of items in hand are renewed while their work runs (a dead process's
        # lapse and are taken over by another process).
        lease = self.service.outbox.lease.total_seconds()
        self.workers.append(
            WorkerLoop(
                "leases",
                lambda: bool(self.service.outbox.renew()) and False,
                self.stop_event,
                idle=lease / 3,
            )
        )
        self._start_scheduler()
        if self.x_source is not None or self.sources:
            self.workers.append(WorkerLoop("poller", self.poll_sources, self.stop_event))
        if self.meta_inbox is not None:
            from bot.outbox import META_DELIVERY

            self.service.outbox.release_in_flight([META_DELIVERY])
            self.workers.append(WorkerLoop("meta-inbox", self.meta_inbox.run_once, self.stop_event))
        if self.ai_client is not None:
            from bot.ai import AI, AIEnricher

            self.service.outbox.release_in_flight([AI])
            enricher = AIEnricher(self.service, self.ai_client, health=self.health)
            for n in range(self.config.llm.max_concurrency):
                self.workers.append(WorkerLoop(f"llm-{n}", enricher.run_once, self.stop_event))
        for thread in self.workers:
            thread.start()
        # In-flight requests get a second to finish at shutdown, not aiohttp's 60.
        self._runner = web.AppRunner(self.web_app(), access_log=None, shutdown_timeout=1.0)
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
            except SOCKET_UNREACHABLE as exc:
                # Slack is down, not refusing us: start degraded and keep trying.
                self.health.failed("slack", f"Socket Mode: {exc.__class__.__name__}: {exc}")
                self._socket_task = asyncio.create_task(self._connect_socket_mode_later())
            except SlackApiError as exc:
                await self.shutdown()
                raise ConfigError(
                    [
                        "slack.mode: Slack refused SLACK_APP_TOKEN for Socket Mode"
                        f" ({exc.response.get('error')}); it must be an app-level xapp- token"
                        " with connections:write"
                    ]
                ) from None
            else:
                await self._socket_handler.connect_async()
        log.info(
            "socialcare running: http://%s:%s (slack: %s, teams: %s)",
            self.config.server.host,
            self.port,
            self.config.slack.mode if self.bolt_app else "off",
            "POST /api/messages" if self.teams else "off",
        )

    async def _connect_socket_mode_later(self) -> None:
        delay = 5.0
        while not self.stopped.is_set():
            await asyncio.sleep(delay)
            handler = self._socket_handler
            if handler is None:
                return
            try:
                handler.client.wss_uri = await handler.client.issue_new_wss_url()
                await handler.connect_async()
            except SOCKET_UNREACHABLE as exc:
                self.health.failed("slack", f"Socket Mode: {exc.__class__.__name__}: {exc}")
                delay = min(delay * 2, 300.0)
                continue
            except Exception as exc:  # a refused token now: say so once and stop trying
                log.error("Socket Mode cannot connect: %s", exc)
                self.health.failed("slack", f"Socket Mode: {exc}")
                return
            self.health.ok("slack")
            return

    def _start_scheduler(self) -> None:
        import uuid

        from bot.followup import FollowUp
        from integrations.scheduler import start_scheduler

        followup = FollowUp(self.service)
        owner = f"{uuid.uuid4()}"

        def tick() -> None:
            try:
                followup.tick(self.clock.now(), owner=owner)
            except Exception as exc:
                self.health.failed("scheduler", f"{exc.__class__.__name__}: {exc}")
                log.debug("follow-up tick failed; the next tick retries", exc_info=True)
            else:
                self.health.ok("scheduler")

        self.scheduler = start_scheduler(
            tick, digest_time=self.config.digest.time, tz=self.config.tz
        )

    def request_stop(self) -> None:
        self.stopped.set()

    async def shutdown(self, *, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop intake, let workers finish the item in hand, close everything. Idempotent.

        Bounded by `grace` seconds even while an LLM, X or Slack call hangs: such a call
        is left behind (its thread is a daemon), and its outbox item stays `sending`, to
        be reconciled (a publish) or redone (an LLM reading) at the next start.
        """
        deadline = time.monotonic() + grace

        def left() -> float:
            return max(0.05, deadline - time.monotonic())

        if self._socket_task is not None:
            self._socket_task.cancel()
        if self._socket_handler is not None:
            handler, self._socket_handler = self._socket_handler, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handler.close_async(), left())
        if self._runner is not None:
            runner, self._runner = self._runner, None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runner.cleanup(), left())
        stuck: list[str] = []
        # Listeners keep working after their ack: let them finish before the store closes.
        running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if running:
            _, pending = await asyncio.wait(running, timeout=left())
            stuck += ["a Slack listener"] if pending else []
        if self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            try:  # a tick is database work only: it finishes quickly
                await asyncio.wait_for(asyncio.to_thread(scheduler.shutdown, True), left())
            except TimeoutError:
                stuck.append("the scheduler")
        self.stop_event.set()
        for thread in self.workers:
            await asyncio.to_thread(thread.join, left())
        stuck += [t.name for t in self.workers if t.is_alive()]
        if stuck:
            # Never close a connection another thread may be using (SQLite would crash);
            # the process is about to end, and SQLite recovers from its WAL at next open.
            log.info(
                "left %s mid-call; their items stay queued for the next start", ", ".join(stuck)
            )
            return
        self.store.close()

    async def serve(self) -> None:
        await asyncio.to_thread(self.preflight)
        await self.start()
        try:
            await self.stopped.wait()
        finally:
            await self.shutdown()


def publishing_networks(config: Config) -> set[str]:
    """The networks `run` answers on: each enabled source's, and X's when X is watched or
    (as before other networks) when nothing else is. Every network under dry_run."""
    from bot.models import NETWORK_NAMES

    if config.publish.dry_run:
        return set(NETWORK_NAMES)
    enabled = {n for n in NETWORK_NAMES if getattr(config.sources, n).enabled}
    return enabled if enabled - {"x"} else enabled | {"x"}


ENDPOINT_VARIABLES = (
    "SLACK_API_URL",
    "X_API_URL",
    "OPENAI_BASE_URL",
    "TEAMS_OPENID_METADATA_URL",
    "TEAMS_LOGIN_URL",
    "TEAMS_SERVICE_URL",
    "BLUESKY_API_URL",
    "META_GRAPH_URL",
)


def endpoint_problems(secrets: Secrets) -> list[str]:
    """Endpoint overrides that are not http(s) URLs: `localhost:9` would otherwise start
    a bot that is "degraded" for ever, its checks failing on a URL nobody can reach."""
    problems = []
    for variable in ENDPOINT_VARIABLES:
        value = getattr(secrets, variable.lower())
        if not value:
            continue
        try:
            parts = urlsplit(value.strip())
            ok = parts.scheme in {"http", "https"} and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            problems.append(
                f"{variable}: {value!r} is not an http(s) URL with a host, e.g. https://host:443/"
            )
    return problems


def _one_line_per_key(problems: list[str]) -> list[str]:
    """One line per variable or key: Facebook and Instagram share one page token, and a
    refused token is one problem for the operator, not one per network that tried it."""
    seen: set[str] = set()
    kept = []
    for problem in problems:
        key = problem.split(":", 1)[0]
        if key not in seen:
            seen.add(key)
            kept.append(problem)
    return kept


def run(config: Config, secrets: Secrets) -> int:
    """Run until SIGINT/SIGTERM; exit 0 after draining."""

    # Every missing variable and malformed endpoint at once, before anything starts.
    missing = missing_environment(config, secrets) + endpoint_problems(secrets)
    if missing:
        raise ConfigError(missing)
    target = config.database_target()
    guard = single_process_guard(target) if isinstance(target, Path) else None

    async def main() -> None:
        runtime = Runtime(config, secrets)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.request_stop)
        await runtime.serve()
        log.info("socialcare stopped cleanly")

    try:
        asyncio.run(main())
    finally:
        if guard is not None:
            guard.close()
    return 0


def single_process_guard(database: Path) -> IO[str]:
    """One `socialcare run` per SQLite file: an OS lock on `<file>.lock`, which a crash
    releases with the process. A second run exits 2 naming the first's pid."""
    database.parent.mkdir(parents=True, exist_ok=True)
    handle = open(f"{database}.lock", "a+")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        pid = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyRunning(
            f"another socialcare run (pid {pid}) is using {database.name};"
            " for several processes use PostgreSQL"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
