"""The catalogue: every seed example, every kind of problem, the rules, jobs and the registry.

Pure tests (no database). The seed README's examples are kept verbatim, one file each, under
tests/data/catalog/seed_examples; examples/rewards.json is the same set made into one loadable
catalogue, and the tests check it keeps every seed field as written.
"""

from __future__ import annotations

import json
import re
import sqlite3
import textwrap
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from rewards.callbacks import Notification, send_completion_email
from rewards.callbacks.training import send_certificate
from rewards.catalog.availability import AvailabilityRule
from rewards.catalog.jobs import CronSpec, JobSpec, check_cron_field, parse_job
from rewards.catalog.loader import (
    RewardDefinition,
    definition_from_json,
    load_file,
    parse_catalog,
    read_json,
)
from rewards.catalog.model import RewardKind
from rewards.catalog.nomination import NominationConfig
from rewards.catalog.rules import (
    RULES,
    AchievementRule,
    AttendanceRule,
    Birthday,
    RandomUsers,
    parse_rules,
)
from rewards.errors import CatalogError
from rewards.functions import registry as registry_module
from rewards.functions.custom import check_sales_target
from rewards.functions.engagement import get_login_streak
from rewards.functions.registry import (
    FunctionKind,
    FunctionRegistry,
    UnknownFunction,
    build_registry,
    default_registry,
)
from rewards.functions.sales import check_first_sale, get_sales_count
from rewards.functions.training import check_product_knowledge, check_sales_training
from rewards.settings import SettingsError

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "catalog"
SEED = DATA / "seed_examples"
INVALID = DATA / "invalid"
EXAMPLES = ROOT / "examples" / "rewards.json"


def problems_of(call: Any, *args: Any, **kwargs: Any) -> list[tuple[object, str, str]]:
    with pytest.raises(CatalogError) as raised:
        call(*args, **kwargs)
    return [(p.reward_id, p.field, p.message) for p in raised.value.problems]


def catalog(*rewards: dict[str, Any]) -> list[RewardDefinition]:
    return parse_catalog(list(rewards))


def base(reward_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {"reward_id": reward_id, "reward": "R", "reward_category": "C", **fields}


# --------------------------------------------------------------------------------------------
# The seed README's examples.

# file -> (what it is, the id it has in examples/rewards.json, where it sits in that reward)
SEED_EXAMPLES: dict[str, tuple[str, int | None, str]] = {
    "01_quick_start_welcome_badge.json": ("reward", 1001, ""),
    "02_reward_structure_template.json": ("template", None, ""),
    "03_user_badge_employee_of_the_month.json": ("reward", 1005, ""),
    "04_automated_badge_welcome_to_navigator.json": ("reward", 1007, ""),
    # The complete example 3 (below) is the same reward with two more fields; examples keeps it.
    "05_achievement_badge_consistency_king.json": ("reward", 3000, ""),
    "06_computed_badge_daily_lottery_winner.json": ("reward", 1010, ""),
    "07_workflow_badge_onboarding_champion.json": ("reward", 7000, ""),
    "08_nomination_badge_employee_of_the_month.json": ("reward", 8000, ""),
    "09_rule_format.jsonfrag": ("rule_format", None, ""),
    "10_rules_achievement_rule.json": ("rules", 9012, ""),
    "11_rules_attendance_rule.json": ("rules", 9013, ""),
    "12_reward_perfect_attendance_monthly.json": ("partial", 9004, ""),
    "13_reward_excellent_attendance.json": ("partial", 9005, ""),
    "14_reward_rolling_30_day_streak.json": ("partial", 9006, ""),
    "15_rules_random_users.json": ("rules", 9014, ""),
    "16_reward_happy_birthday.json": ("partial", 9001, ""),
    "17_reward_1_year_anniversary.json": ("partial", 9002, ""),
    "18_reward_5_year_milestone.json": ("partial", 9003, ""),
    # Shares reward_id 1010 with "Daily Lottery Winner", so it becomes 9011 in the catalogue.
    "19_scheduling_cron_daily_lottery.json": ("partial", 9011, ""),
    "20_scheduling_interval.json": ("job", 9012, ""),
    "21_scheduling_date.json": ("job", 9014, ""),
    "22_cron_every_monday_9am.json": ("cron", 9013, "job"),
    "23_cron_last_day_of_month_4pm.json": ("cron", 9010, "job"),
    "24_cron_every_weekday_noon.json": ("cron", 9015, "job"),
    "25_availability_holiday_special.json": ("partial", 9007, ""),
    "26_availability_early_bird_special.json": ("partial", 9008, ""),
    "27_complete_1_perfect_attendance_monthly.json": ("reward", 5001, ""),
    "28_complete_2_monthly_mega_lottery.json": ("reward", 1013, ""),
    "29_complete_3_consistency_king.json": ("reward", 3000, ""),
    "30_complete_4_sales_mastery.json": ("reward", 7002, ""),
    "31_complete_5_employee_of_the_month_sales.json": ("reward", 8001, ""),
    "32_custom_function_check_sales_target.json": ("rules", 9015, ""),
    "33_multiple_rules_elite_performer.json": ("partial", 9009, ""),
    "34_message_template_top_seller.json": ("partial", 9010, ""),
}


def test_every_seed_example_file_is_classified() -> None:
    assert sorted(p.name for p in SEED.iterdir()) == sorted(SEED_EXAMPLES)


def _seed(name: str) -> Any:
    return json.loads((SEED / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(SEED_EXAMPLES))
def test_seed_example_validates_as_what_it_is(name: str) -> None:
    kind, _, _ = SEED_EXAMPLES[name]
    if kind == "rule_format":
        # The README's schematic `"rules": [["RuleName", {...}]]`: valid JSON once wrapped in an
        # object, and "RuleName" is a placeholder, refused like any unknown rule.
        data = json.loads("{" + (SEED / name).read_text(encoding="utf-8") + "}")
        found = problems_of(parse_rules, data["rules"])
        assert found == [("-", "rules[0][0]", found[0][2])]
        assert found[0][2].startswith('unknown rule "RuleName"')
        return
    data = _seed(name)
    if kind == "reward":
        rewards = data if isinstance(data, list) else [data]
        (definition,) = parse_catalog(rewards)
        assert definition.reward_id == rewards[0]["reward_id"]
    elif kind == "template":
        assert problems_of(parse_catalog, [data]) == [
            (
                1000,
                "reward_type",
                'unknown reward type "Badge Type" (the README\'s field template uses this '
                "placeholder; it is not a reward); valid: User Badge, Automated Badge, "
                "Achievement Badge, Computed Badge, Workflow Badge, Nomination Badge",
            )
        ]
    elif kind == "partial":
        # A reward fragment: everything it gives is valid; only what it leaves out is missing.
        missing = {"reward_id", "reward_category"} - set(data)
        found = problems_of(parse_catalog, [data])
        assert sorted(field for _, field, _ in found) == sorted(missing)
        assert all(message == "required" for _, _, message in found)
        if "rules" in data:
            assert parse_rules(data["rules"])
        if "availability_rule" in data:
            AvailabilityRule.model_validate(data["availability_rule"])
        if "job" in data:
            assert parse_job(data["job"]) is not None
    elif kind == "rules":
        assert set(data) == {"rules"}
        assert parse_rules(data["rules"])
    elif kind == "job":
        assert set(data) == {"job"}
        assert isinstance(parse_job(data["job"]), JobSpec)
    elif kind == "cron":
        assert set(data) == {"cron"}
        CronSpec.model_validate(data["cron"])
        for field, value in data["cron"].items():
            check_cron_field(field, value)
    else:  # pragma: no cover - the table above has no other kinds
        raise AssertionError(kind)


def _assert_contains(whole: Any, part: Any, where: str) -> None:
    if isinstance(part, dict):
        assert isinstance(whole, dict), where
        for key, value in part.items():
            assert key in whole, f"{where}.{key} missing"
            _assert_contains(whole[key], value, f"{where}.{key}")
    else:
        assert whole == part, where


@pytest.mark.parametrize(
    "name", sorted(n for n, (_, ident, _) in SEED_EXAMPLES.items() if ident is not None)
)
def test_examples_catalogue_keeps_every_seed_field_as_written(name: str) -> None:
    kind, ident, inside = SEED_EXAMPLES[name]
    examples = {r["reward_id"]: r for r in json.loads(EXAMPLES.read_text(encoding="utf-8"))}
    data = _seed(name)
    if isinstance(data, list):
        (data,) = data
    target = examples[ident]
    if inside:
        target = target[inside]
    if kind == "partial" and "reward_id" in data:
        data = {k: v for k, v in data.items() if k != "reward_id"}  # the duplicate 1010
    _assert_contains(target, data, f"{ident}")


def test_examples_catalogue_loads_with_every_reward_type_rule_and_trigger() -> None:
    definitions = load_file(EXAMPLES)
    ids = [d.reward_id for d in definitions]
    assert len(ids) == len(set(ids)) == 26
    mapped = {ident for _, ident, _ in SEED_EXAMPLES.values() if ident is not None}
    assert set(ids) == mapped, "every reward in the examples comes from a seed example"
    assert {d.reward_type for d in definitions} == set(RewardKind)
    assert {rule.rule_name for d in definitions for rule in d.rules} == set(RULES)
    assert {d.job.trigger for d in definitions if d.job} == {"cron", "interval", "date"}
    assert any(d.availability_rule for d in definitions)


def test_examples_round_trip_through_their_normalised_json() -> None:
    for definition in load_file(EXAMPLES):
        data = definition.to_json()
        assert list(data)[:2] == ["reward_id", "reward"]
        again = definition_from_json(json.loads(json.dumps(data)))
        assert again == definition
        assert again.fingerprint() == definition.fingerprint()


def test_type_defaults_are_filled_in() -> None:
    by_id = {d.reward_id: d for d in load_file(EXAMPLES)}
    assert [e.name for e in by_id[1007].events] == ["login"]  # Automated Badge
    assert by_id[8000].nomination_config == NominationConfig(max_nominations_per_user=2)
    assert by_id[1013].job is not None and by_id[1013].job.id == "monthly_mega_lottery"
    assert by_id[9013].job is not None and by_id[9013].job.id == "reward_9013"
    assert by_id[7002].auto_enroll is True
    assert by_id[7002].workflow[1].condition is not None
    assert by_id[7002].workflow[1].condition.operator == "eq"


# --------------------------------------------------------------------------------------------
# Problems: each kind is rejected with one line naming the reward and the field.

INVALID_CASES: dict[str, list[tuple[object, str, str]]] = {
    "unknown_reward_type.json": [
        (2001, "reward_type", 'unknown reward type "Team Badge"; valid: User Badge'),
    ],
    "unknown_rule.json": [
        (2002, "rules[1][0]", 'unknown rule "Birthdays" (did you mean "Birthday"?)')
    ],
    "bad_operator.json": [(2003, "rules[0][1].operator", "Input should be 'gte', 'gt'")],
    "bad_cron_field.json": [(2004, "job.cron.hour", "24 is outside 0-23")],
    "unregistered_function.json": [
        (2005, "rules[0][1].function_path", '"os.system" is not a registered achievement function')
    ],
    "several_problems.json": [
        (2102, "points", 'Input should be a valid integer, got "100"'),
        (2102, "rules[0][1].count", "Input should be greater than or equal to 1, got 0"),
        (2102, "job", "a Computed Badge needs a job"),
        ("#3", "reward_id", "required"),
        ("#3", "multiple", 'Input should be a valid boolean, got "yes"'),
        (2101, "reward_id", "duplicate reward_id 2101 (also reward #1)"),
    ],
    "invalid_json.json": [("-", "line 5, column 9", "invalid JSON: Expecting ',' delimiter")],
    "stringified_permission.json": [
        (2301, "assigner[0]", "a bare entry names one member by email or id"),
        (2301, "awardee[0]", "an empty entry matches nobody"),
    ],
    "dd_mm_availability.json": [(2401, "availability_rule.end_date", "must be MM-DD")],
    "deviation_with_perfect.json": [
        (2501, "rules[0][1].deviation", 'only applies to match "partial"')
    ],
    "type_requirements.json": [
        (2601, "job", "a Computed Badge needs a job"),
        (2602, "job", "a User Badge is given by people and cannot be scheduled (reward_type is"),
        (2603, "workflow", "a Workflow Badge needs at least one step"),
        (2604, "rules", "an Achievement Badge needs at least one rule"),
    ],
    "mixed_job_sections.json": [
        (2701, "job.cron", 'belongs to trigger "cron", but this job\'s trigger is "interval"'),
        (2701, "job.timezone", "must be an IANA time zone"),
    ],
    "duplicates.json": [
        (2801, "points", "given twice in one object"),
        (2802, "job.id", 'duplicate job id "lottery" (also reward 2801)'),
    ],
    "unknown_fields_and_callbacks.json": [
        (2901, "point", 'unknown field (did you mean "points"?)'),
        (2901, "workflow[1].step", 'duplicate step "start" (also workflow[0])'),
        (2901, "step_callbacks.Finish", "is not a step of this workflow"),
        (
            2901,
            "completion_callbacks[0]",
            '"rewards.callbacks.send_sms" is not a registered callback',
        ),
        (2901, "completion_callbacks[1]", "is an achievement function, not a callback"),
    ],
}


def test_every_invalid_file_has_a_case() -> None:
    assert sorted(p.name for p in INVALID.iterdir()) == sorted(INVALID_CASES)


@pytest.mark.parametrize("name", sorted(INVALID_CASES))
def test_invalid_catalogue_reports_every_problem_located(name: str) -> None:
    with pytest.raises(CatalogError) as raised:
        load_file(INVALID / name)
    found = raised.value.problems
    expected = INVALID_CASES[name]
    assert len(found) == len(expected), [str(p) for p in found]
    for problem, (reward_id, field, start) in zip(found, expected, strict=True):
        assert (problem.reward_id, problem.field) == (reward_id, field)
        assert start in problem.message, problem.message
        # One line per problem, naming the reward and the field.
        assert str(problem) == f"reward {reward_id}: {field}: {problem.message}"
        assert "\n" not in str(problem)
    assert str(raised.value).count("\n") == len(expected) - 1


def test_the_badge_type_template_is_not_a_reward() -> None:
    template = _seed("02_reward_structure_template.json")
    (problem,) = problems_of(parse_catalog, [template])
    assert problem[:2] == (1000, "reward_type")
    assert "Badge Type" in problem[2] and "Computed Badge" in problem[2]


@pytest.mark.parametrize(
    ("data", "field", "start"),
    [
        ("not a catalogue", "(catalogue)", "must be a list of rewards"),
        ({"reward": []}, "(catalogue)", "must be a list of rewards"),
        ({"rewards": {}}, "rewards", "must be a list of rewards"),
        ({"rewards": [], "extra": 1}, "extra", "unknown top-level field"),
        ([7], "(reward)", "must be an object"),
    ],
)
def test_catalogue_shape_problems(data: object, field: str, start: str) -> None:
    ((_, got_field, message),) = problems_of(parse_catalog, data)
    assert got_field == field and message.startswith(start)


def test_rewards_wrapper_object_and_empty_rules_compatibility() -> None:
    (user,) = parse_catalog({"rewards": [base(rules={})]})
    assert user.rules == ()
    (legacy,) = parse_catalog([base(rules=None)])
    assert legacy.rules == ()


def test_strict_types_refuse_coercions() -> None:
    found = problems_of(
        catalog,
        base(
            points=True,
            enabled="true",
            cooldown_minutes=1.5,
            reward_type="Achievement Badge",
            rules=[["WorkAnniversary", {"years": "5"}]],
        ),
    )
    assert [f for _, f, _ in found] == [
        "points",
        "cooldown_minutes",
        "enabled",
        "rules[0][1].years",
    ]


def test_unreadable_and_non_json_files(tmp_path: Path) -> None:
    ((_, field, message),) = problems_of(load_file, tmp_path / "absent.json")
    assert field == "(file)" and message.startswith("cannot read")
    nan = tmp_path / "nan.json"
    nan.write_text('[{"reward_id": 1, "points": NaN}]')
    ((_, _, message),) = problems_of(load_file, nan)
    assert "NaN" in message
    assert read_json('{"a": 1}') == {"a": 1}


# --------------------------------------------------------------------------------------------
# Rules.


@pytest.mark.parametrize(
    "entry",
    ["Birthday", ["Birthday"], ["Birthday", {}], ["Birthday", None]],
)
def test_rule_entry_forms(entry: object) -> None:
    assert parse_rules([entry]) == (Birthday(),)


@pytest.mark.parametrize(
    ("entry", "field", "start"),
    [
        ([], "rules[0]", "a rule is"),
        (["Birthday", {}, {}], "rules[0]", "a rule is"),
        ([7, {}], "rules[0][0]", "the rule name must be a string"),
        ("Nope", "rules[0]", 'unknown rule "Nope"'),
        (["Birthday", []], "rules[0][1]", "the parameters must be an object"),
        (
            ["Birthday", {"column": "birthday"}],
            "rules[0][1].column",
            "unknown parameter for Birthday",
        ),
        (["AchievementRule", {}], "rules[0][1].function_path", "required"),
        (["AchievementRule", {"function_path": "os;rm"}], "rules[0][1].function_path", "must be"),
        (
            ["AchievementRule", {"function_path": "a.b", "function_params": {"conn": 1}}],
            "rules[0][1].function_params",
            '"conn" is passed by the engine',
        ),
        (["AttendanceRule", {"count": 1}], "rules[0][1].unit", "required"),
        (["AttendanceRule", {"count": 0, "unit": "day"}], "rules[0][1].count", "Input should be"),
        (
            ["AttendanceRule", {"count": 5, "unit": "day", "match": "partial"}],
            "rules[0][1].deviation",
            'match "partial" needs deviation',
        ),
        (
            ["AttendanceRule", {"count": 5, "unit": "day", "match": "partial", "deviation": 5}],
            "rules[0][1].deviation",
            "must be less than count",
        ),
        (
            [
                "AttendanceRule",
                {"count": 1, "unit": "week", "period_type": "rolling", "partial_period": True},
            ],
            "rules[0][1].partial_period",
            'only applies to period_type "fixed"',
        ),
        (
            ["AttendanceRule", {"count": 1, "unit": "month", "dataset": "att; DROP TABLE x"}],
            "rules[0][1].dataset",
            "must be a plain SQL identifier",
        ),
        (
            ["RandomUsers", {"recent_winner_days": 3}],
            "rules[0][1].recent_winner_days",
            "has no effect",
        ),
        (
            ["RandomUsers", {"filters": {"dept": ["x"]}}],
            "rules[0][1].filters.dept",
            "unknown field",
        ),
        (
            ["RandomUsers", {"weights": {"department": {"Sales": -1}}}],
            "rules[0][1].weights.department",
            "weight of",
        ),
        (["WorkAnniversary", {"years": 0}], "rules[0][1].years", "Input should be greater"),
        (["BestSeller", {"column": "sales count"}], "rules[0][1].column", "must be a plain SQL"),
    ],
)
def test_rule_problems_are_located(entry: object, field: str, start: str) -> None:
    found = problems_of(parse_rules, [entry], reward_id=42)
    assert (found[0][0], found[0][1]) == (42, field)
    assert found[0][2].startswith(start), found[0][2]


def test_rules_are_typed_and_described() -> None:
    rules = parse_rules(
        [
            [
                "AchievementRule",
                {"achievement_name": "engagement.get_login_streak", "threshold": 30},
            ],
            ["AttendanceRule", {"count": 2, "unit": "week", "partial_period": True}],
            ["RandomUsers", {"count": 2, "weights": {"department": {"Sales": 2}}}],
            ["EmploymentDuration", {"years": 3}],
            ["WorkAnniversary"],
            ["BestSeller", {"count": 3}],
        ]
    )
    achievement, attendance, draw, *_ = rules
    assert isinstance(achievement, AchievementRule)
    assert achievement.function_path == "rewards.functions.engagement.get_login_streak"
    assert isinstance(attendance, AttendanceRule) and attendance.period_type == "fixed"
    assert isinstance(draw, RandomUsers)
    assert [r.describe() for r in rules] == [
        "rewards.functions.engagement.get_login_streak() >= 30",
        "perfect attendance over 2 calendar weeks, judged on the days so far",
        "2 random members from everyone, weighted by department Sales x2",
        "members on their 3-year work anniversary",
        "members completing 1 year in the company today",
        "the top 3 by sales.sales_count",
    ]
    assert parse_rules([rule.to_json() for rule in rules]) == rules


def test_achievement_name_and_function_path_must_agree() -> None:
    (problem,) = problems_of(
        parse_rules, [["AchievementRule", {"achievement_name": "x.y", "function_path": "a.b"}]]
    )
    assert problem[1] == "rules[0][1]" and "give only one" in problem[2]


# --------------------------------------------------------------------------------------------
# Jobs and cron.

VALID_CRON = [
    ("day", "last"),
    ("day", "last fri"),
    ("day", "1st mon"),
    ("day", "1-15/2"),
    ("day", 1),
    ("day_of_week", "mon"),
    ("day_of_week", "mon-fri"),
    ("day_of_week", "MON,wed,5"),
    ("day_of_week", "0-4"),
    ("month", "jan-mar"),
    ("month", "*/3"),
    ("month", "dec"),
    ("hour", 16),
    ("hour", "9-17"),
    ("hour", "*/2"),
    ("hour", "9,16"),
    ("minute", "0"),
    ("minute", "*/15"),
    ("minute", "5/10"),
    ("second", "30"),
    ("week", "1-53/2"),
    ("year", "2026-2030"),
    ("year", "*"),
]
INVALID_CRON = [
    ("hour", 24, "24 is outside 0-23"),
    ("hour", -1, "is not a valid hour expression"),
    ("minute", "*/0", "a step must be at least 1"),
    ("minute", "*/60", "the step 60 is larger"),
    ("minute", "10-5", "the range 10-5 runs backwards"),
    ("day", "0", "0 is outside 1-31"),
    ("day", "lastday", "is not a valid day expression"),
    ("day", "1st funday", '"funday" is not a weekday name'),
    ("day_of_week", "mon-fri/2", "is not a valid day_of_week expression"),
    ("day_of_week", "fri-mon", "runs backwards"),
    ("day_of_week", "7", "7 is outside 0-6"),
    ("day_of_week", "monday", '"monday" is not a weekday name'),
    ("month", "13", "13 is outside 1-12"),
    ("month", "janvier", '"janvier" is not a month name'),
    ("month", "last", '"last" is not a month name'),
    ("week", "54", "54 is outside 1-53"),
    ("year", "1969", "1969 is outside 1970-9999"),
    ("hour", "", "must not be empty"),
    ("hour", "1,,2", "is not a valid hour expression"),
    ("hour", True, "must be a whole number or a cron expression string"),
    ("hour", 9.5, "must be a whole number or a cron expression string"),
]


@pytest.mark.parametrize(("field", "value"), VALID_CRON)
def test_cron_validator_accepts_what_apscheduler_accepts(field: str, value: object) -> None:
    check_cron_field(field, value)
    CronTrigger(**{field: value}, timezone="UTC")  # APScheduler agrees


@pytest.mark.parametrize(("field", "value", "start"), INVALID_CRON)
def test_cron_validator_refuses_bad_expressions(field: str, value: object, start: str) -> None:
    with pytest.raises(ValueError, match=re.escape(start)):
        check_cron_field(field, value)


def test_cron_last_day_of_month_fires_on_the_last_day_in_apscheduler() -> None:
    (definition,) = [d for d in load_file(EXAMPLES) if d.reward_id == 1013]
    assert definition.job is not None and definition.job.cron is not None
    cron = definition.job.cron.model_dump(exclude_none=True)
    assert cron == {"day": "last", "hour": 16, "minute": 0}
    trigger = CronTrigger(**cron, timezone="UTC")
    fire = trigger.get_next_fire_time(None, datetime(2028, 2, 3, tzinfo=UTC))
    assert fire == datetime(2028, 2, 29, 16, 0, tzinfo=UTC)


def test_date_job_skip_past_dates() -> None:
    job = parse_job({"trigger": "date", "run_date": "2025-12-25 10:00:00", "skip_past_dates": True})
    assert job is not None
    before, after = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    assert job.first_run(before) == datetime(2025, 12, 25, 10, tzinfo=UTC)
    assert job.first_run(after) is None
    keep = parse_job(
        {"trigger": "date", "run_date": "2025-12-25T10:00:00", "timezone": "America/New_York"}
    )
    assert keep is not None and not keep.skips_past_dates
    due = keep.first_run(after)
    assert due == datetime(2025, 12, 25, 10, tzinfo=ZoneInfo("America/New_York"))
    # The original's nested form is accepted and normalised.
    nested = parse_job({"trigger": "date", "date": {"run_date": "2026-12-25 10:00:00"}})
    assert nested is not None and nested.to_json() == {
        "trigger": "date",
        "run_date": "2026-12-25 10:00:00",
    }
    cron = parse_job({"trigger": "cron", "cron": {"hour": 1}})
    assert cron is not None
    with pytest.raises(ValueError, match="date jobs only"):
        cron.first_run(after)


@pytest.mark.parametrize(
    ("job", "field", "start"),
    [
        ("daily", "job", "must be an object"),
        ({"cron": {"hour": 9}}, "job.trigger", "required: cron, interval or date"),
        ({"trigger": "weekly"}, "job.trigger", "Input should be 'cron', 'interval' or 'date'"),
        ({"trigger": "cron"}, "job.cron", 'required for trigger "cron"'),
        ({"trigger": "cron", "cron": {}}, "job.cron", "must set at least one of year"),
        (
            {"trigger": "cron", "cron": {"hours": 9}},
            "job.cron.hours",
            'unknown field (did you mean "hour"?)',
        ),
        (
            {"trigger": "cron", "cron": {"hour": 9}, "run_date": "2026-01-01"},
            "job.run_date",
            "belongs to trigger",
        ),
        (
            {"trigger": "cron", "cron": {"hour": 9}, "skip_past_dates": False},
            "job.skip_past_dates",
            "belongs",
        ),
        (
            {
                "trigger": "cron",
                "cron": {"hour": 9, "start_date": "2026-02-01", "end_date": "2026-01-01"},
            },
            "job.cron",
            "end_date is before",
        ),
        ({"trigger": "interval", "interval": {}}, "job.interval", "must set at least one of weeks"),
        (
            {"trigger": "interval", "interval": {"hours": 0}},
            "job.interval",
            "must add up to more than zero",
        ),
        (
            {"trigger": "interval", "interval": {"hours": -2}},
            "job.interval.hours",
            "must not be negative",
        ),
        (
            {"trigger": "interval", "interval": {"hours": "2"}},
            "job.interval.hours",
            "must be a number",
        ),
        (
            {"trigger": "date", "run_date": "25-12-2025"},
            "job.run_date",
            'must be "YYYY-MM-DD HH:MM:SS"',
        ),
        ({"trigger": "date", "run_date": 1735120800}, "job.run_date", "must be a date-time string"),
        ({"trigger": "date", "date": {"when": "x"}}, "job.date", '"when" is not a date setting'),
        ({"trigger": "interval", "interval": {"hours": 1}, "id": "a b"}, "job.id", "must be 1-200"),
        (
            {"trigger": "interval", "interval": {"hours": 1}, "colaesce": True},
            "job.colaesce",
            "unknown field",
        ),
        (
            {"trigger": "interval", "interval": {"hours": 1}, "jitter": -1},
            "job.jitter",
            "Input should be",
        ),
        (
            {"trigger": "interval", "interval": {"hours": 1}, "coalesce": "yes"},
            "job.coalesce",
            "Input should be",
        ),
    ],
)
def test_job_problems_are_located(job: object, field: str, start: str) -> None:
    found = problems_of(parse_job, job, reward_id=7)
    assert found[0][:2] == (7, field), found
    assert found[0][2].startswith(start), found[0][2]


def test_job_id_defaults_to_the_reward() -> None:
    (definition,) = catalog(
        base(
            9,
            reward_type="Computed Badge",
            rules=[["Birthday"]],
            job={"trigger": "cron", "cron": {"hour": 8}},
        )
    )
    assert definition.job is not None and definition.job.id == "reward_9"
    assert definition.job.describe() == "cron hour=8"


# --------------------------------------------------------------------------------------------
# Availability (judged on the member's local clock).


def test_availability_wraps_the_year_end() -> None:
    (definition,) = catalog(base(availability_rule={"start_date": "12-15", "end_date": "01-15"}))
    rule = definition.availability_rule
    assert rule is not None
    assert rule.is_available(datetime(2026, 12, 20, 12))
    assert rule.is_available(datetime(2027, 1, 10, 12))
    assert rule.is_available(datetime(2026, 12, 15, 0))
    assert rule.is_available(datetime(2027, 1, 15, 23, 59))
    assert not rule.is_available(datetime(2027, 2, 1, 12))
    assert not rule.is_available(datetime(2026, 12, 14, 23, 59))


def test_availability_early_bird_weekdays_and_hours() -> None:
    rule = AvailabilityRule.model_validate(
        _seed("26_availability_early_bird_special.json")["availability_rule"]
    )
    assert rule.is_available(datetime(2026, 11, 18, 7, 30))  # a Wednesday
    assert not rule.is_available(datetime(2026, 11, 18, 9, 30))
    # The seed documents dow as 0=Monday ... 6=Sunday, so its [1, 2, 3, 4, 5] is Tuesday to
    # Saturday (not "weekdays"); the documented convention is what we implement.
    assert rule.is_available(datetime(2026, 11, 21, 7, 30))  # a Saturday
    assert not rule.is_available(datetime(2026, 11, 16, 7, 30))  # a Monday


def test_availability_refuses_strings_for_weekdays() -> None:
    (problem,) = problems_of(catalog, base(availability_rule={"dow": ["1"]}))
    assert problem[1] == "availability_rule.dow[0]"


# --------------------------------------------------------------------------------------------
# Reward types.


def test_reward_type_rules() -> None:
    found = problems_of(
        catalog,
        base(1, reward_type="Automated Badge", events=[]),
        base(2, events=["login"]),
        base(
            3,
            reward_type="Achievement Badge",
            rules=[["Birthday"]],
            workflow=[{"step": "x"}],
            auto_enroll=True,
        ),
        base(4, reward_type="Computed Badge", job={"trigger": "cron", "cron": {"hour": 1}}),
        base(5, nomination_config={}),
        base(6, reward_type="Workflow Badge"),
    )
    assert [(rid, field) for rid, field, _ in found] == [
        (1, "events"),
        (2, "events"),
        (3, "workflow"),
        (3, "auto_enroll"),
        (4, "rules"),
        (5, "nomination_config"),
        (6, "workflow"),
    ]


def test_events_forms() -> None:
    (definition,) = catalog(
        base(reward_type="Automated Badge", events=["kudos.sent", {"sales.closed": {"slug": "x"}}])
    )
    assert [e.to_json() for e in definition.events] == [
        "kudos.sent",
        {"sales.closed": {"slug": "x"}},
    ]
    found = problems_of(
        catalog, base(reward_type="Automated Badge", events=[{"a": 1, "b": 2}, "bad name"])
    )
    assert [f for _, f, _ in found] == ["events[0]", "events[1]"]


def test_nomination_config_is_validated() -> None:
    found = problems_of(
        catalog,
        base(
            reward_type="Nomination Badge",
            nomination_config={
                "voting_duration_days": 0,
                "tie_rule": "coin_flip",
                "eligible_voters": {"job_code": ["X"]},
            },
        ),
    )
    assert [f for _, f, _ in found] == [
        "nomination_config.voting_duration_days",
        "nomination_config.eligible_voters.job_code",
        "nomination_config.tie_rule",
    ]
    (default,) = catalog(base(reward_type="Nomination Badge"))
    assert default.nomination_config == NominationConfig()
    assert default.nomination_config.tie_rule == "earliest_nomination"


def test_workflow_conditions_and_step_callbacks() -> None:
    (definition,) = catalog(
        base(
            reward_type="Workflow Badge",
            workflow=[
                {
                    "step": "Learn",
                    "condition": {
                        "function_path": "rewards.functions.training.check_product_knowledge",
                        "threshold": 80,
                    },
                },
                {
                    "step": "Sell",
                    "condition": {"function_path": "rewards.functions.sales.check_first_sale"},
                },
            ],
            step_callbacks={"Learn": ["rewards.callbacks.training.send_certificate"]},
        )
    )
    assert [s.describe() for s in definition.workflow] == [
        "Learn (when rewards.functions.training.check_product_knowledge >= 80)",
        "Sell (when rewards.functions.sales.check_first_sale is true)",
    ]
    found = problems_of(
        catalog,
        base(
            reward_type="Workflow Badge",
            workflow=[
                {"step": ""},
                {
                    "step": "B",
                    "condition": {
                        "function_path": "rewards.functions.sales.check_first_sale",
                        "operator": "gt",
                    },
                },
                {"step": "C", "condition": {"function_path": "nowhere.fn", "threshold": 1}},
                {
                    "step": "D",
                    "condition": {
                        "function_path": "rewards.functions.sales.get_sales_count",
                        "function_params": {"region": "x"},
                    },
                },
                {"step": "E", "when": "later"},
            ],
        ),
    )
    assert [f for _, f, _ in found] == [
        "workflow[0].step",
        "workflow[1].condition.operator",
        "workflow[4].when",
        "workflow[2].condition.function_path",
    ]
    # get_sales_count takes **kwargs, so extra function_params fit; a function without them is
    # checked against its signature:
    registry = build_registry(use_entry_points=False)

    async def strict(user: Any, env: Any, conn: Any, *, target: int) -> int:
        return target

    registry.register("acme.strict", strict, FunctionKind.ACHIEVEMENT)
    found = problems_of(
        parse_catalog,
        [
            base(
                reward_type="Achievement Badge",
                rules=[
                    [
                        "AchievementRule",
                        {
                            "function_path": "acme.strict",
                            "function_params": {"target": 1, "goal": 1},
                        },
                    ]
                ],
            )
        ],
        registry=registry,
    )
    ((_, field, message),) = found
    assert field == "rules[0][1].function_params"
    assert message.startswith("the parameters do not fit acme.strict(")
    assert "unexpected keyword argument 'goal'" in message
    found = problems_of(
        parse_catalog,
        [
            base(
                reward_type="Achievement Badge",
                rules=[["AchievementRule", {"function_path": "acme.strict"}]],
            )
        ],
        registry=registry,
    )
    assert "missing a required argument: 'target'" in found[0][2]


# --------------------------------------------------------------------------------------------
# The function registry.


def test_registry_holds_the_seed_names() -> None:
    registry = build_registry(use_entry_points=False)
    assert registry.names(FunctionKind.ACHIEVEMENT) == [
        "rewards.functions.custom.check_sales_target",
        "rewards.functions.engagement.get_login_streak",
        "rewards.functions.sales.check_first_sale",
        "rewards.functions.sales.get_sales_count",
        "rewards.functions.training.check_product_knowledge",
        "rewards.functions.training.check_sales_training",
    ]
    assert registry.names(FunctionKind.CALLBACK) == [
        "rewards.callbacks.send_completion_email",
        "rewards.callbacks.training.send_certificate",
    ]
    assert registry.get("rewards.functions.engagement.get_login_streak").func is get_login_streak
    assert registry.get("rewards.functions.engagement.get_login_streak").summary.startswith(
        "Consecutive"
    )


def test_registry_refuses_unknown_names_and_never_imports_them() -> None:
    registry = build_registry(use_entry_points=False)
    assert "os.system" not in registry
    with pytest.raises(
        UnknownFunction, match=re.escape('"os.system" is not a registered achievement function')
    ):
        registry.get("os.system")
    with pytest.raises(UnknownFunction, match="is a callback, not an achievement function"):
        registry.get("rewards.callbacks.send_completion_email", FunctionKind.ACHIEVEMENT)
    # A dotted path to a real, importable async function is still refused: only the registry counts.
    found = problems_of(
        parse_catalog,
        [
            base(
                reward_type="Achievement Badge",
                rules=[["AchievementRule", {"function_path": "asyncio.sleep"}]],
            )
        ],
        registry=registry,
    )
    assert found[0][2] == '"asyncio.sleep" is not a registered achievement function'


def _write_module(tmp_path: Path, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")


PLUGIN = """
    from rewards.functions.registry import achievement_function, completion_callback

    @achievement_function("acme.kudos_given")
    async def kudos_given(user, env, conn, **kwargs):
        return await conn.fetchval("SELECT COUNT(*) FROM kudos WHERE giver_id = $1", user.id)

    @completion_callback()
    async def shout(member, reward, env, **kwargs):
        return None
"""


def test_registry_loads_deployment_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_module(tmp_path, "acme_rewards_plugin", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    reward = base(
        reward_type="Workflow Badge",
        workflow=[
            {"step": "Give", "condition": {"function_path": "acme.kudos_given", "threshold": 5}}
        ],
        completion_callbacks=["acme_rewards_plugin.shout"],
    )
    # Without the module configured the names are unknown, even after someone imported it.
    __import__("acme_rewards_plugin")
    found = problems_of(parse_catalog, [reward], registry=build_registry(use_entry_points=False))
    assert [f for _, f, _ in found] == [
        "workflow[0].condition.function_path",
        "completion_callbacks[0]",
    ]
    registry = build_registry(function_modules=["acme_rewards_plugin"], use_entry_points=False)
    assert registry.modules[-1] == "acme_rewards_plugin"
    (definition,) = parse_catalog([reward], registry=registry)
    assert definition.completion_callbacks == ("acme_rewards_plugin.shout",)
    # The setting, read the way the settings read it (the process environment over env/.env).
    env_file = tmp_path / ".env"
    env_file.write_text("REWARDS_FUNCTION_MODULES=acme_rewards_plugin\n")
    from_settings = default_registry({"REWARDS_ENV_FILE": str(env_file)})
    assert "acme.kudos_given" in from_settings
    assert "acme.kudos_given" not in default_registry({"REWARDS_ENV_FILE": str(tmp_path / "none")})


def test_registry_refuses_bad_modules_and_shapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SettingsError, match="cannot import 'no_such_rewards_module'"):
        build_registry(function_modules=["no_such_rewards_module"], use_entry_points=False)
    registry = FunctionRegistry()

    def not_async(user: Any, env: Any, conn: Any) -> int:
        return 0

    async def too_few(user: Any) -> int:
        return 0

    with pytest.raises(TypeError, match="must be an async function"):
        registry.register("x.sync", not_async, FunctionKind.ACHIEVEMENT)
    with pytest.raises(TypeError, match=r"must accept \(member, reward, env, \*\*kwargs\)"):
        registry.register("x.few", too_few, FunctionKind.CALLBACK)

    async def one(user: Any, env: Any, conn: Any) -> int:
        return 1

    async def two(user: Any, env: Any, conn: Any) -> int:
        return 2

    registry.register("x.same", one, FunctionKind.ACHIEVEMENT)
    registry.register("x.same", one, FunctionKind.ACHIEVEMENT)  # idempotent
    with pytest.raises(SettingsError, match="registered twice"):
        registry.register("x.same", two, FunctionKind.ACHIEVEMENT)


def test_registry_loads_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_module(tmp_path, "acme_entry_plugin", PLUGIN.replace("acme.kudos_given", "acme.other"))
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [
        EntryPoint("acme.streak", "acme_entry_plugin:kudos_given", "nav_rewards.functions"),
        EntryPoint("acme.shout", "acme_entry_plugin:shout", "nav_rewards.functions"),
    ]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: points)
    registry = FunctionRegistry()
    assert registry.load_entry_points() == ["acme.streak", "acme.shout"]
    assert registry.get("acme.streak").kind is FunctionKind.ACHIEVEMENT
    assert registry.get("acme.shout").kind is FunctionKind.CALLBACK
    broken = [EntryPoint("acme.gone", "acme_entry_plugin:missing", "nav_rewards.functions")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: broken)
    with pytest.raises(SettingsError, match=re.escape("'acme.gone'")):
        FunctionRegistry().load_entry_points()


# --------------------------------------------------------------------------------------------
# The built-in functions run real SQL (here on SQLite through a `fetchval` adapter).


class SqliteConn:
    """The engine's adapter in miniature: `$n` placeholders -> SQLite's `?n`, dates as ISO text."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        self.queries = 0

    async def fetchval(self, sql: str, *args: object) -> object:
        self.queries += 1
        values = [
            a.isoformat(sep=" ")
            if isinstance(a, datetime)
            else a.isoformat()
            if isinstance(a, date)
            else a
            for a in args
        ]
        row = self.db.execute(re.sub(r"\$(\d+)", r"?\1", sql), values).fetchone()
        return None if row is None else row[0]


@dataclass
class Who:
    id: int
    email: str = "ana@example.com"
    display_name: str = "Ana"


@dataclass
class When:
    today: date
    start_date: datetime = datetime(2026, 11, 1)
    end_date: datetime = datetime(2026, 12, 1)


@dataclass
class Prize:
    reward_id: int = 7002
    reward: str = "Sales Mastery"
    points: int = 2000


TODAY = date(2026, 11, 18)


def _activity(conn: SqliteConn, member: int, *offsets: int) -> None:
    conn.db.execute("CREATE TABLE IF NOT EXISTS member_activity (member_id INTEGER, day DATE)")
    conn.db.executemany(
        "INSERT INTO member_activity VALUES (?, ?)",
        [(member, (TODAY - timedelta(days=o)).isoformat()) for o in offsets],
    )


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ((), 0),
        ((0,), 1),
        ((0, 0, 1, 2, 4), 3),  # two rows on one day count once; the gap on day -3 ends it
        ((1, 2, 3), 3),  # nothing yet today: the streak up to yesterday still counts
        ((2, 3), 0),  # nothing yesterday nor today: broken
        (tuple(range(0, 45)), 45),
        (tuple(range(0, 400)), 365),  # capped at max_days
    ],
)
async def test_login_streak_counts_consecutive_distinct_days(
    offsets: tuple[int, ...], expected: int
) -> None:
    conn = SqliteConn()
    _activity(conn, 1, *offsets)
    _activity(conn, 2, *range(0, 10))  # someone else's days never count
    assert await get_login_streak(Who(1), When(TODAY), conn) == expected
    assert conn.queries <= 2 + 2 * 10  # doubling then bisecting, never one query per day


async def test_training_and_sales_functions() -> None:
    conn = SqliteConn()
    conn.db.execute(
        "CREATE TABLE metric_record (dataset TEXT, member_id INTEGER, day TEXT, name TEXT, "
        "value REAL)"
    )
    conn.db.executemany(
        "INSERT INTO metric_record VALUES ('training', ?, ?, ?, ?)",
        [
            (1, "2026-11-02", "product_knowledge", 60),
            (1, "2026-11-03", "product_knowledge", 85),
            (1, "2026-11-03", "sales_techniques", 100),
            (2, "2026-11-03", "product_knowledge", 99),
        ],
    )
    conn.db.executemany(
        "INSERT INTO metric_record VALUES ('sales', 1, ?, 'sales_count', 4)",
        [("2026-10-31",)] + [(f"2026-11-{d:02d}",) for d in range(1, 31)],
    )
    conn.db.execute("INSERT INTO metric_record VALUES ('sales', 3, '2026-11-02', 'revenue', 50)")
    env, ana, bo = When(TODAY), Who(1), Who(3)
    assert await check_product_knowledge(ana, env, conn) == 85
    assert await check_sales_training(ana, env, conn) == 100
    assert await check_product_knowledge(bo, env, conn) == 0
    assert await check_first_sale(ana, env, conn) == 1
    assert await check_first_sale(bo, env, conn) == 0
    assert await get_sales_count(ana, env, conn) == 120  # October's sale is outside the period
    assert await check_sales_target(ana, env, conn, target=100) == 120
    assert await check_sales_target(ana, env, conn, target=121) == 0
    # The seed's rule for it (threshold 100, gte) can now pass:
    assert await check_sales_target(ana, env, conn, **{"target": 100}) >= 100


async def test_callbacks_compose_notifications() -> None:
    env = When(TODAY)
    email = await send_completion_email(
        Who(5), Prize(reward_id=7000, reward="Onboarding Champion"), env
    )
    assert isinstance(email, Notification)
    assert (email.channel, email.to, email.member_id, email.reward_id) == (
        "email",
        "ana@example.com",
        5,
        7000,
    )
    assert "Onboarding Champion" in email.subject and "2026-11-18" in email.body
    certificate = await send_certificate(Who(5), Prize(), env)
    ((name, text),) = certificate.attachments.items()
    assert name == "certificate-7002-5.txt"
    assert "Ana" in text and "Sales Mastery" in text and "2026-11-18" in text


def test_rules_module_registry_is_complete() -> None:
    assert set(RULES) == {
        "AchievementRule",
        "AttendanceRule",
        "RandomUsers",
        "Birthday",
        "EmploymentDuration",
        "WorkAnniversary",
        "BestSeller",
    }


# --------------------------------------------------------------------------------------------
# Where results are announced.


def test_announce_section_round_trips_and_falls_back_to_settings() -> None:
    spec = {"slack": "C0123456", "telegram": False, "email": True}
    (definition,) = catalog(base(announce=spec))
    assert definition.announce is not None
    assert definition.to_json()["announce"] == {**spec, "direct": True}
    assert definition_from_json(definition.to_json()) == definition
    assert definition.announce.place("slack", "C999") == "C0123456"
    assert definition.announce.place("teams", "Rewards") == "Rewards"  # the setting
    assert definition.announce.place("telegram", "-100") is None  # switched off
    (plain,) = catalog(base())
    assert plain.announce is None and "announce" not in plain.to_json()


@pytest.mark.parametrize(
    ("announce", "field", "start"),
    [
        ({"slack": True}, "announce.slack", "name a channel"),
        ({"whatsapp": "x"}, "announce.whatsapp", "unknown field"),
        ({"email": "yes"}, "announce.email", "Input should be"),
        ("C0123456", "announce", "must be an object"),
    ],
)
def test_announce_problems_are_located(announce: object, field: str, start: str) -> None:
    found = problems_of(parse_catalog, [base(7, announce=announce)])
    assert found[0][:2] == (7, field), found
    assert found[0][2].startswith(start), found
