"""Who counts as an administrator: `REWARDS_ADMINS` lists admin emails and/or group names."""

from __future__ import annotations

from rewards.catalog.permissions import Subject
from rewards.settings import Settings


def is_admin(settings: Settings, who: Subject) -> bool:
    names = {a.casefold() for a in settings.admins}
    return who.email.casefold() in names or any(g.casefold() in names for g in who.groups)
