"""Workflow Badges: enrolment, ordered steps, completion.

A member works through a Workflow Badge's ordered `workflow` steps in an *enrolment*
(`WorkflowEnrollment`, one per cycle); each finished step is a `WorkflowStepDone` row.

- **Enrolment**: by the member (``/workflow join``), the API or an admin (`enroll`), or
  automatically for `auto_enroll` workflows: the sweep enrols every active member the reward may go
  to (its awardee rules), and an event enrols the member it concerns. Automatic enrolment only
  ever makes a member's *first* enrolment: re-enrolling after a completion (only for `multiple`
  workflows) is an explicit act, or a workflow whose conditions still hold would be awarded again
  on every sweep.
- **Steps complete in order.** A step with a `condition` completes when its registered achievement
  function's value passes ``operator threshold`` (truthy with no threshold). A step without one
  completes only when marked (`mark_step`: an admin, the API or an event). Evaluation walks the
  steps from the first unfinished one and stops at the first that is not (yet) done, so a later
  step never completes before an earlier one. With `auto_evaluation` (the default) the sweep and
  every event (``login``, ``kudos.*``, ``badge.awarded``) evaluate the member's workflows and
  advance through every step that holds (a batch of events, `on_fired`, evaluates all the members
  it names together: their enrolments, steps done and rows are one read each, first enrolments
  one insert; only the achievement functions are called per member); without it nothing is
  evaluated automatically, and an explicit `evaluate` advances at most one step.
- **Completion** awards the badge through the award service with the idempotency key
  ``workflow:{enrollment id}``: once per enrolment, however many processes race. Then the
  enrolment is switched to completed by a conditional update (only one caller wins), and the
  winner runs the `completion_callbacks` and announces (kind ``workflow_completed``, keyed by the
  enrolment). A process that stops between the award and the switch leaves an active enrolment
  with every step done: the next evaluation finds the award by its key and finishes the job.
- **Callbacks** (`step_callbacks` when a step completes, `completion_callbacks` on completion)
  return `rewards.callbacks.Notification`s, or None. They are never sent from here: they are
  recorded in the completion announcement's payload (``notifications``) and listed in the report,
  so a notification is stored with the completion it belongs to. The announcement itself reaches
  the member's direct chats and, when the reward's `announce` asks for email and ``SMTP_*`` is
  set, their email. A failing callback is logged and never undoes the award.

Atomicity: every row is written by one short transaction guarded by a unique key (the enrolment's
(reward, member, cycle), the step's (enrolment, index), the award key), so concurrent evaluations
complete each step once and award once; progress lives in the database and survives restarts.
"""

from __future__ import annotations

import contextvars
import logging
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Integer, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from rewards.catalog.loader import RewardDefinition
from rewards.catalog.model import RewardKind
from rewards.catalog.permissions import Subject, allows
from rewards.catalog.workflow import StepCondition, WorkflowStep
from rewards.clock import Clock, SystemClock, local_today
from rewards.errors import (
    AlreadyAwarded,
    InvalidInput,
    NotAllowed,
    NotAvailable,
    NotFound,
    UnknownMember,
    UnknownReward,
)
from rewards.functions.registry import FunctionKind, FunctionRegistry
from rewards.rules.achievement import (
    MEMBER_INFO_COLUMNS,
    BatchEnv,
    MemberEnv,
    MemberInfo,
    SqlConnection,
    active_members,
    reward_period,
)
from rewards.rules.evaluate import EvaluationReport
from rewards.services import outbox
from rewards.services._subjects import Person, load_people
from rewards.services.admins import is_admin
from rewards.services.announcements import AnnouncedItem, announce
from rewards.services.awards import AwardService, AwardSource, AwardView
from rewards.services.catalog import get_definition, list_definitions
from rewards.services.events import EventService, Fired
from rewards.settings import Settings
from rewards.store.db import Database, Fixed, among, run_fixed
from rewards.store.models import (
    Award,
    Member,
    MemberGroup,
    WorkflowEnrollment,
    WorkflowStepDone,
)

log = logging.getLogger(__name__)

ACTIVE, COMPLETED = "active", "completed"
ENROLLMENT_TABLE = WorkflowEnrollment.__table__  # type: ignore[attr-defined]
# Members evaluated together by a batch of events; each pass reads their enrolments, steps and
# rows with one ``IN`` list each.
MEMBERS_PER_PASS = 500
ANNOUNCEMENT_KIND = "workflow_completed"

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
    "eq": operator.eq,
    "ne": operator.ne,
}

# Set while this task is completing a workflow: the award it makes emits ``badge.awarded``, and
# evaluating the member's workflows again from inside that event would only race with ourselves.
_COMPLETING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "workflow_completing", default=False
)


class StepProgress(NamedTuple):
    name: str
    done: bool
    done_at: datetime | None


@dataclass(frozen=True)
class WorkflowProgressView:
    """One member's latest enrolment in one workflow."""

    enrollment_id: int
    reward_id: int
    reward_name: str
    member_id: int
    steps: tuple[StepProgress, ...]
    status: str
    cycle: int
    enrolled_at: datetime
    completed_at: datetime | None = None
    description: str | None = None

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.done)

    @property
    def next_step(self) -> str | None:
        return next((s.name for s in self.steps if not s.done), None)


@dataclass(frozen=True)
class EnrollmentResult:
    progress: WorkflowProgressView
    new: bool  # False: the member was already working on it


@dataclass
class CompletionResult:
    enrollment_id: int
    member_id: int
    award: AwardView | None = None
    notifications: list[Any] = field(default_factory=list)
    announcement_id: int | None = None


def condition_passes(value: object, condition: StepCondition) -> bool:
    """`value` against the condition: ``operator threshold``, or truthy without a threshold."""
    number = 0 if value is None else value
    if isinstance(number, bool):
        number = int(number)
    if condition.threshold is None:
        return bool(number)
    return bool(_COMPARE[condition.operator](number, condition.threshold))


def _step_index(definition: RewardDefinition, step: str | int) -> int:
    """A step by 0-based index or by name (ignoring case)."""
    steps = definition.workflow
    if isinstance(step, int):
        if 0 <= step < len(steps):
            return step
        raise InvalidInput(
            f"{definition.reward} has {len(steps)} steps; there is no step {step + 1}."
        )
    wanted = step.strip().casefold()
    for index, item in enumerate(steps):
        if item.step.casefold() == wanted:
            return index
    names = ", ".join(f'"{s.step}"' for s in steps)
    raise InvalidInput(f'{definition.reward} has no step "{step}" (its steps: {names}).')


# `_read_state`'s reads, built once per dialect with their id lists as one parameter each
# (`among`): a hook batch runs them for every kudos, and a statement built per call is coerced
# and cache-keyed anew.
def _enrolments(postgresql: bool) -> Any:
    return (
        select(
            col(WorkflowEnrollment.id),
            col(WorkflowEnrollment.reward_id),
            col(WorkflowEnrollment.member_id),
            col(WorkflowEnrollment.status),
        )
        .where(
            among(col(WorkflowEnrollment.reward_id), "rewards", Integer, postgresql=postgresql),
            among(col(WorkflowEnrollment.member_id), "members", Integer, postgresql=postgresql),
        )
        .order_by(col(WorkflowEnrollment.id))
    )


def _members(postgresql: bool) -> Any:
    return select(*MEMBER_INFO_COLUMNS, col(Member.active)).where(
        among(col(Member.id), "members", Integer, postgresql=postgresql)
    )


def _steps_done(postgresql: bool) -> Any:
    return select(
        col(WorkflowStepDone.enrollment_id),
        col(WorkflowStepDone.step_index),
        col(WorkflowStepDone.done_at),
    ).where(
        among(col(WorkflowStepDone.enrollment_id), "enrolments", Integer, postgresql=postgresql)
    )


def _groups(postgresql: bool) -> Any:
    return select(col(MemberGroup.member_id), col(MemberGroup.name)).where(
        among(col(MemberGroup.member_id), "members", Integer, postgresql=postgresql)
    )


def _fixed(build: Any) -> dict[bool, Fixed]:
    """{is PostgreSQL: the read}, run as fixed statements (`run_fixed`)."""
    return {pg: Fixed(build(pg), writes=False, returns_rows=True) for pg in (True, False)}


_ENROLMENTS = _fixed(_enrolments)
_MEMBERS = _fixed(_members)
_STEPS_DONE = _fixed(_steps_done)
_GROUPS = _fixed(_groups)


class WorkflowService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock | None = None,
        *,
        awards: AwardService,
        events: EventService | None = None,
        functions: Callable[[], FunctionRegistry],
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()
        self.awards = awards
        self._functions = functions
        if events is not None:
            events.hooks.append(self.on_fired)

    # --- definitions and people ---------------------------------------------------------------

    async def workflows(self) -> list[RewardDefinition]:
        """Enabled Workflow Badges."""
        return await list_definitions(self.db, kind=RewardKind.WORKFLOW)

    async def definition(self, reward_id: int) -> RewardDefinition:
        definition = await get_definition(self.db, reward_id)
        if definition.kind is not RewardKind.WORKFLOW:
            raise InvalidInput(f"{definition.reward} is not a workflow.")
        return definition

    async def find(self, name_or_id: str) -> RewardDefinition:
        """A workflow by id or by name (ignoring case)."""
        text = name_or_id.strip()
        if not text:
            raise InvalidInput("Say which workflow, by name or id.")
        found = await self.workflows()
        if text.isdigit():
            for definition in found:
                if definition.reward_id == int(text):
                    return definition
        for definition in found:
            if definition.reward.casefold() == text.casefold():
                return definition
        names = ", ".join(d.reward for d in found) or "none"
        raise UnknownReward(f'There is no workflow "{text}". Workflows: {names}.')

    async def _person(self, member_id: int) -> Person:
        async with self.db.read() as session:
            people = await load_people(session, [member_id])
        if member_id not in people:
            raise UnknownMember(f"There is no member with id {member_id}.")
        return people[member_id]

    async def _check_admin(self, by: int | None, member_id: int | None = None) -> None:
        """`by` must be an admin (None is the system, the API or an event)."""
        if by is None or by == member_id:
            return
        if not is_admin(self.settings, (await self._person(by)).subject):
            raise NotAllowed("Only an admin can do that for someone else.")

    def _eligible(self, definition: RewardDefinition, person: Person) -> str | None:
        """Why `person` cannot take this workflow, or None."""
        if not person.active:
            return f"{person.display_name} is not an active member."
        if not allows(definition.awardee, person.subject):
            return f"{definition.reward} is not open to {person.display_name}."
        return None

    # --- enrolment ----------------------------------------------------------------------------

    async def enroll(
        self, reward_id: int, member_id: int, *, by: int | None = None, evaluate: bool = True
    ) -> EnrollmentResult:
        """Enrol `member_id` in workflow `reward_id` (`by`: who asks; None for the system/API).

        Someone enrolling another member must be an admin. A member already working on it gets
        their enrolment back (``new`` False); after a completion a new cycle starts only for a
        `multiple` workflow. With `auto_evaluation`, steps that already hold complete at once.
        """
        await self._check_admin(by, member_id)
        definition = await self.definition(reward_id)
        if not definition.enabled:
            raise NotAvailable(f"{definition.reward} is switched off.")
        person = await self._person(member_id)
        problem = self._eligible(definition, person)
        if problem:
            raise NotAllowed(problem)
        enrollment, new = await self._enroll_one(definition, member_id, person.display_name)
        assert enrollment.id is not None
        if evaluate and new and definition.auto_evaluation:
            await self._advance(definition, enrollment.id, member_id, now=self.clock.now())
        return EnrollmentResult(await self._progress_of(definition, enrollment.id), new)

    async def _latest(self, session: Any, reward_id: int, member_id: int) -> Any:
        return await session.scalar(
            select(WorkflowEnrollment)
            .where(
                col(WorkflowEnrollment.reward_id) == reward_id,
                col(WorkflowEnrollment.member_id) == member_id,
            )
            .order_by(col(WorkflowEnrollment.cycle).desc())
            .limit(1)
        )

    async def _enroll_one(
        self, definition: RewardDefinition, member_id: int, name: str
    ) -> tuple[WorkflowEnrollment, bool]:
        for _attempt in range(3):
            try:
                async with self.db.write() as session:
                    latest = await self._latest(session, definition.reward_id, member_id)
                    if latest is not None and latest.status == ACTIVE:
                        return latest, False
                    if latest is not None and not definition.multiple:
                        raise AlreadyAwarded(
                            f"{name} already completed {definition.reward}, "
                            "which can be completed only once."
                        )
                    row = WorkflowEnrollment(
                        reward_id=definition.reward_id,
                        member_id=member_id,
                        cycle=(latest.cycle + 1) if latest is not None else 1,
                        status=ACTIVE,
                        enrolled_at=self.clock.now(),
                    )
                    session.add(row)
                    await session.flush()
                    return row, True
            except IntegrityError:
                continue  # another process enrolled them at the same moment: read theirs
        raise InvalidInput(f"Could not enrol {name} in {definition.reward}; please try again.")

    async def auto_enroll(
        self, definition: RewardDefinition, within: set[int] | None = None
    ) -> int:
        """First enrolments for an `auto_enroll` workflow: every active member (in `within`)
        the reward may go to who never enrolled. Returns how many were enrolled."""
        if not definition.auto_enroll or not definition.enabled:
            return 0
        query = select(col(Member.id)).where(col(Member.active).is_(True))
        if within is not None:
            query = query.where(col(Member.id).in_(sorted(within)))
        # NOT EXISTS, not NOT IN: an anti-join probing (reward, member) per member, where NOT IN
        # hashes every enrolment of the reward even when one member is asked about.
        enrolled = (
            select(col(WorkflowEnrollment.id))
            .where(
                col(WorkflowEnrollment.reward_id) == definition.reward_id,
                col(WorkflowEnrollment.member_id) == col(Member.id),
            )
            .exists()
        )
        query = query.where(~enrolled)
        async with self.db.read() as session:
            ids = [i for i in (await session.scalars(query)).all() if i is not None]
            people = await load_people(session, ids)
        made = 0
        for member_id in ids:
            person = people.get(member_id)
            if person is None or self._eligible(definition, person):
                continue
            try:
                _row, new = await self._enroll_one(definition, member_id, person.display_name)
            except AlreadyAwarded:
                continue
            made += int(new)
        return made

    # --- evaluation ---------------------------------------------------------------------------

    async def _done_steps(self, enrollment_id: int) -> dict[int, datetime]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(col(WorkflowStepDone.step_index), col(WorkflowStepDone.done_at)).where(
                    col(WorkflowStepDone.enrollment_id) == enrollment_id
                )
            )
            return {int(i): at for i, at in rows.all()}

    async def _values(
        self,
        definition: RewardDefinition,
        step: WorkflowStep,
        members: Sequence[MemberInfo],
        now: datetime,
    ) -> dict[int, object]:
        """The step's achievement function for each of `members`: its members form when it has
        one (one query for them all), else one call per member (a batch form answers for the
        whole population: never for the few members an event names)."""
        assert step.condition is not None
        entry = self._functions().get(step.condition.function_path, FunctionKind.ACHIEVEMENT)
        timeframe = definition.timeframe.value if definition.timeframe is not None else None
        period = reward_period(timeframe, now, self.settings.timezone)
        params = dict(step.condition.function_params)
        values: dict[int, object] = {}
        todays = {m.id: local_today(now, m.timezone, self.settings.timezone) for m in members}
        async with self.db.read() as session:  # one transaction for the members' calls
            conn = SqlConnection(self.db, session)
            if entry.members is not None:
                together = BatchEnv(todays, period.start, period.end)
                return dict(await entry.members(list(members), together, conn, **params))
            for member in members:
                env = MemberEnv(todays[member.id], period.start, period.end)
                values[member.id] = await entry.func(member, env, conn, **params)
        return values

    async def _record_step(
        self,
        enrollment_id: int,
        index: int,
        step: WorkflowStep,
        *,
        now: datetime,
        source: str,
        by: int | None,
    ) -> bool:
        """Record step `index` as done; False when it already was (by anyone)."""
        try:
            async with self.db.write() as session:
                enrollment = await session.get(WorkflowEnrollment, enrollment_id)
                if enrollment is None or enrollment.status != ACTIVE:
                    return False
                session.add(
                    WorkflowStepDone(
                        enrollment_id=enrollment_id,
                        step_index=index,
                        step=step.step,
                        done_at=now,
                        source=source,
                        done_by=by,
                    )
                )
                await session.flush()
                outbox.stage(
                    session,
                    self.settings,
                    outbox.WORKFLOW_STEP_COMPLETED,
                    {
                        "enrollment_id": enrollment_id,
                        "reward_id": enrollment.reward_id,
                        "member_id": enrollment.member_id,
                        "step": step.step,
                        "step_index": index,
                        "source": source,
                        "done_by": by,
                    },
                    at=now,
                )
        except IntegrityError:
            return False
        return True

    async def _advance(
        self,
        definition: RewardDefinition,
        enrollment_id: int,
        member_id: int,
        *,
        now: datetime,
        max_steps: int | None = None,
        report: EvaluationReport | None = None,
    ) -> CompletionResult | None:
        """Complete every following step whose condition holds, in order; complete the
        workflow when every step is done."""
        progress = _Progress(enrollment_id, member_id, await self._done_steps(enrollment_id))
        results = await self._advance_many(
            definition, [progress], None, now=now, max_steps=max_steps, report=report
        )
        return results[0] if results else None

    async def _advance_many(
        self,
        definition: RewardDefinition,
        enrolments: Sequence[_Progress],
        members: dict[int, MemberInfo] | None,
        *,
        now: datetime,
        max_steps: int | None = None,
        report: EvaluationReport | None = None,
    ) -> list[CompletionResult]:
        """`_advance` for several enrolments of one workflow, step by step: each enrolment
        stops at its first step that is not (yet) done, as alone. `members`: the active members
        already read ({} or a missing id: not active); None reads them when a condition needs
        them."""
        lazy = members is None
        known: dict[int, MemberInfo] = {} if members is None else members
        looked_up: set[int] = set()
        stopped: set[int] = set()
        advanced: dict[int, int] = {}
        for index, step in enumerate(definition.workflow):
            asking: list[_Progress] = []
            for item in enrolments:
                if item.enrollment_id in stopped or index in item.done:
                    continue
                steps_taken = advanced.get(item.enrollment_id, 0)
                if step.condition is None or (max_steps is not None and steps_taken >= max_steps):
                    stopped.add(item.enrollment_id)
                    continue
                asking.append(item)
            if not asking:
                continue
            unread = {item.member_id for item in asking} - looked_up
            if lazy and unread:
                known.update({m.id: m for m in await active_members(self.db, unread)})
                looked_up |= unread
            for item in asking:
                if item.member_id not in known:  # not an active member: nothing advances
                    stopped.add(item.enrollment_id)
            asking = [item for item in asking if item.enrollment_id not in stopped]
            if not asking:
                continue
            wanted = {item.member_id: known[item.member_id] for item in asking}
            values = await self._values(definition, step, list(wanted.values()), now)
            assert step.condition is not None
            for item in asking:
                if not condition_passes(values.get(item.member_id), step.condition):
                    stopped.add(item.enrollment_id)
                    continue
                if await self._record_step(
                    item.enrollment_id, index, step, now=now, source="evaluation", by=None
                ):
                    await self._step_callbacks(definition, step, item.member_id, now)
                item.done[index] = now
                advanced[item.enrollment_id] = advanced.get(item.enrollment_id, 0) + 1
        results = []
        for item in enrolments:
            if len(item.done) < len(definition.workflow):
                continue
            result = await self._complete(
                definition, item.enrollment_id, item.member_id, now=now, report=report
            )
            if result is not None:
                results.append(result)
        return results

    async def evaluate(
        self,
        *,
        member_id: int | None = None,
        reward_id: int | None = None,
        now: datetime | None = None,
        automatic: bool = False,
    ) -> list[EvaluationReport]:
        """Evaluate active enrolments (of `member_id` / in `reward_id` when given).

        `automatic` (the sweep, events) only evaluates `auto_evaluation` workflows, and first
        enrols for `auto_enroll` ones. One report per workflow, listing who completed it.
        """
        now = now or self.clock.now()
        reports: list[EvaluationReport] = []
        chosen = [
            d
            for d in await self.workflows()
            if (reward_id is None or d.reward_id == reward_id)
            and (d.auto_evaluation or not automatic)
        ]
        if member_id is not None:
            return await self._evaluate_members(chosen, [member_id], now, automatic=automatic)
        for definition in chosen:
            report = EvaluationReport(
                definition.reward_id, f"workflow:{now.isoformat()}", definition.reward
            )
            try:
                await self._evaluate_one(definition, member_id, now, automatic, report)
            except Exception as problem:  # one broken workflow must not stop the others
                log.exception("workflow %s: evaluation failed", definition.reward_id)
                report.error = f"{type(problem).__name__}: {problem}"
            reports.append(report)
        return reports

    async def _evaluate_one(
        self,
        definition: RewardDefinition,
        member_id: int | None,
        now: datetime,
        automatic: bool,
        report: EvaluationReport,
    ) -> None:
        if automatic and definition.auto_enroll:
            await self.auto_enroll(definition, None if member_id is None else {member_id})
        query = select(col(WorkflowEnrollment.id), col(WorkflowEnrollment.member_id)).where(
            col(WorkflowEnrollment.reward_id) == definition.reward_id,
            col(WorkflowEnrollment.status) == ACTIVE,
        )
        if member_id is not None:
            query = query.where(col(WorkflowEnrollment.member_id) == member_id)
        async with self.db.read() as session:
            rows = (await session.execute(query.order_by(col(WorkflowEnrollment.id)))).all()
        max_steps = None if definition.auto_evaluation else 1
        for enrollment_id, who in rows:
            await self._advance(
                definition,
                int(enrollment_id or 0),
                int(who),
                now=now,
                max_steps=max_steps,
                report=report,
            )

    async def sweep(self, *, now: datetime) -> list[EvaluationReport]:
        """The sweep's part: auto-enrol and evaluate every `auto_evaluation` workflow; only the
        reports where something happened (a completion, a skip, an error)."""
        reports = await self.evaluate(now=now, automatic=True)
        return [r for r in reports if r.awarded or r.skipped or r.error]

    async def on_fired(
        self, fired: Sequence[Fired], definitions: Sequence[RewardDefinition]
    ) -> None:
        """Events (``login``, ``kudos.*``, ``badge.awarded``) re-evaluate the `auto_evaluation`
        workflows of the members they name: a batch of events (`rewards.hooks`, a sweep's
        awards) in one pass per `MEMBERS_PER_PASS` members, with the workflows the emission
        already read.

        Not the ``badge.awarded`` of a workflow's own completion award: evaluating the member's
        workflows again from it would only race with the completion."""
        if _COMPLETING.get():
            return
        workflows = [d for d in definitions if d.kind is RewardKind.WORKFLOW and d.auto_evaluation]
        members = sorted(
            {f.member_id for f in fired if f.payload.get("source") != AwardSource.WORKFLOW.value}
        )
        if not workflows or not members:
            return
        now = self.clock.now()
        for start in range(0, len(members), MEMBERS_PER_PASS):
            part = members[start : start + MEMBERS_PER_PASS]
            await self._evaluate_members(workflows, part, now, automatic=True)

    async def _evaluate_members(
        self,
        definitions: Sequence[RewardDefinition],
        member_ids: Sequence[int],
        now: datetime,
        *,
        automatic: bool,
    ) -> list[EvaluationReport]:
        """`evaluate` for a few named members, set-based: their enrolments in every workflow,
        the steps done of the active ones and the members themselves are three reads for all of
        them; `automatic` first enrols, in one insert, those an `auto_enroll` workflow never
        had. Only the achievement functions are called per member."""
        reports = [
            EvaluationReport(d.reward_id, f"workflow:{now.isoformat()}", d.reward)
            for d in definitions
        ]
        if not definitions or not member_ids:
            return reports
        try:
            state = await self._read_state(definitions, member_ids, enrolling=automatic)
        except Exception as problem:
            log.exception("workflows: reading the members' enrolments failed")
            for report in reports:
                report.error = f"{type(problem).__name__}: {problem}"
            return reports
        for definition, report in zip(definitions, reports, strict=True):
            try:
                progress = list(state.active.get(definition.reward_id, ()))
                if automatic and definition.auto_enroll and definition.enabled:
                    progress += await self._enroll_first(definition, state, now)
                    progress.sort(key=lambda item: item.enrollment_id)
                await self._advance_many(
                    definition,
                    progress,
                    state.members,
                    now=now,
                    max_steps=None if definition.auto_evaluation else 1,
                    report=report,
                )
            except Exception as problem:  # one broken workflow must not stop the others
                log.exception("workflow %s: evaluation failed", definition.reward_id)
                report.error = f"{type(problem).__name__}: {problem}"
        return reports

    async def _read_state(
        self, definitions: Sequence[RewardDefinition], member_ids: Sequence[int], *, enrolling: bool
    ) -> _State:
        """One read transaction: the members' enrolments in `definitions`, the members, the
        steps done of the active enrolments, and (`enrolling`, when some member was never
        enrolled in an `auto_enroll` workflow) those members' groups, for the awardee rules."""
        ids = sorted(set(member_ids))
        state = _State()
        pg = not self.db.is_sqlite
        async with self.db.read() as session:
            enrolments = await run_fixed(  # plain rows: no ORM loading
                session,
                _ENROLMENTS[pg],
                {"rewards": sorted({d.reward_id for d in definitions}), "members": ids},
            )
            active: dict[int, _Progress] = {}
            for enrollment_id, reward_id, member_id, status in enrolments:
                state.enrolled.setdefault(int(reward_id), set()).add(int(member_id))
                if status == ACTIVE:
                    item = _Progress(int(enrollment_id or 0), int(member_id), {})
                    active[item.enrollment_id] = item
                    state.active.setdefault(int(reward_id), []).append(item)
            rows = await run_fixed(session, _MEMBERS[pg], {"members": ids})
            for ident, email, name, tz, job_code, department, is_active in rows:
                if is_active:
                    member = MemberInfo(int(ident or 0), email, str(name), tz, job_code, department)
                    state.members[member.id] = member
            if active:
                wanted = {"enrolments": sorted(active)}
                steps = await run_fixed(session, _STEPS_DONE[pg], wanted)
                for enrollment_id, index, done_at in steps:
                    active[int(enrollment_id)].done[int(index)] = done_at
            never = {
                m
                for d in definitions
                if enrolling and d.auto_enroll and d.enabled
                for m in state.members
                if m not in state.enrolled.get(d.reward_id, ())
            }
            if never:
                groups = await run_fixed(session, _GROUPS[pg], {"members": sorted(never)})
                for member_id, group in groups:
                    state.groups.setdefault(int(member_id), set()).add(str(group))
        return state

    async def _enroll_first(
        self, definition: RewardDefinition, state: _State, now: datetime
    ) -> list[_Progress]:
        """First enrolments (cycle 1) in an `auto_enroll` workflow for the active members of
        `state` it never had who may take it, in one insert; a member enrolled by someone else
        meanwhile is left out (the unique key decides; they are evaluated by whoever won)."""
        enrolled = state.enrolled.get(definition.reward_id, set())
        wanted = [
            member
            for member in state.members.values()
            if member.id not in enrolled
            and allows(definition.awardee, _subject(member, state.groups.get(member.id, set())))
        ]
        if not wanted:
            return []
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(ENROLLMENT_TABLE)
            .values(
                [
                    {
                        "reward_id": definition.reward_id,
                        "member_id": member.id,
                        "cycle": 1,
                        "status": ACTIVE,
                        "enrolled_at": now,
                    }
                    for member in sorted(wanted, key=lambda m: m.id)
                ]
            )
            .on_conflict_do_nothing(index_elements=["reward_id", "member_id", "cycle"])
            .returning(ENROLLMENT_TABLE.c.id, ENROLLMENT_TABLE.c.member_id)
        )
        async with self.db.write() as session:
            made = (await session.execute(statement)).all()
        enrolled.update(int(member_id) for _, member_id in made)
        state.enrolled[definition.reward_id] = enrolled
        return [_Progress(int(ident), int(member_id), {}) for ident, member_id in made]

    # --- marking ------------------------------------------------------------------------------

    async def mark_step(
        self,
        reward_id: int,
        member_id: int,
        step: str | int,
        *,
        by: int | None = None,
        source: str | None = None,
    ) -> WorkflowProgressView:
        """Mark a step of the member's active enrolment done (`step`: name or 0-based index).

        `by` is the admin marking it (None: the system, the API or an event; `source` then says
        which, default ``api``). Every earlier step must be done first. Marking a done step again
        changes nothing. Completes the workflow when it was the last step.
        """
        if by is not None and not is_admin(self.settings, (await self._person(by)).subject):
            raise NotAllowed("Only an admin can mark a workflow step as done.")
        definition = await self.definition(reward_id)
        person = await self._person(member_id)
        index = _step_index(definition, step)
        async with self.db.read() as session:
            enrollment = await self._latest(session, reward_id, member_id)
        if enrollment is None or enrollment.status != ACTIVE:
            raise NotFound(
                f"{person.display_name} is not working on {definition.reward} right now."
            )
        enrollment_id = int(enrollment.id)
        done = await self._done_steps(enrollment_id)
        missing = [s.step for i, s in enumerate(definition.workflow[:index]) if i not in done]
        if missing:
            raise InvalidInput(
                f'"{definition.workflow[index].step}" comes after "{missing[0]}", which '
                f"{person.display_name} has not finished yet."
            )
        now = self.clock.now()
        if index not in done and await self._record_step(
            enrollment_id,
            index,
            definition.workflow[index],
            now=now,
            source=source or ("admin" if by is not None else "api"),
            by=by,
        ):
            await self._step_callbacks(definition, definition.workflow[index], member_id, now)
        await self._advance(
            definition,
            enrollment_id,
            member_id,
            now=now,
            max_steps=None if definition.auto_evaluation else 0,
        )
        return await self._progress_of(definition, enrollment_id)

    # --- completion ---------------------------------------------------------------------------

    async def _run_callbacks(
        self, definition: RewardDefinition, names: Sequence[str], member_id: int, now: datetime
    ) -> list[Any]:
        if not names:
            return []
        person = await self._person(member_id)
        found = await active_members(self.db, {member_id})
        recipient = _Recipient(member_id, person.subject.email or "", person.display_name)
        tz = found[0].timezone if found else None
        timeframe = definition.timeframe.value if definition.timeframe is not None else None
        period = reward_period(timeframe, now, self.settings.timezone)
        env = MemberEnv(local_today(now, tz, self.settings.timezone), period.start, period.end)
        results = []
        for name in names:
            try:
                entry = self._functions().get(name, FunctionKind.CALLBACK)
                result = await entry.func(recipient, definition, env)
            except Exception:
                log.exception("workflow %s: callback %s failed", definition.reward_id, name)
                continue
            if result is not None:
                results.append(result)
        return results

    async def _step_callbacks(
        self, definition: RewardDefinition, step: WorkflowStep, member_id: int, now: datetime
    ) -> list[Any]:
        return await self._run_callbacks(
            definition, definition.step_callbacks.get(step.step, ()), member_id, now
        )

    async def _complete(
        self,
        definition: RewardDefinition,
        enrollment_id: int,
        member_id: int,
        *,
        now: datetime,
        report: EvaluationReport | None = None,
    ) -> CompletionResult | None:
        result = CompletionResult(enrollment_id, member_id)
        token = _COMPLETING.set(True)
        try:
            result.award = await self.awards.award(
                definition.reward_id,
                member_id,
                source=AwardSource.WORKFLOW,
                args={"workflow": definition.reward},
                idempotency_key=f"workflow:{enrollment_id}",
            )
        except AlreadyAwarded:
            pass  # an earlier attempt (or a racing process) awarded it; finish the job below
        except (NotAvailable, NotAllowed, UnknownMember) as reason:
            if report is not None:
                report.skipped.append((member_id, str(reason)))
            return None
        finally:
            _COMPLETING.reset(token)
        key = f"r{definition.reward_id}:k:workflow:{enrollment_id}"
        async with self.db.write() as session:
            award_id = await session.scalar(
                select(col(Award.id)).where(col(Award.award_key) == key)
            )
            switched = await session.execute(
                update(WorkflowEnrollment)
                .where(
                    col(WorkflowEnrollment.id) == enrollment_id,
                    col(WorkflowEnrollment.status) == ACTIVE,
                )
                .values(status=COMPLETED, completed_at=now, award_id=award_id)
            )
            if getattr(switched, "rowcount", 0) == 1:
                outbox.stage(
                    session,
                    self.settings,
                    outbox.WORKFLOW_COMPLETED,
                    {
                        "enrollment_id": enrollment_id,
                        "reward_id": definition.reward_id,
                        "reward": definition.reward,
                        "member_id": member_id,
                        "award_id": award_id,
                    },
                    at=now,
                )
        if getattr(switched, "rowcount", 0) != 1:
            return None  # someone else completed it
        if report is not None and result.award is not None:
            report.awarded.append(result.award)
        result.notifications = await self._run_callbacks(
            definition, definition.completion_callbacks, member_id, now
        )
        person = await self._person(member_id)
        points = result.award.points if result.award else definition.points
        result.announcement_id = await announce(
            self.db,
            self.settings,
            key=f"workflow:{enrollment_id}",
            kind=ANNOUNCEMENT_KIND,
            title=definition.reward,
            items=[
                AnnouncedItem(
                    member_id=member_id,
                    name=person.display_name,
                    text=f"{person.display_name} completed {definition.reward}",
                    points=points,
                )
            ],
            now=now,
            reward_id=definition.reward_id,
            spec=definition.announce,
            payload={
                "enrollment_id": enrollment_id,
                "notifications": [_notification_json(n) for n in result.notifications],
            },
        )
        if report is not None:
            report.announcement_id = report.announcement_id or result.announcement_id
        return result

    # --- progress -----------------------------------------------------------------------------

    async def _progress_of(
        self, definition: RewardDefinition, enrollment_id: int
    ) -> WorkflowProgressView:
        async with self.db.read() as session:
            row = await session.get(WorkflowEnrollment, enrollment_id)
        assert row is not None and row.id is not None
        done = await self._done_steps(enrollment_id)
        return WorkflowProgressView(
            enrollment_id=row.id,
            reward_id=definition.reward_id,
            reward_name=definition.reward,
            member_id=row.member_id,
            steps=tuple(
                StepProgress(step.step, i in done, done.get(i))
                for i, step in enumerate(definition.workflow)
            ),
            status=row.status,
            cycle=row.cycle,
            enrolled_at=row.enrolled_at,
            completed_at=row.completed_at,
            description=definition.description,
        )

    async def progress(
        self, member_id: int, *, active_only: bool = False
    ) -> list[WorkflowProgressView]:
        """The member's latest enrolment in each workflow, by reward id."""
        latest = (
            select(
                col(WorkflowEnrollment.reward_id),
                func.max(col(WorkflowEnrollment.cycle)).label("cycle"),
            )
            .where(col(WorkflowEnrollment.member_id) == member_id)
            .group_by(col(WorkflowEnrollment.reward_id))
            .subquery()
        )
        query = (
            select(col(WorkflowEnrollment.id), col(WorkflowEnrollment.reward_id))
            .join(
                latest,
                (latest.c.reward_id == col(WorkflowEnrollment.reward_id))
                & (latest.c.cycle == col(WorkflowEnrollment.cycle)),
            )
            .where(col(WorkflowEnrollment.member_id) == member_id)
            .order_by(col(WorkflowEnrollment.reward_id))
        )
        if active_only:
            query = query.where(col(WorkflowEnrollment.status) == ACTIVE)
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
        views = []
        for enrollment_id, reward_id in rows:
            try:
                definition = await get_definition(self.db, int(reward_id))
            except UnknownReward:
                continue
            views.append(await self._progress_of(definition, int(enrollment_id or 0)))
        return views


@dataclass
class _Progress:
    """An active enrolment being evaluated: the steps done so far, by index."""

    enrollment_id: int
    member_id: int
    done: dict[int, datetime]


@dataclass
class _State:
    """What `_read_state` read for a set of members."""

    members: dict[int, MemberInfo] = field(default_factory=dict)  # the active ones
    enrolled: dict[int, set[int]] = field(default_factory=dict)  # reward id -> ever enrolled
    active: dict[int, list[_Progress]] = field(default_factory=dict)  # reward id -> active
    groups: dict[int, set[str]] = field(default_factory=dict)  # read for first enrolments


def _subject(member: MemberInfo, groups: set[str]) -> Subject:
    return Subject(
        id=member.id,
        email=member.email or "",
        job_code=member.job_code,
        department=member.department,
        groups=frozenset(groups),
    )


@dataclass(frozen=True)
class _Recipient:
    id: int
    email: str
    display_name: str


def _notification_json(notification: Any) -> dict[str, Any]:
    fields = ("channel", "member_id", "to", "subject", "body", "reward_id", "attachments")
    return {name: getattr(notification, name, None) for name in fields}
