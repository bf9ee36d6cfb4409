"""Message templates are bounded: operators and amplifying calls are refused before they run,
what a template builds and writes is measured, output stops at the budget and every render at
its deadline; `catalog validate` and catalogue loads render each message against a sample
context and name the reward that fails; an award whose template overruns is refused with a clear
sentence and writes nothing, while the server keeps answering `/healthz` (SQLite and PostgreSQL).

Each case was a report against `rewards serve`: three nested loops blocked the server 10.5 s,
``{{ 9**(9**7) }}`` took 18 s, ``{{ 'a' * 100000000 }}`` built 100-400 MB per award, and
`catalog validate` accepted ``{{ 9**(9**9) }}`` and an ``|attr`` escape that then failed every
award.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import rewards.services.awards as awards_module
import rewards.templates as templates_module
from bots.commands.catalog import catalog
from rewards.awarding.batch import Wanted, award_batch
from rewards.catalog.loader import parse_catalog
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.errors import CatalogError, TemplateRefused
from rewards.services.awards import AwardSource
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, LedgerEntry, OutboxEvent, Reward
from rewards.templates import (
    MAX_OUTPUT,
    check_template,
    render,
    render_async,
    validate_message,
)
from rewards.templates.sandbox import MessageEnvironment, Overrun
from tests.factories import add_member, add_reward
from tests.support.api import api_client

VARS: dict[str, Any] = {
    "user": {"display_name": "Ana"},
    "reward": {"name": "Top Seller", "points": 50},
    "env": {"month_name": "November"},
    "args": {"rank": 1},
}

X = "'x' * 4000"
# The 4,000 characters are built once (`set`), so only the deadline can stop the 6.4e10 empty
# iterations; a loop over `'x' * 4000` written inline would rebuild it on every pass and, on a fast
# machine, reach the 1,000,000-character work budget before the deadline.
NESTED_LOOPS = (
    f"{{% set s = {X} %}}{{% for a in s %}}{{% for b in s %}}{{% for c in s %}}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
NESTED_LOOPS_WRITING = (
    f"{{% for a in {X} %}}{{% for b in {X} %}}{{% for c in {X} %}}"
    "x{% endfor %}{% endfor %}{% endfor %}"
)
# The template text has backslashes (a JSON catalogue writes them "\\x5f"); Jinja's string
# literal turns them into underscores.
ATTR_ESCAPE = "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}"
SLOW = "took longer than 200 ms to render"


def _refused(source: str, **variables: Any) -> tuple[str, float]:
    """Render `source`; return the refusal and how long it took."""
    started = time.perf_counter()
    with pytest.raises(TemplateRefused) as refused:
        render(source, **{**VARS, **variables})
    return str(refused.value), time.perf_counter() - started


# ---- the sandbox ------------------------------------------------------------------------------


def test_nested_loops_without_output_stop_at_the_deadline() -> None:
    sentence, took = _refused(NESTED_LOOPS)
    assert sentence == f"the message template {SLOW}"
    assert took < 2  # 6.4e10 iterations: it is stopped, not left spinning


class _CollectsGarbage:
    """A value whose printing runs full garbage collections for `seconds` of CPU time in the
    render thread, as a large process's own collection can at any allocation."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.heap = [[] for _ in range(300_000)]  # something for each collection to walk

    def __str__(self) -> str:
        started = time.thread_time()
        while time.thread_time() - started < self.seconds:
            gc.collect()
        return "collected"


def test_garbage_collection_in_the_render_thread_is_not_counted_against_the_template() -> None:
    """A one-line message was refused ("took longer than 200 ms") when the process happened to
    run a full collection during its render; the template did no work of its own."""
    value = _CollectsGarbage(0.3)
    rendered = render("Ranked #{{ args.rank }}", **{**VARS, "args": {"rank": value}})
    assert rendered == "Ranked #collected"
    assert _refused(NESTED_LOOPS, args={"rank": value})[0] == f"the message template {SLOW}"


def test_output_is_streamed_and_stops_at_the_budget() -> None:
    sentence, took = _refused(NESTED_LOOPS_WRITING)
    assert sentence == f"the message template exceeded {MAX_OUTPUT:,} characters"
    assert took < 2
    assert len(render("{{ 'x' * 4000 }}", **VARS)) == 4000
    assert _refused("{{ 'x' * 4000 }}y")[0].endswith(f"exceeded {MAX_OUTPUT:,} characters")


@pytest.mark.parametrize(
    "source", ["{{ 9**(9**7) }}", "{{ 9**(9**9) }}", "{{ (2**4000) * (2**4000) }}"]
)
def test_big_integer_operators_are_refused_before_they_run(source: str) -> None:
    sentence, took = _refused(source)
    assert "was refused" in sentence and "bits (at most 4,096)" in sentence
    assert took < 1
    assert render("{{ 2 ** 100 }} {{ 9 ** -2 }} {{ 2.5 ** 3 }}", **VARS) == (
        "1267650600228229401496703205376 0.012345679012345678 15.625"
    )


def test_string_repetition_is_refused_before_it_builds_anything() -> None:
    tracemalloc.start()
    try:
        sentence, _ = _refused("{{ 'a' * 100000000 }}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sentence == (
        "the message template exceeded 16,000 characters (str * 100000000 would build 100,000,000)"
    )
    assert peak < 5_000_000  # it was 100-400 MB per award


@pytest.mark.parametrize(
    "source",
    [
        "{{ [[[1] * 4000] * 4000] * 4000 }}",  # nested lists print 6.4e10 items
        "{{ 'a'|center(1000000000) }}",
        "{{ 'a'.center(1000000000) }}",
        "{{ 'a'.zfill(1000000000) }}",
        "{{ ('a' * 4000)|replace('a', 'a' * 4000) }}",
        "{{ ('a' * 4000).replace('a', 'a' * 4000) }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '%0999999999d'|format(1) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ (1).to_bytes(1000000000, 'big') }}",
        "{{ ('a' * 4000)|join('b' * 4000) }}",
        "{{ ('x\n' * 4000)|indent(4000) }}",
        "{{ [1]|batch(1000000000, 0)|list }}",
        # each {% set %} quadruples: 3 * 4**8 characters, built one statement at a time
        "{% set a = 'xxx' %}{% set b = a~a~a~a %}{% set c = b~b~b~b %}{% set d = c~c~c~c %}"
        "{% set e = d~d~d~d %}{% set f = e~e~e~e %}{% set g = f~f~f~f %}{% set h = g~g~g~g %}"
        "{{ h|length }}",
        # text written into a {% set %} block never reaches the output budget
        f"{{% set t %}}{{% for a in {X} %}}{{% for b in {X} %}}{{{{ {X} }}}}{{% endfor %}}"
        "{% endfor %}{% endset %}{{ t|length }}",
    ],
)
def test_amplifying_values_are_refused(source: str) -> None:
    sentence, took = _refused(source)
    assert "exceeded" in sentence
    assert took < 1


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 5|round(-1000000000) }}", "round keeps at most 100 digits"),
        ("{{ [[1]]|sum(start=[]) }}", "sum only adds numbers"),
        ("{{ '%*d' % (5, 1) }}", "'*' widths"),
        ("{{ '{:{w}}'.format(1, w=9) }}", "widths taken from fields"),
    ],
)
def test_operations_that_would_run_away_are_refused(source: str, reason: str) -> None:
    sentence, took = _refused(source)
    assert reason in sentence
    assert took < 1


def test_repeated_amplifiers_are_bounded_in_all() -> None:
    # Each center() is within the value limit; 7,000 of them would hold 112 MB.
    for source in (
        "{{ (('a' * 7000)|list|map('center', 16000)|list)|length }}",
        "{% for c in 'a' * 7000 %}{% set x = c.center(16000) %}{% endfor %}",
    ):
        sentence, took = _refused(source)
        assert sentence.endswith(
            "exceeded 1,000,000 characters (what its repetitions, widths and joins build in all)"
        )
        assert took < 1


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "(" * 200 + "1" + ")" * 200 + " }}",  # Jinja's parser recursion
        "{{ 1" + "+1" * 250 + " }}",  # Python's compiler: seconds, then "too many nested"
        "{{ user" + ".a" * 250 + " }}",
        "{% if 1 %}" * 40 + "{% endif %}" * 40,
        "{% for a in [1] %}" * 30 + "{% endfor %}" * 30,
        "{% for c in 'a' recursive %}{{ loop(c) }}{% endfor %}",  # at run time
    ],
)
def test_deep_nesting_is_refused_not_a_crash(source: str) -> None:
    sentence, took = _refused(source)
    assert sentence.startswith("the message template nests too deeply")
    assert took < 1


def test_range_is_bounded() -> None:
    # `range` is not a template variable (check_template refuses the name), but the sandbox's
    # own global is bounded all the same.
    environment = MessageEnvironment()
    assert environment.from_string("{{ range(3)|list }}").render() == "[0, 1, 2]"
    with pytest.raises(Overrun, match="a range of 1,000,000 items"):
        environment.from_string("{{ range(1000000)|list }}").render()


@pytest.mark.parametrize(
    "source",
    [
        ATTR_ESCAPE,
        "{{ user|attr('__class__') }}",
        "{{ [user]|map(attribute='__class__')|list }}",
        "{{ [user]|selectattr('__class__')|list }}",
        "{{ [user]|sort(attribute='display_name.__class__')|list }}",
    ],
)
def test_attribute_escapes_are_refused_when_checked(source: str) -> None:
    with pytest.raises(TemplateRefused, match="Python internals"):
        check_template(source)


def test_an_attribute_escape_built_at_run_time_is_refused_when_rendered() -> None:
    sentence, _ = _refused("{{ user|attr('_' ~ '_class__') }}")
    assert sentence == (
        "the message template was refused: access to '__class__' is not allowed in a message "
        "template"
    )


@pytest.mark.parametrize(
    ("source", "statement"),
    [("{% include 'x' %}", "{% include %}"), ("{% macro m() %}{% endmacro %}", "{% macro %}")],
)
def test_statements_reaching_outside_the_message_are_refused(source: str, statement: str) -> None:
    with pytest.raises(TemplateRefused, match=f"uses {statement}; a message template is self"):
        check_template(source)


def test_ordinary_templates_still_render() -> None:
    source = (
        "{{ user.display_name|upper|center(9) }}|{% for x in [3, 1, 2]|sort %}{{ loop.index }}:"
        "{{ x }}/{{ loop.length }}{% if not loop.last %},{% endif %}{% endfor %}|"
        "{{ '%s-%03d' % (reward.name, args.rank) }}|{{ '{:>4}'.format(reward.points) }}|"
        "{% for a, b in [(1, 2)] %}{{ a + b }}{% endfor %}|{% filter lower %}A{% endfilter %}|"
        "{% set t | title %}hi {{ env.month_name }}{% endset %}{{ t }}|{{ ['a', 'b']|join(', ') }}"
    )
    assert render(source, **VARS) == (
        "   ANA   |1:1/3,2:2/3,3:3/3|Top Seller-001|  50|3|a|Hi November|a, b"
    )


async def test_render_async_runs_off_the_event_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateRefused, match=SLOW):
            await render_async(NESTED_LOOPS, **VARS)
    finally:
        task.cancel()
    # Stopped in its thread at the deadline: the caller's own guard would wait 1.2 s.
    assert time.perf_counter() - started < 1
    assert ticks >= 2  # the loop went on while the template rendered (on the loop: 0)


# ---- validation against a sample context ------------------------------------------------------


def test_validate_renders_against_a_sample_context() -> None:
    reward = {"id": 1, "name": "Top Seller", "points": 50}
    validate_message(
        "{{ user.first_name }} #{{ args.rank }} {{ args.sales_count + 1 }} "
        "{{ args.region[:2]|upper }} {{ env.giver }} {{ env.month_name }}",
        reward=reward,
    )
    for source, reason in (
        ("{{ 9**(9**9) }}", "was refused"),
        (NESTED_LOOPS, SLOW),
        ("{{ user.nope }}", "missing value"),
    ):
        with pytest.raises(TemplateRefused, match=reason):
            validate_message(source, reward=reward)


def _reward(reward_id: int, message: str) -> dict[str, Any]:
    return {
        "reward_id": reward_id,
        "reward": f"Reward {reward_id}",
        "reward_category": "Recognition",
        "message": message,
    }


BAD_MESSAGES = {
    801: "{{ 9**(9**9) }}",
    802: ATTR_ESCAPE,
    803: NESTED_LOOPS,
    804: "{{ 'a' * 100000000 }}",
    805: NESTED_LOOPS_WRITING,
}


def test_catalogue_refuses_each_bad_message_naming_the_reward() -> None:
    rewards = [_reward(800, "Well done {{ user.display_name }}!")]
    rewards += [_reward(reward_id, message) for reward_id, message in BAD_MESSAGES.items()]
    with pytest.raises(CatalogError) as refused:
        parse_catalog(rewards)
    problems = {p.reward_id: (p.field, p.message) for p in refused.value.problems}
    assert sorted(problems) == sorted(BAD_MESSAGES)
    assert all(field == "message" for field, _ in problems.values())
    assert "was refused: 9 ** 387420489" in problems[801][1]
    assert "reaches for '__class__'" in problems[802][1]
    assert problems[803][1] == f"the message template {SLOW}"
    assert "exceeded 16,000 characters" in problems[804][1]
    assert problems[805][1] == "the message template exceeded 4,000 characters"


def test_cli_validate_names_each_reward_whose_message_fails(tmp_path: Path) -> None:
    path = tmp_path / "rewards.json"
    rewards = [_reward(900, "Hi {{ user.first_name }}")]
    rewards += [_reward(901, "{{ 9**(9**9) }}"), _reward(902, ATTR_ESCAPE)]
    path.write_text(json.dumps(rewards), encoding="utf-8")  # '\\x5f' in the file
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "REWARDS_ENV_FILE": str(tmp_path / "no.env"),
        "REWARDS_FUNCTION_MODULES": "",
    }
    result = CliRunner(env=env).invoke(catalog, ["validate", str(path)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [line.split("  ")[:2] for line in lines] == [["901", "message"], ["902", "message"]]
    assert "9 ** 387420489 would be a number" in lines[0]
    assert "reaches for '__class__'" in lines[1]


# ---- awards -----------------------------------------------------------------------------------


async def _count(database: Database, model: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _nothing_written(database: Database) -> None:
    for model in (Award, LedgerEntry, OutboxEvent):
        assert await _count(database, model) == 0, model


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (NESTED_LOOPS, SLOW),
        ("{{ 9**(9**7) }}", "was refused: 9 ** 4782969 would be a number of about"),
        ("{{ 'a' * 100000000 }}", "exceeded 16,000 characters"),
        (NESTED_LOOPS_WRITING, "exceeded 4,000 characters"),
        (ATTR_ESCAPE, "Python internals"),
    ],
)
async def test_an_award_whose_template_overruns_is_refused_and_writes_nothing(
    database: Database, clock: FixedClock, message: str, reason: str
) -> None:
    # Stored as an older catalogue left it, without the load-time render.
    await add_reward(database, reward_id=70, reward="Loopy", message=message, points=5)
    ana = await add_member(database, "Ana")
    core = Core(settings=Settings(), db=database, clock=clock)
    started = time.perf_counter()
    with pytest.raises(TemplateRefused) as refused:
        await core.awards.award(70, ana, source=AwardSource.RULE)
    assert time.perf_counter() - started < 2
    sentence = str(refused.value)
    assert sentence.startswith("The message template of reward 70 (Loopy) ")
    assert reason in sentence and sentence.endswith(".")
    await _nothing_written(database)


async def test_a_batch_whose_template_overruns_is_refused_and_writes_nothing(
    database: Database, clock: FixedClock
) -> None:
    await add_reward(
        database, reward_id=71, reward="Loopy", reward_type="Achievement Badge",
        message="{% for a in args.s %}{% for b in args.s %}{% endfor %}{% endfor %}",
    )  # fmt: skip
    ana = await add_member(database, "Ana")
    bo = await add_member(database, "Bo")
    core = Core(settings=Settings(), db=database, clock=clock)
    wanted = [Wanted(ana, args={"s": "ab"}), Wanted(bo, args={"s": "x" * 16000})]
    with pytest.raises(TemplateRefused, match=f"reward 71 \\(Loopy\\) {SLOW}"):
        await award_batch(core.awards, 71, wanted)
    await _nothing_written(database)


async def test_healthz_answers_while_an_award_template_renders(
    database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_reward(database, reward_id=72, reward="Loopy", multiple=True, message=NESTED_LOOPS)
    ana = await add_member(database, "Ana")
    await add_member(database, "Bob")
    rendering = threading.Event()
    answered_health = threading.Event()
    real_render = awards_module.render

    def watched(*args: Any, **kwargs: Any) -> str:
        rendering.set()
        try:
            return real_render(*args, **kwargs)  # 200 ms of pure-Python loops, then refused
        finally:
            # Hold the award open until /healthz has answered, so that the order checked below
            # does not depend on how busy the machine is.
            answered_health.wait(10)

    monkeypatch.setattr(awards_module, "render", watched)
    monkeypatch.setattr(templates_module, "GRACE", 15.0)
    async with api_client(database, clock) as api:
        body = {"reward_id": 72, "giver": "bob@example.com", "receiver": ana}
        award = asyncio.create_task(
            api.client.post("/api/v1/badge_assign", json=body, headers=api.auth("write"))
        )
        assert await asyncio.to_thread(rendering.wait, 10)
        started = time.perf_counter()
        health = await api.client.get("/healthz")
        answered = time.perf_counter() - started
        assert not award.done()  # /healthz answered while the award was rendering its message
        answered_health.set()
        assert health.status == 200
        assert answered < 1  # generous: a behaviour, not a benchmark (it is a few ms)

        refused = await award
        assert refused.status == 422
        problem = await refused.json()
        assert problem["detail"] == f"The message template of reward 72 (Loopy) {SLOW}."
    await _nothing_written(database)


async def test_the_api_refuses_a_reward_whose_message_overruns(
    database: Database, clock: FixedClock
) -> None:
    async with api_client(database, clock, admins=("admin",)) as api:
        response = await api.client.post(
            "/rewards/api/v1/rewards",
            json=_reward(73, "{{ 9**(9**9) }}"),
            headers=api.auth("admin"),
        )
        assert response.status == 422, await response.text()
        problem = await response.json()
        assert [e["field"] for e in problem["errors"]] == ["message"]
        assert "9 ** 387420489" in problem["errors"][0]["problem"]
    assert await _count(database, Reward) == 0
