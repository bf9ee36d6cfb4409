"""The `announce` section: where a reward's results are posted.

``{"teams": "Rewards", "slack": "C0123456", "telegram": "-1001234567", "email": true,
"direct": true}``. Each platform value names a channel the bot knows (its id or its name, as
stored when the bot was added there); absent platforms fall back to the settings
(``ANNOUNCE_TEAMS_CHANNEL``, ``ANNOUNCE_SLACK_CHANNEL``, ``TELEGRAM_CHAT_ID``); ``false`` turns a
platform off for this reward. `direct` (default true) also sends each recipient a direct message;
`email` (default false) emails them when ``SMTP_*`` is set.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from rewards.catalog.problems import Issue, issues_from, show

PLATFORMS = ("teams", "slack", "telegram")


class AnnounceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    teams: StrictStr | StrictBool | None = Field(default=None)
    slack: StrictStr | StrictBool | None = Field(default=None)
    telegram: StrictStr | StrictBool | None = Field(default=None)
    direct: StrictBool = True
    email: StrictBool = False

    def place(self, platform: str, default: str) -> str | None:
        """The channel to post to on `platform`: this reward's, else `default`; None when off."""
        value = getattr(self, platform)
        if value is False:
            return None
        if isinstance(value, str) and value.strip():
            return value.strip()
        return default or None


DEFAULT_ANNOUNCE = AnnounceSpec()


def collect_announce(
    raw: object, where: str = "announce"
) -> tuple[AnnounceSpec | None, list[Issue]]:
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [
            (where, f'must be an object such as {{"slack": "C0123456"}}, got {show(raw)}')
        ]
    for platform in PLATFORMS:
        if raw.get(platform) is True:
            return None, [
                (
                    f"{where}.{platform}",
                    "name a channel (its id or name), or false to turn the platform off",
                )
            ]
    try:
        return AnnounceSpec.model_validate(raw), []
    except ValidationError as error:
        return None, issues_from(error, where, AnnounceSpec)
