"""Workflow screens: a member's progress through Workflow Badges (``/workflow``, ``/me``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cards.model import Card, Fact, Facts, ItemList, Row, Text, Tone
from rewards.services.workflows import WorkflowProgressView


def _date(moment: datetime) -> str:
    return f"{moment.day} {moment:%b %Y}"


def _bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else width
    return "▰" * filled + "▱" * (width - filled)


def progress_blocks(view: WorkflowProgressView) -> tuple[Text | Facts | ItemList, ...]:
    """One workflow's progress: a heading, a bar, and each step with ✅ or ⬜."""
    total = len(view.steps)
    finished = view.status == "completed"
    status = (
        f"Completed {_date(view.completed_at)}"
        if finished and view.completed_at
        else f"Next: {view.next_step}"
        if view.next_step
        else "Finishing"
    )
    steps = ItemList(
        tuple(
            Row(
                lead="✅" if step.done else "⬜",
                text=f"{index}. {step.name}",
                detail=_date(step.done_at) if step.done_at else "",
            )
            for index, step in enumerate(view.steps, start=1)
        ),
        empty="This workflow has no steps.",
    )
    cycle = f" (round {view.cycle})" if view.cycle > 1 else ""
    return (
        Text(f"{view.reward_name}{cycle}", heading=True),
        Facts(
            (
                Fact("Progress", f"{_bar(view.done_count, total)} {view.done_count}/{total}"),
                Fact("Status", status),
            )
        ),
        steps,
    )


def workflow_progress(
    views: Sequence[WorkflowProgressView], *, empty: str = "", whose: str | None = None
) -> Card:
    """The member's workflows with their steps (shown privately); `whose` names the member when
    the reader is someone else (an admin marking a step)."""
    body: list[Text | Facts | ItemList] = []
    for view in views:
        body.extend(progress_blocks(view))
    if not views:
        body.append(Text(empty or "You are not working on any workflow yet.", tone=Tone.SUBTLE))
    done = sum(1 for v in views if v.status == "completed")
    return Card(
        screen="workflow_progress",
        title=f"🧭 Workflows of {whose}" if whose else "🧭 Your workflows",
        summary=f"{len(views)} workflows, {done} completed" if views else "No workflows yet",
        body=tuple(body),
    )
