"""Prometheus metrics, one registry per app so several apps (tests, workers) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "helpline_messages_total",
            "Inbound messages handled, by channel and intent",
            ["channel", "intent", "duplicate"],
            registry=self.registry,
        )
        self.handling = Histogram(
            "helpline_message_handling_seconds",
            "Time to store, route and answer one inbound message",
            ["channel"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.batch = Histogram(
            "helpline_inbox_batch_size",
            "Inbound messages committed together in one transaction (group commit)",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64),
        )
        self.http = Histogram(
            "helpline_http_request_seconds",
            "HTTP request latency by route and status",
            ["route", "method", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        # The outbox: what the worker did with each row, and what is still waiting (the gauges
        # are set from the database by helpline.outbox_worker.refresh_outbox_metrics).
        self.outbox = Counter(
            "helpline_outbox_total",
            "Outbox rows settled by the worker, by channel and result (sent/failed/dead/skipped)",
            ["channel", "result"],
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "helpline_outbox_depth",
            "Outbox rows by status",
            ["status"],
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "helpline_outbox_oldest_waiting_seconds",
            "Age of the oldest outbox row still waiting to be sent",
            registry=self.registry,
        )

    def observe_message(self, channel: str, intent: str, seconds: float, duplicate: bool) -> None:
        self.messages.labels(channel, intent, "yes" if duplicate else "no").inc()
        self.handling.labels(channel).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
