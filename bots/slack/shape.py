"""The shape of a signed Slack payload, checked by the gate before slack-bolt reads it.

Bolt and the listeners index into the payload (`body["event"].get("type")`,
`body["user"]["id"]`, `view["state"]["values"]`): an `event` that is null or a list was a 500
inside bolt's own middleware. Slack only sends well-formed payloads, so one that is not is refused
(400) with a line in the log. Only the parts that are read are described; other fields pass.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Named(_Part):
    id: str | None = None


class _Event(_Part):
    type: str
    user: str | None = None
    text: str | None = None
    channel: str | None = None
    channel_type: str | None = None
    ts: str | None = None
    thread_ts: str | None = None
    team: str | None = None
    bot_id: str | None = None
    subtype: str | None = None


class _Authorization(_Part):
    team_id: str | None = None
    enterprise_id: str | None = None
    user_id: str | None = None
    is_enterprise_install: bool | None = None


class _Action(_Part):
    action_id: str
    value: str | None = None
    block_id: str | None = None


class _View(_Part):
    id: str | None = None
    callback_id: str | None = None
    private_metadata: str | None = None
    blocks: list[dict[str, object]] | None = None
    state: dict[str, dict[str, dict[str, dict[str, object]]]] | None = None


class _Container(_Part):
    message_ts: str | None = None
    channel_id: str | None = None


class _Payload(_Part):
    type: str | None = None
    team_id: str | None = None
    enterprise_id: str | None = None
    event: _Event | None = None
    authorizations: list[_Authorization] | None = None
    user: _Named | None = None
    team: _Named | None = None
    enterprise: _Named | None = None
    channel: _Named | None = None
    actions: list[_Action] | None = None
    view: _View | None = None
    container: _Container | None = None
    trigger_id: str | None = None
    response_url: str | None = None
    message: dict[str, object] | None = None


def payload_problem(data: dict[str, object]) -> str | None:
    """What makes `data` not a Slack payload the app can read, or None."""
    try:
        _Payload.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    return None
