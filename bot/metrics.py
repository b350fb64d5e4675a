"""Prometheus metrics of one bot process (a registry per runtime, so tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Read from the database at scrape time: `socialcare ingest` runs in other processes.
        self.mentions_stored = Gauge(
            "socialcare_mentions_stored", "Mentions stored (all sources)", registry=self.registry
        )
        self.cards_posted = Counter(
            "socialcare_cards_posted",
            "Chat messages sent (cards, updates, notes)",
            ["surface", "kind"],
            registry=self.registry,
        )
        self.actions = Counter(
            "socialcare_actions",
            "User actions by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.publishes = Counter(
            "socialcare_publishes",
            "Publish attempts by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "socialcare_outbox_depth",
            "Outbox items waiting, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.uncertain_publishes = Gauge(
            "socialcare_uncertain_publishes",
            "Replies that may be out unrecorded (being checked; an admin can settle them)",
            registry=self.registry,
        )
        self.ack_latency = Histogram(
            "socialcare_ack_latency_seconds",
            "Time from request to ack of chat interactions",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0),
            registry=self.registry,
        )

        # 1 while the dependency's last call worked, 0 while it is failing (or unknown).
        self.up = Gauge(
            "socialcare_up",
            "Whether each dependency (slack, x, llm, scheduler) currently works",
            ["dependency"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "socialcare_last_success_timestamp_seconds",
            "When each dependency last worked (Unix time)",
            ["dependency"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
