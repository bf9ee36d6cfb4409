"""JSON shapes of the core's views."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from rewards.catalog.loader import RewardDefinition
from rewards.services.awards import AwardView
from rewards.services.kudos import KudosView, TagView


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def award(view: AwardView) -> dict[str, Any]:
    return {k: _plain(v) for k, v in dataclasses.asdict(view).items()}


def reward(definition: RewardDefinition) -> dict[str, Any]:
    return {"id": definition.reward_id, **definition.to_json()}


def kudos(view: KudosView) -> dict[str, Any]:
    return {
        "id": view.id,
        "giver": {"id": view.giver_id, "name": view.giver_name},
        "receivers": [{"id": i, "name": name} for i, name in view.receivers],
        "message": view.message,
        "tags": list(view.tags),
        "points_each": view.points_each,
        "visibility": view.visibility,
        "created_at": view.created_at.isoformat(),
        "via_api_key": view.via_api_key,
    }


def tag(view: TagView) -> dict[str, Any]:
    return dataclasses.asdict(view)
