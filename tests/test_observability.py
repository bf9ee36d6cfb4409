"""Operations: `/metrics` (Prometheus text), `/livez` and `/readyz`, JSON log lines, and the
"listening" line of `rewards serve`, on SQLite and PostgreSQL.

What an operator relies on: a scrape parses with prometheus_client's own parser; a kudos moves
the kudos counter by exactly one and a refused or replayed one does not; requests are counted by
route pattern, not by URL; JSON logs are one JSON object per line and never carry what a member
wrote nor a token; `/readyz` is 503 naming the database while it is down and 200 once it is back.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bots.platforms import platform_status
from bots.server import create_app
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.observability.logs import (
    OWN_LOGGERS,
    JsonFormatter,
    Redactor,
    TextFormatter,
    configure_logging,
)
from rewards.settings import Settings, load_settings
from rewards.store.db import Database
from rewards.store.migrate import head_revision
from tests.factories import add_member, add_reward
from tests.support.api import api_client
from tests.support.conversation import ScriptedConversation

ROOT = Path(__file__).resolve().parents[1]
KUDOS_PATH = "/kudos/api/v1/user_kudos"
SECRET_MESSAGE = "the-lighthouse-demo-was-superb-7f3a"


async def scrape(client: TestClient) -> str:  # type: ignore[type-arg]
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return await response.text()


def value(exposition: str, name: str, **labels: str) -> float:
    """One sample's value from a scrape (0 when the series is absent), parsed by
    prometheus_client's parser, as Prometheus itself would read it."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def families(exposition: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(exposition)}


async def test_metrics_parse_and_a_kudos_counts_once(database: Database, clock: FixedClock) -> None:
    await add_member(database, "Ana")
    await add_member(database, "Bob")
    body = {"giver": "bob@example.com", "receivers": ["ana@example.com"], "message": "great demo"}
    async with api_client(database, clock) as api:
        before = await scrape(api.client)
        assert {
            "rewards_http_requests",
            "rewards_http_request_duration_seconds",
            "rewards_turn_duration_seconds",
            "rewards_kudos",
            "rewards_awards",
            "rewards_job_runs",
            "rewards_job_failures",
            "rewards_delivery_attempts",
            "rewards_delivery_failures",
            "rewards_deliveries_pending",
            "rewards_outbox_events_pending",
            "rewards_db_pool_checked_out",
        } <= families(before)
        assert value(before, "rewards_kudos_total", source="api") == 0
        assert value(before, "rewards_deliveries_pending") == 0

        headers = api.auth("write", **{"Idempotency-Key": "once"})
        created = await api.client.post(KUDOS_PATH, json=body, headers=headers)
        assert created.status == 201
        after = await scrape(api.client)
        assert value(after, "rewards_kudos_total", source="api") == 1
        assert value(after, "rewards_kudos_total", source="chat") == 0

        # A replay writes nothing, a refusal writes nothing: neither is counted.
        replay = await api.client.post(KUDOS_PATH, json=body, headers=headers)
        assert replay.headers["Idempotent-Replayed"] == "true"
        to_self = {**body, "receivers": ["bob@example.com"]}
        refused = await api.client.post(KUDOS_PATH, json=to_self, headers=api.auth())
        assert refused.status in (403, 422)
        unknown = {**body, "receivers": ["ghost@example.com"]}
        assert (await api.client.post(KUDOS_PATH, json=unknown, headers=api.auth())).status == 404
        later = await scrape(api.client)
        assert value(later, "rewards_kudos_total", source="api") == 1

        # Requests are counted by route pattern and status.
        route = {"route": KUDOS_PATH, "method": "POST"}
        assert value(later, "rewards_http_requests_total", status="201", **route) == 2
        assert value(later, "rewards_http_requests_total", status="404", **route) == 1
        member = await api.client.get(
            "/rewards/api/v1/members/ana@example.com", headers=api.auth("read")
        )
        assert member.status == 200
        assert member.headers["X-Request-Id"]
        final = await scrape(api.client)
        pattern = "/rewards/api/v1/members/{ref}"
        assert value(final, "rewards_http_requests_total", route=pattern, status="200") == 1
        assert "ana@example.com" not in final
        assert (await api.client.get("/no/such/page")).status == 404
        missing = await scrape(api.client)
        assert value(missing, "rewards_http_requests_total", route="unmatched", status="404") == 1


async def test_a_chat_kudos_counts_on_commit_and_each_turn_is_timed(
    database: Database, clock: FixedClock
) -> None:
    from bots.observability.metrics import Metrics
    from dialogs.engine import DialogEngine

    ana = await add_member(database, "Ana Lopez")
    li = await add_member(database, "Li Wei")
    core = Core(settings=Settings(database_url=database.url), db=database, clock=clock)
    metrics = Metrics()
    core.signals.attach(metrics)
    chat = ScriptedConversation(DialogEngine(core), ana, whole_forms=True, platform="telegram")

    def counted() -> tuple[float, float]:
        exposition = metrics_text(metrics)
        kudos = value(exposition, "rewards_kudos_total", source="chat")
        turns = value(
            exposition, "rewards_turn_duration_seconds_count", platform="telegram", command="kudos"
        )
        return kudos, turns

    await chat.say("/kudos @li.wei great demo")
    assert chat.screens == ["kudos_posted"], chat.text
    assert counted() == (1, 1)
    await chat.say("/kudos @ana.lopez thanks me")  # to oneself: refused
    assert counted() == (1, 2)
    # A kudos whose unit of work rolls back was never given: not counted.
    with pytest.raises(RuntimeError):
        async with core.db.unit():
            await core.kudos.give(ana, [li], "rolled back")
            raise RuntimeError("the turn failed after the kudos")
    assert counted() == (1, 2)
    await chat.say("/nonsense")
    assert value(metrics_text(metrics), "rewards_turn_duration_seconds_count", command="unknown")


async def test_a_telegram_kudos_through_the_server_counts_once(database: Database) -> None:
    """A real chat turn: a Telegram update through the webhook (python-telegram-bot against a
    fake Bot API), one unit of work; the same update delivered again is not a second kudos."""
    from bots.server import CORE
    from bots.telegram import SECRET_HEADER, WEBHOOK_PATH
    from bots.telegram import setup as telegram_setup
    from tests import test_telegram as telegram
    from tests.support.telegram_api import FakeBotAPI

    await telegram.people(database)
    api = await FakeBotAPI().start()
    try:
        settings = telegram.telegram_settings(database, api)
        app = create_app(settings, platforms=False)
        assert telegram_setup(app, settings)
        api.set_chat_member(telegram.GROUP, telegram.BO)
        async with TestClient(TestServer(app)) as client:
            update = telegram.payload("kudos_group")
            for _ in range(2):  # Telegram delivers an update again when unsure it arrived
                response = await client.post(
                    WEBHOOK_PATH, json=update, headers={SECRET_HEADER: telegram.SECRET}
                )
                assert response.status == 200, await response.text()
            await app[CORE].hooks.drain()
            exposition = await scrape(client)
    finally:
        await api.close()
    assert value(exposition, "rewards_kudos_total", source="chat") == 1
    assert value(exposition, "rewards_kudos_total", source="api") == 0
    turns = "rewards_turn_duration_seconds_count"
    assert value(exposition, turns, platform="telegram", command="kudos") == 1
    webhook = {"route": WEBHOOK_PATH, "method": "POST", "status": "200"}
    assert value(exposition, "rewards_http_requests_total", **webhook) == 2


def metrics_text(metrics: object) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()  # type: ignore[attr-defined]


async def test_two_apps_in_one_process_count_apart(database: Database, clock: FixedClock) -> None:
    await add_member(database, "Ana")
    await add_member(database, "Bob")
    body = {"giver": "bob@example.com", "receivers": ["ana@example.com"], "message": "thanks"}
    settings = Settings(database_url=database.url, catalog_files=(), reward_scheduler=False)
    async with (
        api_client(database, clock) as one,
        TestClient(TestServer(create_app(settings))) as two,
    ):
        assert (await one.client.post(KUDOS_PATH, json=body, headers=one.auth())).status == 201
        assert value(await scrape(one.client), "rewards_kudos_total", source="api") == 1
        assert value(await scrape(two), "rewards_kudos_total", source="api") == 0


async def test_awards_count_what_was_written_single_and_batch(
    database: Database, clock: FixedClock
) -> None:
    from bots.observability.metrics import Metrics
    from rewards.awarding.batch import Wanted, award_batch
    from rewards.errors import AlreadyAwarded
    from rewards.services.awards import AwardSource

    core = Core(settings=Settings(database_url=database.url), db=database, clock=clock)
    metrics = Metrics()
    core.signals.attach(metrics)
    await add_reward(database, reward_id=1, reward_type="Achievement Badge", points=25)
    ana, bo, cy = [await add_member(database, name) for name in ("Ana", "Bo", "Cy")]

    def rule_awards() -> float:
        return value(metrics_text(metrics), "rewards_awards_total", source="rule")

    await core.awards.award(1, ana, source=AwardSource.RULE)
    assert rule_awards() == 1
    with pytest.raises(AlreadyAwarded):
        await core.awards.award(1, ana, source=AwardSource.RULE)
    assert rule_awards() == 1
    first = await award_batch(core.awards, 1, [Wanted(ana), Wanted(bo), Wanted(cy)])
    assert len(first.awarded) == 2
    assert rule_awards() == 3  # the two inserted, not the one skipped
    await award_batch(core.awards, 1, [Wanted(ana), Wanted(bo), Wanted(cy)])
    assert rule_awards() == 3


async def test_job_runs_and_failures_are_counted_by_job(database: Database) -> None:
    from bots.observability.metrics import Metrics
    from bots.scheduler import run_now
    from tests.test_scheduler import Recorder, _every_second

    core = Core(settings=Settings(database_url=database.url), db=database)
    metrics = Metrics()
    core.signals.attach(metrics)
    ok, failing = Recorder(), Recorder(fail=True)
    await run_now(core, _every_second(ok).jobs["tick"], owner="test")
    await run_now(core, _every_second(failing).jobs["tick"], owner="test")
    exposition = metrics_text(metrics)
    assert value(exposition, "rewards_job_runs_total", job="tick") == 2
    assert value(exposition, "rewards_job_failures_total", job="tick") == 1
    assert value(exposition, "rewards_job_duration_seconds_count", job="tick") == 2


async def test_delivery_attempts_failures_and_backlog(
    database: Database, clock: FixedClock
) -> None:
    from tests.test_notifier import world

    async with world(database, clock) as w:
        # The Telegram group and Li's Telegram chat, Ana's Slack and Sam's Teams direct messages.
        await w.raffle(teams=False, slack=False, email=False)
        assert value(await scrape(w.client), "rewards_deliveries_pending") == 4
        w.telegram.failures["sendMessage"] = (502, "Bad Gateway")
        first = await w.notifier.deliver_due()
        assert (first.sent, first.retried) == (2, 2)
        assert value(await scrape(w.client), "rewards_deliveries_pending") == 2
        w.telegram.failures.clear()
        clock.advance(timedelta(seconds=30))
        assert (await w.notifier.deliver_due()).sent == 2
        exposition = await scrape(w.client)
    assert value(exposition, "rewards_delivery_attempts_total", platform="telegram") == 4
    assert value(exposition, "rewards_delivery_failures_total", platform="telegram") == 2
    assert value(exposition, "rewards_delivery_attempts_total", platform="slack") == 1
    assert value(exposition, "rewards_delivery_failures_total", platform="slack") == 0
    assert value(exposition, "rewards_delivery_attempts_total", platform="teams") == 1
    assert value(exposition, "rewards_deliveries_pending") == 0
    assert "rewards_outbox_events_pending 0.0" in exposition


# --- probes ----------------------------------------------------------------------------------


async def test_livez_and_readyz(database: Database) -> None:
    settings = Settings(database_url=database.url, catalog_files=(), reward_scheduler=False)
    async with TestClient(TestServer(create_app(settings))) as client:
        live = await client.get("/livez")
        assert (live.status, await live.json()) == (200, {"status": "ok"})
        ready = await client.get("/readyz")
        assert ready.status == 200, await ready.text()
        assert await ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "platforms": {"teams": "ok"}},
        }

        # The schema behind the code: not ready, naming the migrations.
        head = head_revision()
        assert head is not None
        older = f"{int(head) - 1:04d}"

        async def stamp(revision: str) -> None:
            async with database.write() as session:
                await session.execute(
                    text("UPDATE alembic_version SET version_num = :v"), {"v": revision}
                )

        await stamp(older)
        behind = await client.get("/readyz")
        assert behind.status == 503
        body = await behind.json()
        assert body["not_ready"] == ["migrations"]
        assert body["checks"]["migrations"] == f"at {older}, expected {head}"
        # A newer release migrated first (a rolling upgrade): this one stays ready, and says so.
        await stamp("9999")
        newer = await client.get("/readyz")
        assert newer.status == 200
        assert (await newer.json())["checks"]["migrations"] == (
            f"newer: at 9999, this release knows up to {head}"
        )
        await stamp(head)
        assert (await client.get("/readyz")).status == 200

        # A platform still starting: not ready, naming it; /healthz is unchanged by it.
        platform_status(client.app).set("telegram", "failed: the Bot API did not answer")
        starting = await client.get("/readyz")
        assert starting.status == 503
        assert (await starting.json())["not_ready"] == ["platforms.telegram"]
        assert (await client.get("/healthz")).status == 200


class Proxy:
    """A TCP forwarder on loopback in front of the database: stopping it is the database going
    away (open connections cut, new ones refused) without touching the shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()
        self.server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()
                self.writers.discard(sink)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@asynccontextmanager
async def proxied(url: str) -> AsyncIterator[tuple[Proxy, str]]:
    parsed = make_url(url)
    proxy = Proxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    await proxy.start()
    try:
        yield proxy, parsed.set(port=proxy.port).render_as_string(hide_password=False)
    finally:
        if proxy.server is not None:
            await proxy.stop()


@pytest.mark.postgresql_only
async def test_readyz_is_503_while_the_database_is_down(database: Database) -> None:
    async with proxied(database.url) as (proxy, url):
        settings = Settings(database_url=url, catalog_files=(), reward_scheduler=False)
        async with TestClient(TestServer(create_app(settings))) as client:
            assert (await client.get("/readyz")).status == 200
            await proxy.stop()
            for _ in range(2):  # the pooled connection cut, then a new one refused
                down = await client.get("/readyz")
                assert down.status == 503
                body = await down.json()
                assert body["not_ready"] == ["database"]
                assert body["checks"]["database"].startswith("unreachable (")
                assert body["checks"]["migrations"] == "not checked"
                assert "127.0.0.1" not in json.dumps(body)
            assert (await client.get("/livez")).status == 200  # the process itself is fine
            metrics = await scrape(client)  # the scrape answers, without the backlog
            assert "rewards_deliveries_pending" not in families(metrics)
            await proxy.start()
            back = await client.get("/readyz")
            assert back.status == 200, await back.text()


# --- logs ------------------------------------------------------------------------------------


@contextmanager
def captured(log_format: str = "json", level: str = "debug") -> Iterator[io.StringIO]:
    """The process's logging as `rewards serve` sets it up (`configure_logging`), into a string;
    put back as it was afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), [logging.getLogger(n).level for n in OWN_LOGGERS])
    configure_logging(load_settings(environ={"LOG_FORMAT": log_format, "LOG_LEVEL": level}), stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
        for name, own in zip(OWN_LOGGERS, saved[2], strict=True):
            logging.getLogger(name).setLevel(own)


async def test_json_logs_carry_the_request_and_never_the_message(
    database: Database, clock: FixedClock
) -> None:
    await add_member(database, "Ana")
    await add_member(database, "Bob")
    body = {"giver": "bob@example.com", "receivers": ["ana@example.com"], "message": SECRET_MESSAGE}
    async with api_client(database, clock) as api:
        with captured() as stream:
            created = await api.client.post(KUDOS_PATH, json=body, headers=api.auth())
            assert created.status == 201
            to_self = {**body, "receivers": ["bob@example.com"]}
            assert (await api.client.post(KUDOS_PATH, json=to_self, headers=api.auth())).status in (
                403,
                422,
            )
            logging.getLogger("dialogs.engine").exception(
                "a failure", exc_info=RuntimeError("no secrets here")
            )
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
    assert SECRET_MESSAGE not in stream.getvalue()
    assert any("exception" in line for line in lines)


async def test_turn_lines_name_the_turn_platform_and_member(
    database: Database, clock: FixedClock
) -> None:
    from dialogs.engine import DialogEngine

    ana = await add_member(database, "Ana Lopez")
    await add_member(database, "Li Wei")
    core = Core(settings=Settings(database_url=database.url), db=database, clock=clock)
    chat = ScriptedConversation(DialogEngine(core), ana, whole_forms=True, platform="slack")
    original = core.kudos.give

    async def give(*args: object, **kwargs: object) -> object:
        logging.getLogger("rewards.kudos").info("giving")
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    core.kudos.give = give  # type: ignore[method-assign]
    with captured(level="info") as stream:
        await chat.say(f"/kudos @li.wei {SECRET_MESSAGE}")
        logging.getLogger("rewards.kudos").info("after the turn")
    assert chat.screens == ["kudos_posted"], chat.text
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    giving = next(line for line in lines if line["message"] == "giving")
    assert giving["platform"] == "slack"
    assert giving["member_id"] == ana
    assert len(giving["turn_id"]) == 16
    after = next(line for line in lines if line["message"] == "after the turn")
    assert "turn_id" not in after and "member_id" not in after
    assert SECRET_MESSAGE not in stream.getvalue()


def test_secrets_are_hidden_in_both_formats() -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
    settings = load_settings(
        environ={
            "TELEGRAM_BOT_TOKEN": token,
            "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
            "DATABASE_URL": "postgresql://rewards:s3cret-passw0rd@db/rewards",
        }
    )
    from rewards.observability.logs import configured_secrets

    redact = Redactor(configured_secrets(settings))
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: POST %s %s",
        (
            f"https://api.telegram.org/bot{token}/getMe",
            "sig 8f742231b10e8888abcd99yyyzzz85a5 pw s3cret-passw0rd xoxb-1234-5678-abcdefgh "
            "Authorization: Bearer nrw_abcdefghijklmnopqrstuvwxyz",
        ),
        None,
    )
    for formatter in (JsonFormatter(redact), TextFormatter(redact)):
        line = formatter.format(record)
        for secret in (token, "8f742231b10e", "s3cret-passw0rd", "xoxb-1234", "nrw_abcdefgh"):
            assert secret not in line
        assert "api.telegram.org/bot***/getMe" in line
    # The text format is today's line: time, level, logger, message.
    _day, _clock, level, rest = TextFormatter(redact).format(record).split(" ", 3)
    assert (level, rest) == (
        "INFO",
        "httpx: HTTP Request: POST https://api.telegram.org/bot***/getMe sig *** pw *** xox*** "
        "Authorization: Bearer ***",
    )


def test_each_token_shape_is_hidden_on_a_line_of_its_own() -> None:
    """Each shape alone on an access-log-like line (the redactor skips lines where none
    starts), and an ordinary line goes out as it came."""
    redact = Redactor()
    shapes = (
        ("/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5/getMe", "/bot***/getMe"),
        ("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq", "***"),
        ("xoxb-1234-5678-abcdefgh", "xox***"),
        ("xapp-1-A0123456789", "xapp-***"),
        ("nrw_abcdefghijklmnopqrstuvwxyz", "nrw_***"),
        ("bearer abc.def", "bearer ***"),
        ("BEARER\tabc.def", "BEARER\t***"),
    )
    for token, hidden in shapes:
        assert redact(f'"GET /x?{token} HTTP/1.1" 200') == f'"GET /x?{hidden} HTTP/1.1" 200'
    plain = '127.0.0.1 [07/Dec/2026:23:40:12 +0000] "POST /slack/events HTTP/1.1" 200 412 "-"'
    assert redact(plain) is plain


async def test_a_request_id_names_the_lines_of_its_request(database: Database) -> None:
    from aiohttp import web

    async def probe(request: web.Request) -> web.Response:
        logging.getLogger("tests.probe").info("inside the request")
        return web.json_response({})

    settings = Settings(database_url=database.url, catalog_files=(), reward_scheduler=False)
    app = create_app(settings)
    app.router.add_get("/probe", probe)
    async with TestClient(TestServer(app)) as client:
        with captured(level="info") as stream:
            given = await client.get("/probe", headers={"X-Request-Id": "lb-7f3a.1"})
            made = await client.get("/probe", headers={"X-Request-Id": "has spaces in it"})
    assert given.headers["X-Request-Id"] == "lb-7f3a.1"
    assert len(made.headers["X-Request-Id"]) == 16  # an unusable id is replaced
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ids = [line.get("request_id") for line in lines if line["message"] == "inside the request"]
    assert ids == ["lb-7f3a.1", made.headers["X-Request-Id"]]


def test_log_level_applies_to_the_project_and_libraries_stay_at_info() -> None:
    with captured(level="warning") as stream:
        logging.getLogger("rewards.test").info("not at warning")
        logging.getLogger("rewards.test").warning("shown")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [("WARNING", "shown")]
    with captured(log_format="text", level="debug") as stream:
        logging.getLogger("bots.test").debug("ours at debug")
        logging.getLogger("aiosqlite").debug("a statement and its values")
    assert stream.getvalue().endswith(" DEBUG bots.test: ours at debug\n")
    assert "its values" not in stream.getvalue()


# --- rewards serve -------------------------------------------------------------------------


def test_serve_logs_json_and_says_listening_once_it_answers(tmp_path: Path) -> None:
    """`rewards serve` with LOG_FORMAT=json: every line of its log is a JSON object, and the
    "listening" line comes after the start-up steps, when the server already answers."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REWARDS_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'rewards.db'}",
        "REWARDS_CATALOG": "",
        "REWARDS_ENV_FILE": os.devnull,
        "LOG_FORMAT": "json",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bots.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    assert process.stderr is not None
    lines: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + 120
        url = ""
        while time.monotonic() < deadline:
            raw = process.stderr.readline()
            if not raw:
                break
            lines.append(json.loads(raw))
            message = str(lines[-1]["message"])
            if message.startswith("listening on "):
                url = message.removeprefix("listening on ")
                break
        assert url.startswith("http://127.0.0.1:"), lines
        # At the moment the line is written the server answers (no retry loop here).
        with urllib.request.urlopen(f"{url}/livez", timeout=5) as reply:
            assert reply.status == 200
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as reply:
            assert json.loads(reply.read())["status"] == "ready"
        # Every start-up step logged before it: the schema, the scheduler, the notifier (the last).
        messages = [str(line["message"]) for line in lines[:-1]]
        for step in ("database schema", "scheduler started", "notifier started"):
            assert any(m.startswith(step) for m in messages), (step, messages)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    for raw in rest.splitlines():
        lines.append(json.loads(raw))
    assert all(line["level"] in {"DEBUG", "INFO", "WARNING", "ERROR"} for line in lines)


def test_log_settings_are_checked() -> None:
    from rewards.settings import SettingsError

    assert (load_settings(environ={}).log_format, load_settings(environ={}).log_level) == (
        "text",
        "info",
    )
    assert load_settings(environ={"LOG_FORMAT": "JSON", "LOG_LEVEL": "Debug"}).log_format == "json"
    with pytest.raises(SettingsError, match="LOG_FORMAT must be one of text, json, got 'xml'"):
        load_settings(environ={"LOG_FORMAT": "xml"})
    with pytest.raises(SettingsError, match="LOG_LEVEL must be one of"):
        load_settings(environ={"LOG_LEVEL": "loud"})


async def test_an_embedding_application_keeps_its_own_metrics_path(database: Database) -> None:
    from aiohttp import web

    from bots.engine import RewardsEngine

    async def own(request: web.Request) -> web.Response:
        return web.Response(text="the host's own metrics")

    app = web.Application()
    app.router.add_get("/metrics", own)
    settings = Settings(database_url=database.url, catalog_files=(), reward_scheduler=False)
    engine = RewardsEngine(app, settings=settings)
    engine.setup()
    app.on_startup.append(engine.reward_startup)
    app.on_shutdown.append(engine.reward_shutdown)
    async with TestClient(TestServer(app)) as client:
        assert await (await client.get("/metrics")).text() == "the host's own metrics"
        assert (await client.get("/readyz")).status == 200
