"""The input gate (`rewards.inputs`, `bots.gate`): every entry point refuses or cleans what it
cannot store, with a clear answer and nothing written, instead of a 500, a traceback or an apology.

Per entry point: the cases of issue 15 (each failed before the gate), then a hypothesis run of
malformed input asserting no 5xx and no traceback. The hypothesis runs are kept small (a few dozen
examples, one app per test) and run on both databases through the `database` fixture.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from rewards.catalog.loader import parse_catalog, read_json
from rewards.clock import FixedClock
from rewards.errors import CatalogError
from rewards.inputs import (
    API_JSON,
    HeaderInvalid,
    JsonMalformed,
    JsonTooDeep,
    JsonTooLarge,
    TextRefused,
    check_document_text,
    check_text,
    clean_chat_text,
    idempotency_key,
    nesting_depth,
    parse_json,
    slack_timestamp,
)
from rewards.store.db import Database
from rewards.store.models import ApiIdempotency, Award, Kudos, Reward
from tests.factories import add_member, add_reward
from tests.support.api import Api, api_client

PROBLEM = "application/problem+json"
FORM = "application/x-www-form-urlencoded"
DEEP = "[" * 3000
T = TypeVar("T")

FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

# Text a fuzzer (or an unlucky user) sends: control characters, lone surrogates, markup.
TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0, max_codepoint=0x024F), max_size=24),
    st.sampled_from(["\x00", "thanks\x00!", "a\x1bb", "\ud800", "[[[", "<!channel>", "#a\x00"]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


async def count(database: Database, model: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def run_on(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on the test's event loop from the hypothesis thread."""
    return asyncio.run_coroutine_threadsafe(work, loop).result(timeout=60)


# --- the pure checks -----------------------------------------------------------------------------


def test_nesting_depth_counts_brackets_outside_strings() -> None:
    assert nesting_depth("1") == 0
    assert nesting_depth('[{"a": "[[[{"}, [1]]') == 2
    assert nesting_depth('["\\"[["]') == 1  # an escaped quote does not end the string
    assert nesting_depth(DEEP) == 3000


def test_parse_json_refuses_deep_large_and_not_json() -> None:
    with pytest.raises(JsonTooDeep, match="3000 levels deep; the limit is 32"):
        parse_json(DEEP.encode(), API_JSON)
    with pytest.raises(JsonTooLarge) as large:
        parse_json(b" " * (API_JSON.max_bytes + 1), API_JSON)
    assert large.value.status == 413
    for raw in (b"\xff", b"{", b'{"a": NaN}', b"[Infinity]"):
        with pytest.raises(JsonMalformed) as malformed:
            parse_json(raw, API_JSON)
        assert malformed.value.status == 400
    assert parse_json(b'{"a": [1, {"b": "["}]}', API_JSON) == {"a": [1, {"b": "["}]}


def test_text_rules() -> None:
    assert check_text("tab\tline\nreturn\r", "message") == "tab\tline\nreturn\r"
    for bad in ("a\x00b", "\x07", "\x1f", "\ud800"):
        with pytest.raises(TextRefused, match="The message contains"):
            check_text(bad, "message")
    with pytest.raises(TextRefused, match=r"receivers\[1\]\.name: contains a control character"):
        check_document_text({"receivers": [{"name": "ok"}, {"name": "x\x00"}]})
    with pytest.raises(TextRefused, match=r"\\u0000"):  # a bad key is shown escaped
        check_document_text({"k\x00": 1})
    assert clean_chat_text("thanks\x00 for\x1b the\ud800 demo\t!") == "thanks for the demo\t!"


def test_header_rules() -> None:
    assert idempotency_key("3f1c-ab 12") == "3f1c-ab 12"
    for bad in ("", "x" * 201, "\udcff\udcfe", "caf\u00e9", "a\x00"):
        with pytest.raises(HeaderInvalid):
            idempotency_key(bad)
    assert slack_timestamp("1763990000") == 1763990000
    for bad in (None, "", "soon", "1e9", "-5", " 12", "\u0661\u0662"):
        assert slack_timestamp(bad) is None


# --- the REST API --------------------------------------------------------------------------------

WRITE_ROUTES = [
    ("POST", "/kudos/api/v1/user_kudos", "write"),
    ("POST", "/api/v1/badge_assign", "write"),
    ("POST", "/rewards/api/v1/rewards", "admin"),
    ("PUT", "/rewards/api/v1/rewards/1", "admin"),
    ("POST", "/rewards/api/v1/nominations", "admin"),
    ("POST", "/rewards/api/v1/nominations/1/close", "admin"),
    ("POST", "/rewards/api/v1/nominations/1/cancel", "admin"),
    ("POST", "/rewards/api/v1/workflows/1/enroll", "admin"),
    ("POST", "/rewards/api/v1/workflows/1/steps", "admin"),
    ("PUT", "/rewards/api/v1/members/ana@example.com", "admin"),
    ("POST", "/rewards/api/v1/members/import", "admin"),
    ("POST", "/rewards/api/v1/awards/1/revoke", "admin"),
    ("POST", "/rewards/api/v1/attendance", "write"),
    ("POST", "/rewards/api/v1/data/sales", "write"),
    ("POST", "/rewards/api/v1/events", "write"),
    ("POST", "/rewards/api/v1/kudos/1/revoke", "admin"),
    ("POST", "/rewards/api/v1/members/ana@example.com/lock", "admin"),
    ("POST", "/rewards/api/v1/members/ana@example.com/unlock", "admin"),
    ("POST", "/rewards/api/v1/members/ana@example.com/grants", "admin"),
    ("POST", "/rewards/api/v1/members/1/forget", "admin"),
    ("POST", "/rewards/api/v1/nominations/1/voting", "admin"),
    ("POST", "/rewards/api/v1/redemptions", "write"),
    ("POST", "/rewards/api/v1/redemptions/1/approve", "admin"),
    ("POST", "/rewards/api/v1/redemptions/1/reject", "admin"),
    ("POST", "/rewards/api/v1/redemptions/1/fulfil", "admin"),
]


def test_the_route_list_is_every_api_write_route_with_a_body() -> None:
    """So a new write route cannot escape the tests below unnoticed."""
    from bots.server import create_app
    from rewards.settings import Settings

    app = create_app(Settings(), platforms=False)
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method in ("POST", "PUT", "PATCH")
        and route.resource is not None
        and "/api/v1/" in route.resource.canonical
        and not route.resource.canonical.endswith("/run")  # runs a job: no body
    }
    listed = {(m, p) for m, p, _ in WRITE_ROUTES}
    assert len(served) == len(listed) == 25
    assert {m for m, _ in served} == {m for m, _ in listed}


async def _people_and_a_badge(database: Database) -> int:
    ana = await add_member(database, "Ana")
    await add_member(database, "Bob")
    await add_reward(database, reward_id=1, reward="Star")
    return ana


async def _raw(api: Api, request: bytes) -> tuple[int, bytes]:
    """Send one raw HTTP/1.1 request (for header bytes no client library will send)."""
    server = api.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


async def test_deeply_nested_json_on_every_write_route_is_refused_not_a_500(
    database: Database, clock: FixedClock
) -> None:
    await _people_and_a_badge(database)
    async with api_client(database, clock) as api:
        for method, path, scope in WRITE_ROUTES:
            for body in (DEEP, "[" * 33 + "]" * 33, '{"a": ' * 40 + "1" + "}" * 40):
                response = await api.client.request(
                    method,
                    path,
                    data=body,
                    headers=api.auth(scope, **{"Content-Type": "application/json"}),
                )
                assert response.content_type == PROBLEM, (method, path)
                if response.status == 404:  # the address names nothing: checked before the body
                    assert path.endswith("/1") or "/1/" in path, (method, path)
                    continue
                assert response.status == 422, (method, path, await response.text())
                problem = await response.json()
                assert problem["type"].endswith("json-too-deep")
                assert "the limit is 32" in problem["detail"]
    assert await count(database, Kudos) == await count(database, Award) == 0


@pytest.mark.parametrize("kind", [["User Badge"], {"User Badge": 1}])
async def test_reward_type_as_a_list_or_object_is_a_422_naming_the_field(
    database: Database, clock: FixedClock, kind: object
) -> None:
    reward = {"reward_id": 7, "reward": "Star", "reward_category": "R", "reward_type": kind}
    async with api_client(database, clock) as api:
        response = await api.client.post(
            "/rewards/api/v1/rewards", json=reward, headers=api.auth("admin")
        )
        assert (response.status, response.content_type) == (422, PROBLEM)
        problem = await response.json()
        assert [e["field"] for e in problem["errors"]] == ["reward_type"]
    assert await count(database, Reward) == 0


async def test_a_nul_in_a_kudos_or_badge_message_is_a_422_and_nothing_is_written(
    database: Database, clock: FixedClock
) -> None:
    ana = await _people_and_a_badge(database)
    async with api_client(database, clock) as api:
        kudos = await api.client.post(
            "/kudos/api/v1/user_kudos",
            json={"giver": "bob@example.com", "receivers": [ana], "message": "thanks\x00!"},
            headers=api.auth(),
        )
        badge = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 1, "giver": "bob@example.com", "receiver": ana, "message": "\x00"},
            headers=api.auth(),
        )
        name = await api.client.post(
            "/rewards/api/v1/rewards",
            json={"reward_id": 9, "reward": "St\x00ar", "reward_category": "R"},
            headers=api.auth("admin"),
        )
        for response, field in ((kudos, "message"), (badge, "message"), (name, "reward")):
            assert (response.status, response.content_type) == (422, PROBLEM)
            detail = (await response.json())["detail"]
            assert f"{field}: contains a control character (U+0000)" in detail, detail
    assert await count(database, Kudos) == await count(database, Award) == 0
    assert await count(database, Reward) == 1


async def test_a_non_utf8_idempotency_key_is_400_and_a_non_utf8_api_key_401(
    database: Database, clock: FixedClock
) -> None:
    ana = await _people_and_a_badge(database)
    body = json.dumps(
        {"giver": "bob@example.com", "receivers": [ana], "message": "thanks"}
    ).encode()
    async with api_client(database, clock) as api:

        def request(auth: bytes, key: bytes) -> bytes:
            return (
                b"POST /kudos/api/v1/user_kudos HTTP/1.1\r\nHost: test\r\n"
                b"Authorization: Bearer " + auth + b"\r\nIdempotency-Key: " + key + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )

        key = api.keys["write"].encode()
        status, answer = await _raw(api, request(key, b"\xff\xfe-retry"))
        assert status == 400, answer
        assert b"Idempotency-Key has 1 to 200 printable ASCII characters" in answer
        status, answer = await _raw(api, request(b"nrw_\xff\xfe", b"k1"))
        assert status == 401, answer
    assert await count(database, Kudos) == await count(database, ApiIdempotency) == 0


async def test_an_idempotency_key_reused_with_another_body_is_a_422(
    database: Database, clock: FixedClock
) -> None:
    ana = await _people_and_a_badge(database)
    bob = await add_member(database, "Cy")
    first = {"giver": "bob@example.com", "receivers": [ana], "message": "thanks"}
    async with api_client(database, clock) as api:
        headers = api.auth(**{"Idempotency-Key": "k-1"})
        created = await api.client.post("/kudos/api/v1/user_kudos", json=first, headers=headers)
        assert created.status == 201
        # the same request with its keys in another order and other spacing is the same request
        same = json.dumps(dict(reversed(first.items())), indent=2)
        replayed = await api.client.post(
            "/kudos/api/v1/user_kudos",
            data=same,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert replayed.status == 201
        assert replayed.headers["Idempotent-Replayed"] == "true"
        other = {**first, "receivers": [bob]}
        refused = await api.client.post("/kudos/api/v1/user_kudos", json=other, headers=headers)
        assert (refused.status, refused.content_type) == (422, PROBLEM)
        problem = await refused.json()
        assert problem["type"].endswith("idempotency-key-reused")
        assert "different body" in problem["detail"]
    assert await count(database, Kudos) == 1


def _api_bodies() -> st.SearchStrategy[tuple[int, str]]:
    """(route index, raw body): shaped like the route's body with wrong values, any JSON, deep
    nesting, or not JSON at all."""
    member = st.one_of(st.sampled_from(["ana@example.com", 1, 2]), JSON_VALUES)
    kudos = st.fixed_dictionaries(
        {"giver": member, "receivers": st.lists(member, max_size=2) | JSON_VALUES},
        optional={"message": TEXT | JSON_VALUES, "tags": st.lists(TEXT, max_size=2)},
    )
    reward = st.fixed_dictionaries(
        {"reward_id": st.integers(1, 5) | JSON_VALUES, "reward": TEXT},
        optional={
            "reward_category": TEXT,
            "reward_type": st.sampled_from(["User Badge", "Computed Badge"]) | JSON_VALUES,
            "message": TEXT,
            "rules": JSON_VALUES,
            "job": JSON_VALUES,
        },
    )
    body = st.one_of(
        kudos.map(json.dumps),
        reward.map(json.dumps),
        JSON_VALUES.map(json.dumps),
        st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
        TEXT,
    )
    return st.tuples(st.integers(0, len(WRITE_ROUTES) - 1), body)


async def test_hypothesis_api_bodies_never_get_a_5xx(database: Database, clock: FixedClock) -> None:
    await _people_and_a_badge(database)
    async with api_client(database, clock) as api:
        base = str(api.client.make_url("")).rstrip("/")

        @FUZZ
        @given(_api_bodies())
        def post(case: tuple[int, str]) -> None:
            index, body = case
            method, path, scope = WRITE_ROUTES[index]
            response = requests.request(
                method,
                base + path,
                data=body.encode("utf-8", "surrogatepass"),
                headers=api.auth(scope, **{"Content-Type": "application/json"}),
                timeout=30,
            )
            assert response.status_code < 500, (method, path, body, response.text)
            assert "Traceback" not in response.text
            if response.status_code >= 400:
                assert response.headers["Content-Type"].startswith(PROBLEM)

        await asyncio.to_thread(post)


# --- catalogue files (rewards catalog validate / load) -------------------------------------------


def test_catalogue_reward_type_list_nul_and_depth_are_problems_not_tracebacks() -> None:
    base = {"reward_id": 3, "reward": "Star", "reward_category": "R"}
    for raw, field in (
        ({**base, "reward_type": ["User Badge"]}, "reward_type"),
        ({**base, "reward_type": {"a": 1}}, "reward_type"),
        ({**base, "reward": "St\x00ar"}, "reward"),
        ({**base, "description": "\x07"}, "description"),
    ):
        with pytest.raises(CatalogError) as caught:
            parse_catalog([raw])
        assert [p.field for p in caught.value.problems] == [field]
    with pytest.raises(CatalogError, match="3000 levels deep; the limit is 32"):
        read_json(DEEP)


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    from click.testing import CliRunner

    from bots.cli import cli

    def invoke() -> tuple[int, str]:
        result = CliRunner().invoke(cli, list(args), env=env)
        return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")

    return await asyncio.to_thread(invoke)


async def test_catalog_validate_and_load_answer_one_line_per_problem(
    database: Database, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database.url, "REWARDS_ENV_FILE": str(tmp_path / "none.env")}
    cases = {
        "list.json": [{"reward_id": 3, "reward": "Star", "reward_category": "R",
                       "reward_type": ["User Badge"]}],
        "nul.json": [{"reward_id": 4, "reward": "St\u0000ar", "reward_category": "R"}],
        "deep.json": DEEP,
    }  # fmt: skip
    for name, document in cases.items():
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        for command in ("validate", "load"):
            code, output = await _cli("catalog", command, str(path), env=env)
            assert code == 1, output
            assert "Traceback" not in output
            assert output.splitlines()[0].startswith(("3  reward_type", "4  reward", "-  (file)"))
    assert await count(database, Reward) == 0


def _catalogue_rewards() -> st.SearchStrategy[dict[str, Any]]:
    fields = {
        "reward_category": TEXT | JSON_VALUES,
        "reward_type": st.sampled_from(["User Badge", "Computed Badge", "Nomination Badge"])
        | JSON_VALUES,
        "description": TEXT,
        "message": TEXT,
        "points": st.integers(-5, 500) | JSON_VALUES,
        "rules": JSON_VALUES,
        "job": JSON_VALUES,
        "events": JSON_VALUES,
        "workflow": JSON_VALUES,
        "nomination_config": JSON_VALUES,
        "assigner": JSON_VALUES,
        "awardee": JSON_VALUES,
        "announce": JSON_VALUES,
    }
    return st.fixed_dictionaries(
        {"reward_id": st.integers(1, 3) | JSON_VALUES, "reward": TEXT}, optional=fields
    )


async def test_hypothesis_catalogue_documents_validate_or_list_problems(
    database: Database, clock: FixedClock
) -> None:
    """A document either validates and loads, or is a CatalogError; never another exception."""
    from rewards.services.catalog import load_catalog

    loop = asyncio.get_running_loop()

    @FUZZ
    @given(st.lists(_catalogue_rewards(), min_size=1, max_size=2))
    def check(document: list[dict[str, Any]]) -> None:
        try:
            definitions = parse_catalog(document)
        except CatalogError as error:
            assert error.problems
            return
        run_on(loop, load_catalog(database, definitions, clock=clock))

    await asyncio.to_thread(check)


# --- logging: no traceback for bad input ---------------------------------------------------------


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that carry a traceback (what issue 15 found for a Teams activity)."""
    return [r.getMessage() for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]


# --- Slack ---------------------------------------------------------------------------------------


async def test_slack_bad_timestamps_signatures_and_deep_bodies_write_nothing(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.test_slack import LI, sign, slack_app

    async with slack_app(database) as slack:
        body = slack.command_body("/kudos", f"<@{LI}> thanks")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for timestamp, signature in (
            ("soon", "v0=abc"),
            ("", "v0=abc"),
            ("1e9", "v0=abc"),
            ("\u0661\u0662", "v0=abc"),  # Arabic-Indic digits: int() would take them
            (None, "v0=\u00e9"),  # hmac.compare_digest refuses non-ASCII strings
        ):
            headers = {**form, **sign(body)}
            if timestamp is not None:
                headers["X-Slack-Request-Timestamp"] = timestamp
            headers["X-Slack-Signature"] = signature
            response = await slack.client.post("/slack/events", data=body, headers=headers)
            assert response.status == 401, (timestamp, await response.text())
        unsigned = await slack.client.post(
            "/slack/events", data=DEEP, headers={"Content-Type": "application/json", **sign("x")}
        )
        assert unsigned.status == 401
        for deep in (DEEP, "payload=" + "%5B" * 3000):
            kind = "application/json" if deep == DEEP else form["Content-Type"]
            signed = await slack.post(deep, kind)
            assert signed.status in (400, 422), await signed.text()
        not_an_object = await slack.post("[1, 2]", "application/json")
        assert not_an_object.status == 400
        await slack.bot.drain()
        assert slack.api.calls == []
    assert await count(database, Kudos) == 0
    from rewards.store.models import InboundEvent, Member

    assert await count(database, InboundEvent) == await count(database, Member) == 0
    assert tracebacks(caplog) == []


async def test_slack_kudos_with_a_nul_goes_through_without_it(database: Database) -> None:
    from tests.test_slack import LI, slack_app

    async with slack_app(database) as slack:
        await slack.command("/kudos", f"<@{LI}> thanks\x00 for the\x07 demo")
        assert len(slack.api.public()) == 1
    async with database.read() as session:
        assert (await session.scalars(select(Kudos.message))).all() == ["thanks for the demo"]


def _slack_payload(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A recorded interactive payload with some of its fields replaced by any JSON (not the
    response URL: the replies' own error paths belong to the reply policy's tests)."""
    keys = sorted(set(base) - {"response_url", "response_urls"})
    return st.dictionaries(st.sampled_from(keys), JSON_VALUES, max_size=3).map(
        lambda changes: {**base, **changes}
    )


async def test_hypothesis_slack_payloads_never_get_a_5xx_or_an_apology(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    from urllib.parse import urlencode

    from dialogs.engine import APOLOGY
    from tests.test_slack import LI, PAYLOADS, slack_app

    block_actions = json.loads((PAYLOADS / "block_actions.json").read_text())
    submission = json.loads((PAYLOADS / "view_submission.json").read_text())
    loop = asyncio.get_running_loop()
    async with slack_app(database) as slack:
        block_actions["response_url"] = slack.api.response_url("action")
        submission["response_urls"] = []
        commands = st.tuples(st.sampled_from(["/kudos", "/badge", "/leaderboard", "/x"]), TEXT)
        cases = st.one_of(
            commands.map(
                lambda c: (
                    slack.command_body(c[0], f"<@{LI}> {c[1]}"),
                    FORM,
                )
            ),
            st.one_of(_slack_payload(block_actions), _slack_payload(submission)).map(
                lambda p: (
                    urlencode({"payload": json.dumps(p)}),
                    FORM,
                )
            ),
            JSON_VALUES.map(
                lambda v: (json.dumps({"type": "event_callback", "event": v}), "application/json")
            ),
        )

        @FUZZ
        @given(cases)
        def post(case: tuple[str, str]) -> None:
            body, content_type = case
            response = run_on(loop, slack.post(body, content_type))
            run_on(loop, slack.bot.drain())
            assert response.status < 500, (body, response.status)

        await asyncio.to_thread(post)
        said = json.dumps([call.params for call in slack.api.calls], ensure_ascii=False)
        assert APOLOGY not in said and "Traceback" not in said
    assert tracebacks(caplog) == []


# --- Telegram ------------------------------------------------------------------------------------


@pytest.fixture
async def telegram(database: Database) -> Any:
    from aiohttp.test_utils import TestClient, TestServer

    from bots.server import create_app
    from bots.telegram import setup
    from tests.support.telegram_api import FakeBotAPI
    from tests.test_telegram import BO, GROUP, Harness, telegram_settings

    api = await FakeBotAPI().start()
    try:
        settings = telegram_settings(database, api)
        app = create_app(settings, platforms=False)
        assert setup(app, settings) is True
        api.set_chat_member(GROUP, BO)
        async with TestClient(TestServer(app)) as client:
            yield Harness(api, client, database)
    finally:
        await api.close()


async def test_telegram_deep_json_is_refused_and_a_nul_is_dropped_from_kudos(
    telegram: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from bots.telegram import SECRET_HEADER, WEBHOOK_PATH
    from tests.test_telegram import SECRET, people, private_text

    await people(telegram.database)
    for body in (DEEP, '{"update_id": 1, "message": ' * 65 + "1" + "}" * 65):
        response = await telegram.client.post(
            WEBHOOK_PATH,
            data=body,
            headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"},
        )
        assert response.status in (400, 422), await response.text()
    bad_secret = await telegram.client.post(
        WEBHOOK_PATH, data=b"{}", headers={SECRET_HEADER: "s\u00e9cret"}
    )
    assert bad_secret.status == 403
    assert await count(telegram.database, Kudos) == 0

    await telegram.deliver(private_text(9001, "/kudos @li_wei thanks\x00 for the\x1b demo"))
    async with telegram.database.read() as session:
        assert (await session.scalars(select(Kudos.message))).all() == ["thanks for the demo"]
    assert tracebacks(caplog) == []


async def test_hypothesis_telegram_updates_never_get_a_5xx_or_an_apology(
    telegram: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from dialogs.engine import APOLOGY
    from tests.test_telegram import payload, people, private_text

    await people(telegram.database)
    loop = asyncio.get_running_loop()
    numbers = iter(range(10_000, 20_000))
    base = payload("kudos_group")
    cases = st.one_of(
        TEXT.map(lambda t: private_text(0, f"/kudos @li_wei {t}")),
        TEXT.map(lambda t: private_text(0, t)),
        st.dictionaries(st.sampled_from(sorted(base["message"])), JSON_VALUES, max_size=2).map(
            lambda changes: {**base, "message": {**base["message"], **changes}}
        ),
    )

    @FUZZ
    @given(cases)
    def post(update: dict[str, Any]) -> None:
        update = {**update, "update_id": next(numbers)}
        response = run_on(loop, telegram.post(update))
        assert response.status < 500, (update, response.status)

    await asyncio.to_thread(post)
    said = json.dumps(telegram.api.params("sendMessage"), ensure_ascii=False)
    assert APOLOGY not in said and "Traceback" not in said
    assert tracebacks(caplog) == []


# --- Teams ---------------------------------------------------------------------------------------


@pytest.fixture
async def teams(database: Database) -> Any:
    from aiohttp.test_utils import TestClient, TestServer

    from tests.support.teams_connector import FakeConnector
    from tests.test_teams import make_app, profiles

    async with FakeConnector() as connector:
        profiles(connector)
        app, _ = make_app(database)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client, connector


async def test_teams_activity_without_from_is_ignored_without_a_traceback(
    database: Database, teams: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from rewards.store.models import InboundEvent, Member
    from tests.test_teams import payload

    client, connector = teams
    for name in ("message_channel_kudos", "message_personal", "invoke_execute"):
        activity = payload(name, connector)
        for broken in ({"from": None}, {"from": {}}, {"conversation": None}):
            response = await client.post("/api/messages", json={**activity, **broken})
            assert response.status < 500, (name, broken, await response.text())
    deep = await client.post(
        "/api/messages", data=DEEP, headers={"Content-Type": "application/json"}
    )
    assert deep.status in (400, 422)
    assert connector.sent == []
    assert await count(database, Kudos) == 0
    assert await count(database, InboundEvent) == await count(database, Member) == 0
    assert tracebacks(caplog) == []


async def test_teams_kudos_with_a_nul_goes_through_without_it(
    database: Database, teams: Any
) -> None:
    from tests.test_teams import payload

    client, connector = teams
    activity = payload("message_channel_kudos", connector)
    activity["text"] = activity["text"].replace("thanks for", "thanks\x00 for")
    response = await client.post("/api/messages", json=activity)
    assert response.status == 200
    async with database.read() as session:
        assert (await session.scalars(select(Kudos.message))).all() == ["thanks for the great demo"]


async def test_hypothesis_teams_activities_never_get_a_5xx_or_an_apology(
    database: Database, teams: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from dialogs.engine import APOLOGY
    from tests.test_teams import payload

    client, connector = teams
    loop = asyncio.get_running_loop()
    numbers = iter(range(10_000, 20_000))
    message = payload("message_personal", connector)
    kudos = payload("message_channel_kudos", connector)
    cases = st.one_of(
        TEXT.map(lambda t: {**message, "text": t}),
        TEXT.map(lambda t: {**kudos, "text": kudos["text"].replace("thanks", t)}),
        st.dictionaries(st.sampled_from(sorted(message)), JSON_VALUES, max_size=2).map(
            lambda changes: {**message, **changes}
        ),
    )

    @FUZZ
    @given(cases)
    def post(activity: dict[str, Any]) -> None:
        activity = {**activity, "id": f"fuzz-{next(numbers)}"}
        response = run_on(loop, client.post("/api/messages", json=activity))
        assert response.status < 500, (activity, response.status)

    await asyncio.to_thread(post)
    said = json.dumps([s.body for s in connector.sent], ensure_ascii=False)
    assert APOLOGY not in said and "Traceback" not in said
    assert tracebacks(caplog) == []


# --- console chat and the dialog engine ----------------------------------------------------------


async def test_hypothesis_chat_lines_never_get_an_apology(
    database: Database, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Lines as `rewards chat` sends them (field by field), through the dialog engine."""
    from dialogs.engine import APOLOGY, DialogEngine
    from tests.support.conversation import ScriptedConversation, make_core

    ana = await add_member(database, "Ana", job_code="MANAGER")
    await add_member(database, "Li")
    await add_reward(database, reward_id=1, reward="Star")
    # every line is a turn of Ana's: no chat rate limit, so each one reaches the dialogs
    core = make_core(database, clock, database_url=database.url, chat_rate_limit=1_000_000)
    engine = DialogEngine(core)
    chat = ScriptedConversation(engine, ana, whole_forms=False, platform="console")
    loop = asyncio.get_running_loop()
    lines = st.one_of(
        TEXT.map(lambda t: f"/kudos @li {t}"),
        TEXT.map(lambda t: f"/badge {t}"),
        TEXT,
    )

    @FUZZ
    @given(st.lists(lines, min_size=1, max_size=3))
    def type_lines(script: list[str]) -> None:
        for line in script:
            replies = run_on(
                loop, chat.say(line) if not line.startswith("/") else _command(chat, line)
            )
            said = repr(replies)
            assert APOLOGY not in said and "Traceback" not in said, (line, said)

    await asyncio.to_thread(type_lines)
    assert tracebacks(caplog) == []
    async with database.read() as session:
        messages = (await session.scalars(select(Kudos.message))).all()
    assert all("\x00" not in m for m in messages)


async def _command(chat: Any, line: str) -> Any:
    from dialogs.events import Command

    name, _, args = line[1:].partition(" ")
    return await chat._run(Command(name, args))


# --- member files (rewards members import) ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("people.csv", "email,display_name\nana@example.com,Ana\x00 Lopez\n", "line 2"),
        ("people.json", json.dumps([{"email": "a@example.com", "display_name": "A\x00"}]), "[0]"),
        ("people.json", DEEP, "levels deep"),
    ],
)
def test_member_files_with_a_nul_or_nested_too_deep_are_refused(
    tmp_path: Path, name: str, content: str, where: str
) -> None:
    from rewards.services.members_import import MemberImportError, read_members_file

    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(MemberImportError, match=where.replace("[", r"\[").replace("]", r"\]")):
        read_members_file(path)


async def test_a_deep_or_nul_cursor_is_a_422(database: Database, clock: FixedClock) -> None:
    from bots.api.pagination import encode_cursor

    async with api_client(database, clock) as api:
        for value in (json.loads("[" * 900 + "]" * 900), "a\x00"):
            cursor = encode_cursor(value)
            response = await api.client.get(
                f"/kudos/api/v1/kudos_tags?cursor={cursor}", headers=api.auth("read")
            )
            assert (response.status, response.content_type) == (422, PROBLEM)
