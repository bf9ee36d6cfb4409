"""The Prometheus metrics of one application, in a registry of its own.

A registry per application (not prometheus_client's global one): two applications in one
process (tests, an embedding host running two engines) each count their own, and building an
application twice never fails on a name already registered.

Everything on a request's or a turn's path is an in-process counter or histogram update: no
statement, no I/O. What needs the database (the backlog of deliveries and broker events) or the
pool (connections checked out) is read when `/metrics` is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rewards.observability import Observer
from rewards.observability.probes import Backlog
from rewards.services.awards import AwardSource
from rewards.store.db import Database

# No `_created` series beside every counter and histogram: they double the scrape and
# Prometheus does not read them from the text format.
disable_created_metrics()

KUDOS_SOURCES = ("api", "chat")
DELIVERY_PLATFORMS = ("teams", "slack", "telegram", "email")
# Seconds. A chat turn is a few database statements; a scheduled job may run for minutes.
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class Metrics(Observer):
    """The application's metrics; attached to the core's `signals` while the app runs."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.http_requests = Counter(
            "rewards_http_requests",
            "HTTP requests answered, by route (its path pattern), method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "rewards_http_request_duration_seconds",
            "Time to answer an HTTP request, by route and method.",
            ["route", "method"],
            registry=registry,
        )
        self.turn_seconds = Histogram(
            "rewards_turn_duration_seconds",
            "Time the dialog engine took to answer a chat turn, by platform and command.",
            ["platform", "command"],
            buckets=TURN_BUCKETS,
            registry=registry,
        )
        self.kudos = Counter(
            "rewards_kudos",
            "Kudos committed, by where they were given (api, chat).",
            ["source"],
            registry=registry,
        )
        self.awards = Counter(
            "rewards_awards",
            "Awards committed, by source (dialog, api, rule, event, ...).",
            ["source"],
            registry=registry,
        )
        self.job_runs = Counter(
            "rewards_job_runs",
            "Scheduled job runs this process finished, by job.",
            ["job"],
            registry=registry,
        )
        self.job_failures = Counter(
            "rewards_job_failures",
            "Scheduled job runs that failed, by job.",
            ["job"],
            registry=registry,
        )
        self.job_seconds = Histogram(
            "rewards_job_duration_seconds",
            "Time a scheduled job's run took, by job.",
            ["job"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.delivery_attempts = Counter(
            "rewards_delivery_attempts",
            "Announcement sends tried, by platform (teams, slack, telegram, email).",
            ["platform"],
            registry=registry,
        )
        self.delivery_failures = Counter(
            "rewards_delivery_failures",
            "Announcement sends that failed (to be retried or given up), by platform.",
            ["platform"],
            registry=registry,
        )
        # Series that exist from the start at zero, so a rate over them is defined at once.
        for source in KUDOS_SOURCES:
            self.kudos.labels(source)
        for award_source in AwardSource:
            self.awards.labels(award_source.value)
        for platform in DELIVERY_PLATFORMS:
            self.delivery_attempts.labels(platform)
            self.delivery_failures.labels(platform)
        self.scrape = ScrapeTime()
        registry.register(self.scrape)
        ProcessCollector(registry=registry)

    # --- Observer: the core's reports --------------------------------------------------------

    def kudos_given(self, source: str) -> None:
        self.kudos.labels(source).inc()

    def awarded(self, source: str, count: int) -> None:
        self.awards.labels(source).inc(count)

    def turn(self, platform: str, command: str, seconds: float) -> None:
        self.turn_seconds.labels(platform, command).observe(seconds)

    def job_finished(self, job: str, failed: bool, seconds: float) -> None:
        self.job_runs.labels(job).inc()
        if failed:
            self.job_failures.labels(job).inc()
        self.job_seconds.labels(job).observe(seconds)

    def delivery_attempted(self, platform: str, failed: bool) -> None:
        self.delivery_attempts.labels(platform).inc()
        if failed:
            self.delivery_failures.labels(platform).inc()


class ScrapeTime(Collector):
    """Gauges read at scrape time: the backlog (read by the `/metrics` handler just before, as
    it needs the database) and the connection pool (read here, from memory)."""

    def __init__(self) -> None:
        self.backlog: Backlog | None = None  # None: the last read failed, the series are left out
        self.database: Callable[[], Database | None] = lambda: None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.backlog is not None:
            yield GaugeMetricFamily(
                "rewards_deliveries_pending",
                "Announcement deliveries waiting to be sent (due, leased or backing off).",
                value=self.backlog.deliveries,
            )
            yield GaugeMetricFamily(
                "rewards_outbox_events_pending",
                "Broker events written but not yet published (event manager on).",
                value=self.backlog.events,
            )
        database = self.database()
        pools = [engine.pool for engine in database.engines()] if database is not None else []
        counted = [pool for pool in pools if hasattr(pool, "checkedout")]
        if not counted:
            return
        # PostgreSQL has two pools (the keyed turns' and the rest's: `Database.__init__`); the
        # gauges are the process's totals.
        yield GaugeMetricFamily(
            "rewards_db_pool_checked_out",
            "Database connections in use (checked out of this process's pools).",
            value=sum(pool.checkedout() for pool in counted),
        )
        sized = [pool for pool in counted if hasattr(pool, "size")]
        if sized:
            yield GaugeMetricFamily(
                "rewards_db_pool_size",
                "Connections the pools keep open (they may open up to twice as many more).",
                value=sum(pool.size() for pool in sized),
            )
