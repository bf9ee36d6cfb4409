"""The organisation's boundary for Slack: which requests are ours, decided from a signed body.

A valid signature only proves that Slack sent the request for our app, not that it comes from our
organisation: a distributed app, or a Slack Connect channel shared with another company, brings
requests from workspaces that are not ours. So before anything is written, every workspace a body
names must be inside the boundary (`rewards.membership.Boundary.slack_allows`: `SLACK_TEAM_IDS`,
or the bot token's own workspace from `auth.test`), and so must the team of the person acting when
the body says it differs (a guest from another organisation in a shared channel).

Where Slack puts those ids:

- slash commands: `team_id`, `enterprise_id` (and `user_team` where present);
- interactivity (buttons, modals): `team.id`, `view.team_id`, `enterprise.id` or
  `team.enterprise_id`; the person's team is `user.team_id`;
- Events API: `team_id`, `enterprise_id` and each of `authorizations` (the installations the event
  is delivered for); the person's team is `event.user_team` (a `T…` workspace or, for Grid, an
  `E…` org id).

A body that names no workspace at all is refused: nothing proves it is ours (fail closed).

One case cannot be settled from the body: under a listed Enterprise Grid org, a person whose
workspace is another one may be of the same org (served) or a Slack Connect guest (not). Such a
request goes on, and the turn looks the person up (`users.info`: `enterprise_user`) before it
writes anything for them (`person_inside`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rewards.membership import Boundary


@dataclass(frozen=True)
class OwnApp:
    """Who the bot token is, from `auth.test`: its workspace (or Grid org) and its own bot user."""

    team_id: str = ""
    enterprise_id: str = ""
    bot_user_id: str = ""

    @property
    def home(self) -> str:
        """The boundary without `SLACK_TEAM_IDS`: the workspace (an org-wide install's org)."""
        return self.team_id or self.enterprise_id


@dataclass(frozen=True)
class Origin:
    """The workspaces a request names and the team of the person acting in it."""

    places: tuple[tuple[str, str], ...] = ()  # (team id, enterprise id) pairs
    actors: tuple[str, ...] = field(default=())  # T… or E… ids of the person acting


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def origin(body: Mapping[str, Any]) -> Origin:
    """Read the workspace ids and the acting person's team out of a Slack request body."""
    team, enterprise = _dict(body.get("team")), _dict(body.get("enterprise"))
    view = _dict(body.get("view"))
    org = (
        _text(body.get("enterprise_id"))
        or _text(enterprise.get("id"))
        or _text(team.get("enterprise_id"))
    )
    teams = [_text(body.get("team_id")), _text(team.get("id")), _text(view.get("team_id"))]
    places = [(t, org) for t in dict.fromkeys(t for t in teams if t)]
    for grant in body.get("authorizations") or ():
        grant = _dict(grant)
        places.append((_text(grant.get("team_id")), _text(grant.get("enterprise_id"))))
    if not places and org:
        places.append(("", org))  # an org-wide request that names only the Grid org
    event = _dict(body.get("event"))
    actors = (
        _text(_dict(body.get("user")).get("team_id")),
        _text(body.get("user_team")),
        _text(event.get("user_team")),
    )
    return Origin(tuple(places), tuple(dict.fromkeys(a for a in actors if a)))


def inside(origin: Origin, boundary: Boundary, own: OwnApp | None) -> bool:
    """Whether every workspace named, and the acting person's team, is the organisation's.

    With `SLACK_TEAM_IDS` unset the boundary is the token's own workspace, so while `own` is not
    known (auth.test has not answered yet) nothing is inside.
    """
    home = own.home if own is not None else ""
    if not origin.places:
        return False
    if not all(boundary.slack_allows(t, e, home) for t, e in origin.places):
        return False
    # The workspaces named are ours by now, and so are their Grid orgs (Slack gives an org's
    # people `user_team: E…`); a guest from another organisation has a team of its own.
    named = {t for t, _ in origin.places if t} | {e for _, e in origin.places if e}
    listed_orgs = {e for _, e in origin.places if e and boundary.slack_allows("", e)}
    for actor in origin.actors:
        if actor in named:
            continue
        if actor.startswith("E"):
            allowed = boundary.slack_allows("", actor, home)
        else:
            # A workspace the body does not vouch for. Under a listed Grid org it may be one of
            # the org's other workspaces, which only `users.info` can tell: the turn asks it
            # (`person_inside`) before anything is written for this person.
            allowed = boundary.slack_allows(actor, "", home) or bool(listed_orgs)
        if not allowed:
            return False
    return True


def person_inside(
    profile: Mapping[str, Any], request_team: str, boundary: Boundary, own: OwnApp | None
) -> bool:
    """Whether a `users.info` profile is someone of the organisation: of the request's workspace,
    or of a workspace (or Grid org, from `enterprise_user`) inside the boundary."""
    team = _text(profile.get("team_id"))
    if not team or team == request_team:
        return True
    org = _text(_dict(profile.get("enterprise_user")).get("enterprise_id"))
    home = own.home if own is not None else ""
    return boundary.slack_allows(team, org, home)
