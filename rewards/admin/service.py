"""`core.admin`: the admin actions the chat, the CLI and the API share.

Each action is one unit of work (`Database.unit`, which joins a chat turn's own): the admin check
first (a refusal writes nothing), then the action through the service that owns it (the award
service's revocation, the nomination service's phases), its audit row (`rewards.admin.audit`)
and, where a member is affected, their direct-message notice (`rewards.admin.notices`), all
committed together or not at all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.admin import audit, notices
from rewards.admin.audit import Actor, AuditEntry
from rewards.admin.locks import MAX_REASON, LockState
from rewards.admin.locks import lock as lock_member
from rewards.admin.locks import unlock as unlock_member
from rewards.admin.revocations import KudosRevocation, names_of, revoke_kudos
from rewards.clock import Clock, SystemClock, as_utc
from rewards.errors import AlreadyAwarded, NotAllowed, NotAvailable, NotFound, UnknownMember
from rewards.services._subjects import load_people
from rewards.services.admins import is_admin
from rewards.services.awards import AwardService, AwardView
from rewards.services.nominations import CampaignView, NominationService
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, Member, NominationCampaign

_CAMPAIGN_WHAT = {
    audit.CAMPAIGN_VOTING: "start voting in a nomination campaign",
    audit.CAMPAIGN_CLOSE: "close a nomination campaign",
    audit.CAMPAIGN_CANCEL: "cancel a nomination campaign",
}
# (action, the campaign's status) that means another admin (or a double click) did it first.
_ALREADY = {
    (audit.CAMPAIGN_CLOSE, "closed"): "closed",
    (audit.CAMPAIGN_CANCEL, "cancelled"): "cancelled",
}


def _reason(reason: str | None) -> str | None:
    return " ".join((reason or "").split())[:MAX_REASON] or None


def _because(reason: str | None) -> str:
    if not reason:
        return ""
    return f" Reason: {reason}" + ("" if reason[-1] in ".!?" else ".")


def _points(n: int) -> str:
    return f"{n} point{'' if n == 1 else 's'}"


class AdminService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock | None,
        awards: AwardService,
        nominations: NominationService,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()
        self.awards = awards
        self.nominations = nominations

    async def is_admin(self, member_id: int) -> bool:
        async with self.db.read() as session:
            people = await load_people(session, [member_id])
        return member_id in people and is_admin(self.settings, people[member_id].subject)

    async def _authorise(
        self, actor: Actor, what: str, *, unless: bool = False, refusal: str | None = None
    ) -> bool:
        """A member must be an admin (`REWARDS_ADMINS`), `unless` something else entitles them;
        the CLI as the system and an admin API key (checked by its route) may act. Returns
        whether the actor acts as an admin."""
        if actor.member_id is None:
            return True
        async with self.db.read() as session:
            people = await load_people(session, [actor.member_id])
        if actor.member_id not in people:
            raise UnknownMember(f"I don't know a member with id {actor.member_id}.")
        if is_admin(self.settings, people[actor.member_id].subject):
            return True
        if not unless:
            raise NotAllowed(refusal or f"Only an admin can {what}.")
        return False

    # ---- revocations ----------------------------------------------------------------------

    async def revoke_award(
        self, award_id: int, reason: str | None, actor: Actor, *, allow_giver: bool = False
    ) -> AwardView:
        """Revoke an award (a reversal entry takes its points back), tell its member.
        `allow_giver`: the award's giver may revoke it too (the REST API's `by`, as the award
        service has always allowed); the chat's /revoke is for admins only."""
        reason = _reason(reason)
        async with self.db.unit():
            async with self.db.read() as session:
                found = await session.get(Award, award_id)
            if found is None:
                raise NotFound(f"There is no award with id {award_id}.")
            giver = actor.member_id == found.giver_id
            as_admin = await self._authorise(
                actor,
                "revoke awards",
                unless=allow_giver and giver,
                refusal=(
                    "Only the person who gave this award or an admin can revoke it."
                    if allow_giver
                    else None
                ),
            )
            async with self.db.read() as session:
                if found.revoked_at is not None:
                    who = await names_of(session, [found.revoked_by_id or 0])
                    by = f" by {who[found.revoked_by_id or 0]}" if who else ""
                    raise AlreadyAwarded(
                        f"Award {award_id} was already revoked{by} on "
                        f"{as_utc(found.revoked_at):%-d %b %Y %H:%M} UTC."
                    )
            view = await self.awards.revoke(
                award_id, actor.member_id, reason, api_key_id=actor.api_key_id
            )
            now = view.revoked_at or self.clock.now()
            lost = f" The {_points(view.points)} were taken back." if view.points else ""
            async with self.db.write() as session:
                await audit.record(
                    session,
                    actor,
                    audit.AWARD_REVOKE,
                    target_kind="award",
                    target_id=award_id,
                    target_label=f"{view.reward_name} of {view.member_name}",
                    reason=reason,
                    now=now,
                )
                await notices.record(
                    session,
                    self.settings,
                    key=f"revoked:award:{award_id}",
                    title=f"Your {view.reward_name} award was revoked",
                    told=[
                        notices.Told(
                            view.member_id,
                            f"{'An admin' if as_admin else view.giver_name or 'The giver'} "
                            f"revoked your {view.reward_name} award.{lost}" + _because(reason),
                        )
                    ],
                    now=now,
                )
        return view

    async def revoke_kudos(
        self, kudos_id: int, reason: str | None, actor: Actor
    ) -> KudosRevocation:
        """Revoke kudos (reversal entries take each receiver's points back), tell the receivers
        and the giver."""
        reason = _reason(reason)
        now = self.clock.now()
        async with self.db.unit():
            await self._authorise(actor, "revoke kudos")
            async with self.db.write() as session:
                done = await revoke_kudos(
                    session,
                    self.settings.timezone,
                    kudos_id,
                    by=actor.member_id,
                    reason=reason,
                    now=now,
                )
                await audit.record(
                    session,
                    actor,
                    audit.KUDOS_REVOKE,
                    target_kind="kudos",
                    target_id=kudos_id,
                    target_label=f"from {done.giver_name} to {done.receiver_names}",
                    reason=reason,
                    now=now,
                )
                told = [
                    notices.Told(
                        member_id,
                        f'An admin revoked the kudos {done.giver_name} sent you ("{done.message}").'
                        + (
                            f" The {_points(done.points[member_id])} were taken back."
                            if done.points.get(member_id)
                            else ""
                        )
                        + _because(reason),
                    )
                    for member_id, _ in done.receivers
                ]
                told.append(
                    notices.Told(
                        done.giver_id,
                        f"An admin revoked your kudos to {done.receiver_names} "
                        f'("{done.message}").' + _because(reason),
                    )
                )
                await notices.record(
                    session,
                    self.settings,
                    key=f"revoked:kudos:{kudos_id}",
                    title="Kudos were revoked",
                    told=told,
                    now=now,
                )
        return done

    # ---- locks -----------------------------------------------------------------------------

    async def lock(self, member_id: int, reason: str | None, actor: Actor) -> LockState:
        """Lock a member's giving: they can still receive, but not give kudos or badges,
        nominate or vote."""
        reason = _reason(reason)
        now = self.clock.now()
        async with self.db.unit():
            await self._authorise(actor, "lock members")
            if actor.member_id == member_id:
                raise NotAllowed("You can't lock yourself.")
            async with self.db.write() as session:
                state = await lock_member(session, member_id, reason, now)
                await self._record_lock_change(
                    session,
                    actor,
                    audit.MEMBER_LOCK,
                    state,
                    reason,
                    now,
                    title="Your giving is paused",
                    text="An admin paused your giving: you can still receive kudos and badges, "
                    "but you can't give kudos or badges, nominate or vote until it is lifted."
                    + _because(reason),
                )
        return state

    async def unlock(self, member_id: int, actor: Actor, reason: str | None = None) -> LockState:
        reason = _reason(reason)
        now = self.clock.now()
        async with self.db.unit():
            await self._authorise(actor, "unlock members")
            async with self.db.write() as session:
                state = await unlock_member(session, member_id)
                await self._record_lock_change(
                    session,
                    actor,
                    audit.MEMBER_UNLOCK,
                    state,
                    reason,
                    now,
                    title="Your giving is back",
                    text="An admin lifted the pause on your giving: you can give kudos and "
                    "badges, nominate and vote again.",
                )
        return state

    async def _record_lock_change(
        self,
        session: AsyncSession,
        actor: Actor,
        action: str,
        state: LockState,
        reason: str | None,
        now: datetime,
        *,
        title: str,
        text: str,
    ) -> None:
        """The audit row and the member's direct message of a lock or unlock, in its
        transaction."""
        await audit.record(
            session,
            actor,
            action,
            target_kind="member",
            target_id=state.member_id,
            target_label=f"{state.name} <{state.email}>",
            reason=reason,
            now=now,
        )
        await notices.record(
            session,
            self.settings,
            key=f"{action}:{state.member_id}:{now.isoformat()}",
            title=title,
            told=[notices.Told(state.member_id, text)],
            now=now,
        )

    async def locked_members(self) -> list[LockState]:
        """Every member whose giving is locked (a short list: an index-free scan is fine for
        an admin's occasional look, but it reads only locked rows' columns)."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(
                    col(Member.id),
                    col(Member.display_name),
                    col(Member.email),
                    col(Member.giving_locked_at),
                    col(Member.giving_lock_reason),
                )
                .where(col(Member.giving_locked_at).is_not(None))
                .order_by(col(Member.giving_locked_at))
            )
            return [
                LockState(int(i or 0), n, e, as_utc(at) if at else None, r)
                for i, n, e, at, r in rows.all()
            ]

    # ---- nomination campaigns --------------------------------------------------------------

    async def _campaign_action(
        self,
        action: str,
        campaign_id: int,
        actor: Actor,
        reason: str | None,
        now: datetime | None,
    ) -> CampaignView:
        now = as_utc(now or self.clock.now())
        async with self.db.unit():
            await self._authorise(actor, _CAMPAIGN_WHAT[action])
            async with self.db.read() as session:
                # The campaign's row stays locked until the unit commits: of two admins acting
                # at once, the second sees what the first did (and is told so) instead of
                # doing, or recording, it again.
                row = (
                    await session.execute(
                        select(NominationCampaign)
                        .where(col(NominationCampaign.id) == campaign_id)
                        .with_for_update()
                    )
                ).scalar_one_or_none()
                if row is None:
                    raise NotFound(f"There is no nomination campaign {campaign_id}.")
                status, closed_at = row.status, row.closed_at
            done = _ALREADY.get((action, status))
            if done is not None:
                when = f" on {as_utc(closed_at):%-d %b %Y %H:%M} UTC" if closed_at else ""
                raise NotAvailable(f"Campaign #{campaign_id} was already {done}{when}.")
            service = self.nominations
            if action == audit.CAMPAIGN_VOTING:
                view = await service.start_voting(campaign_id, by=actor.member_id, now=now)
            elif action == audit.CAMPAIGN_CLOSE:
                view = await service.close(campaign_id, by=actor.member_id, now=now)
            else:
                view = await service.cancel(campaign_id, by=actor.member_id, reason=reason or "")
            async with self.db.write() as session:
                await audit.record(
                    session,
                    actor,
                    action,
                    target_kind="campaign",
                    target_id=campaign_id,
                    target_label=f"{view.reward_name} campaign #{campaign_id}",
                    reason=reason,
                    now=now,
                )
        return view

    async def start_voting(
        self, campaign_id: int, actor: Actor, now: datetime | None = None
    ) -> CampaignView:
        """Close nominations now and start voting (the voters get the full voting time)."""
        return await self._campaign_action(audit.CAMPAIGN_VOTING, campaign_id, actor, None, now)

    async def close_campaign(
        self, campaign_id: int, actor: Actor, now: datetime | None = None
    ) -> CampaignView:
        return await self._campaign_action(audit.CAMPAIGN_CLOSE, campaign_id, actor, None, now)

    async def cancel_campaign(
        self, campaign_id: int, actor: Actor, reason: str | None = None
    ) -> CampaignView:
        return await self._campaign_action(
            audit.CAMPAIGN_CANCEL, campaign_id, actor, _reason(reason), None
        )

    # ---- the log ---------------------------------------------------------------------------

    async def audit_log(
        self,
        *,
        limit: int = 50,
        before_id: int | None = None,
        action: str | None = None,
        target_kind: str | None = None,
        target_id: int | None = None,
    ) -> list[AuditEntry]:
        return await audit.entries(
            self.db,
            limit=limit,
            before_id=before_id,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
        )
