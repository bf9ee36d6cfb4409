"""Turn a reward's rules into awards: `evaluate_reward` for one reward, `sweep` for all of them.

One evaluation:

1. the definition is loaded; a reward with no rules has nothing to evaluate (a Computed Badge
   whose job names it, say) and the report says so;
2. every rule but RandomUsers selects `Candidate`s (Birthday, EmploymentDuration, WorkAnniversary,
   AttendanceRule, AchievementRule, BestSeller). Several rules are AND-ed: the candidates are the
   members every rule selected, their args merged and their keys joined with ``+``. An
   AchievementRule after another rule only calls its function for the members still in;
3. RandomUsers then draws among the members passing the other rules (everyone active when it is
   the only rule), with ``draw_key = "{reward_id}:{run_key}"``, so the same run never draws twice
   and `rewards lottery verify` can replay it. Members who already hold a once-only reward are
   left out of the draw, so the draw never picks someone who cannot receive it;
4. the candidates are awarded in one batch (`rewards.awarding.batch`, source ``rule``): the award
   pipeline's rules (availability, the awardee rules, the award key's once-only / timeframe /
   occurrence limits, points, message templates) judged over a few set-based reads, then about
   1,000 awards, their ledger rows and their outbox events per transaction. A refusal is a *skip*
   with its sentence, not an error. ``badge.awarded`` then fires for every member awarded
   (`EventService.emit_many`), as after any single award;
5. every member newly awarded is announced once, folded in one announcement whose key names the
   reward, the run and the awards themselves: a re-run awards nothing and so announces nothing,
   while a later hour of the same day announces only the members it newly awarded. Each batch of
   awards is written with a pending row naming the run and the awards (``announce_pending``) and
   the announcement is derived from the pending rows (`announce_awards`), deleting them in its
   own transaction: a crash after the awards and before the announcement is announced by the
   next run.

Duplicates (`award_key_for`): the reward's own limits come first. `multiple: false` means once
ever (the pipeline's ``:once`` key); a `timeframe` means once per bucket in the member's zone (the
pipeline's bucket key). A repeatable reward without a timeframe is keyed by the occurrence,
``{candidate key}:m{member}`` (``birthday:2027``, ``attendance:2026-10-01:2026-10-31``,
``achievement:2026-11``, ``draw:...``), so the same occurrence is never awarded twice.
Celebrations (Birthday, EmploymentDuration, WorkAnniversary) are always keyed by the occurrence:
the seed's "Happy Birthday!" omits `multiple`, and a birthday badge that only ever comes once would
surprise everyone, so there `multiple: false` means once per birthday.

The sweep (`sweep`) covers the rewards a scheduler job does not: every *enabled* reward with rules
and no `job`, of kind Achievement Badge or Computed Badge (the loader requires a job for a
Computed Badge, so in practice Achievement Badges: calendar celebrations, attendance,
achievement functions). User Badges are given by people, Automated Badges by events
(`rewards.services.events`), Nomination and Workflow Badges by their own flows, so the sweep never
evaluates them even if they carry rules. Its run key is ``sweep:{organisation's date}``: the
scheduler may call it every ``REWARDS_SWEEP_MINUTES`` and re-runs award nothing twice; running it
hourly is what lets every member be celebrated on their own local date. One reward failing (a
function whose table does not exist) is reported and logged; the others still run.

Awards are stamped by the core's clock; `now` is the moment rules are judged at. The scheduler
passes the same instant to both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from rewards.awarding.batch import Wanted, award_batch
from rewards.catalog.loader import RewardDefinition
from rewards.catalog.model import RewardKind
from rewards.catalog.rules import (
    AchievementRule,
    AttendanceRule,
    BestSeller,
    Birthday,
    EmploymentDuration,
    RandomUsers,
    RuleDefinition,
    WorkAnniversary,
)
from rewards.clock import local_today
from rewards.errors import AlreadyAwarded, NotAllowed, NotAvailable, UnknownMember
from rewards.faults import checkpoint
from rewards.rules.achievement import Period, achievements, reward_period
from rewards.rules.attendance import attendance
from rewards.rules.base import Candidate, EvalContext
from rewards.rules.bestseller import best_sellers
from rewards.rules.calendar import birthdays, employment_anniversaries, work_anniversaries
from rewards.rules.lottery import draw
from rewards.services.announcements import announce_awards
from rewards.services.awards import AwardSource, AwardView
from rewards.services.catalog import get_definition, list_definitions
from rewards.services.events import BADGE_AWARDED
from rewards.store.models import Award

if TYPE_CHECKING:
    from rewards.core import Core

log = logging.getLogger(__name__)

SWEPT_KINDS = frozenset({RewardKind.ACHIEVEMENT, RewardKind.COMPUTED})
"""Reward kinds `sweep` evaluates (when they have rules and no job of their own)."""

SKIPS = (AlreadyAwarded, NotAvailable, NotAllowed, UnknownMember)


@dataclass
class EvaluationReport:
    """What one evaluation did, for the scheduler's log and the admin commands."""

    reward_id: int
    run_key: str
    reward_name: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    awarded: list[AwardView] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    draw_run_id: int | None = None
    announcement_id: int | None = None
    note: str | None = None
    error: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: "evaluation", the batch award's ("award keys", "people", "judging",
    "inserts"), "events", "announcement"."""

    @property
    def awarded_ids(self) -> list[int]:
        """Member ids newly awarded, in award order."""
        return [view.member_id for view in self.awarded]


CELEBRATIONS = (Birthday, EmploymentDuration, WorkAnniversary)


def per_occurrence(definition: RewardDefinition) -> bool:
    """Whether each occurrence is awarded once: repeatable rewards without a timeframe, and
    celebrations (a birthday or anniversary is a yearly occurrence, so `multiple: false` there
    means once per occurrence, not once in a lifetime)."""
    if definition.timeframe is not None:
        return False
    return definition.multiple or any(isinstance(r, CELEBRATIONS) for r in definition.rules)


def award_key_for(definition: RewardDefinition, candidate: Candidate) -> str | None:
    """The idempotency key for awarding `candidate` (see "Duplicates" in the module docstring)."""
    if not per_occurrence(definition):
        return None
    return f"{candidate.key}:m{candidate.member_id}"


def announcement_kind(rules: Iterable[RuleDefinition]) -> str:
    """``lottery`` for draws, ``birthday`` / ``anniversary`` for celebrations, else ``award``."""
    kinds = [type(rule) for rule in rules]
    if RandomUsers in kinds:
        return "lottery"
    if Birthday in kinds:
        return "birthday"
    if WorkAnniversary in kinds or EmploymentDuration in kinds:
        return "anniversary"
    return "award"


def _and(chosen: dict[int, Candidate] | None, found: Iterable[Candidate]) -> dict[int, Candidate]:
    """AND one rule's candidates into those chosen so far (None: no rule yet)."""
    by_member = {c.member_id: c for c in found}
    if chosen is None:
        return by_member
    return {
        member_id: Candidate(
            member_id=member_id,
            key=f"{before.key}+{by_member[member_id].key}",
            args={**before.args, **by_member[member_id].args},
        )
        for member_id, before in chosen.items()
        if member_id in by_member
    }


async def _select(
    core: Core,
    ctx: EvalContext,
    rule: RuleDefinition,
    period: Period,
    within: set[int] | None,
) -> list[Candidate]:
    """The candidates of one non-random rule."""
    if isinstance(rule, Birthday):
        return await birthdays(ctx)
    if isinstance(rule, WorkAnniversary):
        return await work_anniversaries(ctx, rule)
    if isinstance(rule, EmploymentDuration):
        return await employment_anniversaries(ctx, rule)
    if isinstance(rule, AttendanceRule):
        return await attendance(ctx, rule)
    if isinstance(rule, AchievementRule):
        return await achievements(ctx, rule, core.functions, period, within=within)
    if isinstance(rule, BestSeller):
        return await best_sellers(ctx, rule, period)
    raise TypeError(f"no evaluator for rule {rule.rule_name}")  # pragma: no cover


async def _holders(core: Core, reward_id: int) -> list[int]:
    """Members holding a (non-revoked) award of the reward."""
    query = select(col(Award.member_id)).where(
        col(Award.reward_id) == reward_id, col(Award.revoked_at).is_(None)
    )
    async with core.db.read() as session:
        return sorted({int(m) for m in (await session.scalars(query)).all()})


async def _candidates(
    core: Core, definition: RewardDefinition, now: datetime, run_key: str, report: EvaluationReport
) -> list[Candidate]:
    ctx = EvalContext(db=core.db, now=now, settings=core.settings, reward_id=definition.reward_id)
    timeframe = definition.timeframe.value if definition.timeframe is not None else None
    period = reward_period(timeframe, now, core.settings.timezone)
    chosen: dict[int, Candidate] | None = None
    for rule in definition.rules:
        if isinstance(rule, RandomUsers):
            continue
        within = set(chosen) if chosen is not None else None
        chosen = _and(chosen, await _select(core, ctx, rule, period, within))
    draws = [rule for rule in definition.rules if isinstance(rule, RandomUsers)]
    for index, rule in enumerate(draws):
        draw_key = f"{definition.reward_id}:{run_key}" + (f":{index}" if index else "")
        exclude = await _holders(core, definition.reward_id) if not definition.multiple else []
        result = await draw(
            ctx,
            rule,
            draw_key=draw_key,
            within=None if chosen is None else sorted(chosen),
            exclude=exclude,
        )
        report.draw_run_id = result.run.id
        chosen = _and(chosen, result.candidates)
    return sorted((chosen or {}).values(), key=lambda c: c.member_id)


async def _announce(core: Core, definition: RewardDefinition, now: datetime) -> int | None:
    """Announce the reward's awards still waiting for their announcement: this run's, and any a
    crashed run left behind. Returns the (first) new announcement's id."""
    made = await announce_awards(
        core.db,
        core.settings,
        reward_id=definition.reward_id,
        kind=announcement_kind(definition.rules),
        title=definition.reward,
        now=now,
        spec=definition.announce,
    )
    return made[0] if made else None


async def _evaluate(
    core: Core, definition: RewardDefinition, *, now: datetime, run_key: str
) -> EvaluationReport:
    report = EvaluationReport(definition.reward_id, run_key, definition.reward)
    if not definition.rules:
        report.note = f"{definition.reward} has no rules, so there is nothing to evaluate."
        return report
    if not definition.enabled:
        report.note = f"{definition.reward} is switched off."
        return report
    started = time.perf_counter()
    report.candidates = await _candidates(core, definition, now, run_key, report)
    report.stages["evaluation"] = time.perf_counter() - started
    # One batch award (`rewards.awarding.batch`): the pipeline's rules judged over set-based
    # reads, ~1,000 awards per transaction; a key already taken (a once-only reward they hold,
    # this period's or this occurrence's award) is a skip, so an hourly re-run writes nothing.
    result = await award_batch(
        core.awards,
        definition.reward_id,
        [
            Wanted(c.member_id, award_key_for(definition, c), dict(c.args))
            for c in report.candidates
        ],
        source=AwardSource.RULE,
        announce_as=run_key,
    )
    checkpoint("after_awards")  # test-only: see rewards.faults
    report.awarded = result.awarded
    report.skipped = result.skipped
    report.stages.update(result.stages)
    started = time.perf_counter()
    if report.awarded:
        await core.events.emit_many_safely(
            BADGE_AWARDED,
            {v.member_id: {"award_id": v.id, "reward_id": v.reward_id} for v in report.awarded},
        )
    started = _timed(report, "events", started)
    report.announcement_id = await _announce(core, definition, now)
    _timed(report, "announcement", started)
    return report


def _timed(report: EvaluationReport, stage: str, since: float) -> float:
    now = time.perf_counter()
    report.stages[stage] = now - since
    return now


async def evaluate_reward(
    core: Core, reward_id: int, *, now: datetime, run_key: str
) -> EvaluationReport:
    """Evaluate reward `reward_id`'s rules at `now` and award (and announce) every new winner.

    `run_key` names the run: the scheduler passes ``"{job id}:{fire time ISO}"``, a manual run
    something unique. The same `run_key` never draws, awards or announces twice. Raises
    `UnknownReward` when there is no such reward.
    """
    definition = await get_definition(core.db, reward_id)
    return await _evaluate(core, definition, now=now, run_key=run_key)


def sweep_run_key(core: Core, now: datetime) -> str:
    """``sweep:{date in the organisation's zone}``."""
    return f"sweep:{local_today(now, None, core.settings.timezone).isoformat()}"


def swept(definition: RewardDefinition) -> bool:
    """Whether `sweep` evaluates this reward (see the module docstring)."""
    return (
        definition.enabled
        and bool(definition.rules)
        and definition.job is None
        and definition.kind in SWEPT_KINDS
    )


async def sweep(core: Core, *, now: datetime) -> list[EvaluationReport]:
    """Evaluate every enabled reward with rules and no job (see the module docstring)."""
    run_key = sweep_run_key(core, now)
    reports: list[EvaluationReport] = []
    for definition in await list_definitions(core.db):
        if not swept(definition):
            continue
        try:
            reports.append(await _evaluate(core, definition, now=now, run_key=run_key))
        except Exception as problem:  # one broken reward must not stop the others
            log.exception("sweep: evaluating reward %s failed", definition.reward_id)
            failed = EvaluationReport(definition.reward_id, run_key, definition.reward)
            failed.error = f"{type(problem).__name__}: {problem}"
            reports.append(failed)
    reports += await core.workflows.sweep(now=now)  # Workflow Badges: auto-enrol and evaluate
    return reports


def describe(report: EvaluationReport) -> dict[str, Any]:
    """A JSON-friendly summary (for logs and the command line)."""
    return {
        "reward_id": report.reward_id,
        "run_key": report.run_key,
        "candidates": [c.member_id for c in report.candidates],
        "awarded": report.awarded_ids,
        "skipped": [{"member_id": m, "reason": r} for m, r in report.skipped],
        "draw_run_id": report.draw_run_id,
        "announcement_id": report.announcement_id,
        "note": report.note,
        "error": report.error,
    }
