"""What each export holds: its columns (in file order) and the query that produces its rows.

Every kind but `participation` is one statement ordered by a unique key (`key`, the labels of
the key's columns), so it can be read in chunks after the last key seen (`rewards.exports.
stream`) or through one server-side cursor. Member columns are the member's current email, name
and department (an export is a report for today's organisation, not a history of the directory).
Times are UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from rewards.exports.window import Window
from rewards.store.models import (
    Award,
    Kudos,
    KudosReceiver,
    KudosTagLink,
    LedgerEntry,
    Member,
    Nomination,
    NominationCampaign,
    Redemption,
    Reward,
    ShopItemRecord,
)


@dataclass(frozen=True)
class ExportKind:
    """One kind of export. `query(window)` selects the columns labelled as `columns`, ordered
    by the unique `key` (labels of `columns`); None for an aggregate (`participation`)."""

    name: str
    description: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    query: Callable[[Window], Select[Any]] | None = None

    @property
    def keyed(self) -> bool:
        return self.query is not None


def _kudos(w: Window) -> Select[Any]:
    giver, receiver = aliased(Member), aliased(Member)
    tags = (
        select(func.aggregate_strings(col(KudosTagLink.tag), " "))
        .where(col(KudosTagLink.kudos_id) == col(Kudos.id))
        .scalar_subquery()
    )
    points = (
        select(func.sum(col(LedgerEntry.points)))
        .where(
            col(LedgerEntry.kudos_id) == col(Kudos.id),
            col(LedgerEntry.member_id) == col(KudosReceiver.member_id),
            col(LedgerEntry.kind) == "kudos",
        )
        .scalar_subquery()
    )
    return cast(
        Select[Any],
        select(
            col(Kudos.id).label("kudos_id"),
            col(Kudos.created_at).label("created_at"),
            col(giver.email).label("giver_email"),
            col(giver.display_name).label("giver_name"),
            col(giver.department).label("giver_department"),
            col(KudosReceiver.member_id).label("receiver_id"),
            col(receiver.email).label("receiver_email"),
            col(receiver.display_name).label("receiver_name"),
            col(receiver.department).label("receiver_department"),
            points.label("points"),
            tags.label("tags"),
            col(Kudos.visibility).label("visibility"),
            col(Kudos.message).label("message"),
            col(Kudos.revoked_at).label("revoked_at"),
            col(Kudos.revoke_reason).label("revoke_reason"),
        )
        .join(KudosReceiver, col(KudosReceiver.kudos_id) == col(Kudos.id))
        .join(giver, col(giver.id) == col(Kudos.giver_id))
        .join(receiver, col(receiver.id) == col(KudosReceiver.member_id))
        .where(*w.where(col(Kudos.created_at)))
        .order_by(col(Kudos.id), col(KudosReceiver.member_id)),
    )


def _awards(w: Window) -> Select[Any]:
    member, giver, revoker = aliased(Member), aliased(Member), aliased(Member)
    return cast(
        Select[Any],
        select(
            col(Award.id).label("award_id"),
            col(Award.awarded_at).label("awarded_at"),
            col(Award.reward_id).label("reward_id"),
            col(Reward.name).label("reward_name"),
            col(member.email).label("member_email"),
            col(member.display_name).label("member_name"),
            col(member.department).label("department"),
            col(giver.email).label("giver_email"),
            col(Award.points).label("points"),
            col(Award.source).label("source"),
            col(Award.message).label("message"),
            col(Award.revoked_at).label("revoked_at"),
            col(revoker.email).label("revoked_by"),
            col(Award.revoke_reason).label("revoke_reason"),
        )
        .join(Reward, col(Reward.id) == col(Award.reward_id))
        .join(member, col(member.id) == col(Award.member_id))
        .outerjoin(giver, col(giver.id) == col(Award.giver_id))
        .outerjoin(revoker, col(revoker.id) == col(Award.revoked_by_id))
        .where(*w.where(col(Award.awarded_at)))
        .order_by(col(Award.id)),
    )


def _ledger(w: Window) -> Select[Any]:
    return cast(
        Select[Any],
        select(
            col(LedgerEntry.id).label("entry_id"),
            col(LedgerEntry.created_at).label("created_at"),
            col(Member.email).label("member_email"),
            col(Member.display_name).label("member_name"),
            col(Member.department).label("department"),
            col(LedgerEntry.kind).label("kind"),
            col(LedgerEntry.points).label("points"),
            col(LedgerEntry.award_id).label("award_id"),
            col(LedgerEntry.kudos_id).label("kudos_id"),
            col(LedgerEntry.note).label("note"),
        )
        .join(Member, col(Member.id) == col(LedgerEntry.member_id))
        .where(*w.where(col(LedgerEntry.created_at)))
        .order_by(col(LedgerEntry.id)),
    )


def _members(w: Window) -> Select[Any]:
    manager = aliased(Member)
    return cast(
        Select[Any],
        select(
            col(Member.id).label("member_id"),
            col(Member.email).label("email"),
            col(Member.display_name).label("display_name"),
            col(Member.department).label("department"),
            col(Member.job_code).label("job_code"),
            col(manager.email).label("manager_email"),
            col(Member.hire_date).label("hire_date"),
            col(Member.timezone).label("timezone"),
            col(Member.locale).label("locale"),
            col(Member.active).label("active"),
            col(Member.created_at).label("created_at"),
        )
        .outerjoin(manager, col(manager.id) == col(Member.manager_id))
        .where(*w.where(col(Member.created_at)))
        .order_by(col(Member.id)),
    )


def _nominations(w: Window) -> Select[Any]:
    nominator, nominee = aliased(Member), aliased(Member)
    return cast(
        Select[Any],
        select(
            col(Nomination.id).label("nomination_id"),
            col(Nomination.created_at).label("created_at"),
            col(Nomination.campaign_id).label("campaign_id"),
            col(NominationCampaign.reward_id).label("reward_id"),
            col(Reward.name).label("reward_name"),
            col(NominationCampaign.status).label("campaign_status"),
            col(nominator.email).label("nominator_email"),
            col(nominee.email).label("nominee_email"),
            col(nominee.display_name).label("nominee_name"),
            col(nominee.department).label("nominee_department"),
            col(Nomination.reason).label("reason"),
        )
        .join(NominationCampaign, col(NominationCampaign.id) == col(Nomination.campaign_id))
        .join(Reward, col(Reward.id) == col(NominationCampaign.reward_id))
        .join(nominator, col(nominator.id) == col(Nomination.nominator_id))
        .join(nominee, col(nominee.id) == col(Nomination.nominee_id))
        .where(*w.where(col(Nomination.created_at)))
        .order_by(col(Nomination.id)),
    )


def _redemptions(w: Window) -> Select[Any]:
    return cast(
        Select[Any],
        select(
            col(Redemption.id).label("redemption_id"),
            col(Redemption.requested_at).label("requested_at"),
            col(Member.email).label("member_email"),
            col(Member.display_name).label("member_name"),
            col(Member.department).label("department"),
            col(Redemption.item_id).label("item_id"),
            col(ShopItemRecord.name).label("item_name"),
            col(Redemption.cost).label("cost"),
            col(Redemption.state).label("state"),
            col(Redemption.note).label("note"),
            col(Redemption.decided_by).label("decided_by"),
            col(Redemption.decided_at).label("decided_at"),
            col(Redemption.reason).label("reason"),
            col(Redemption.fulfilled_by).label("fulfilled_by"),
            col(Redemption.fulfilled_at).label("fulfilled_at"),
        )
        .join(Member, col(Member.id) == col(Redemption.member_id))
        .join(ShopItemRecord, col(ShopItemRecord.id) == col(Redemption.item_id))
        .where(*w.where(col(Redemption.requested_at)))
        .order_by(col(Redemption.id)),
    )


def _kind(
    name: str, description: str, query: Callable[[Window], Select[Any]], *key: str
) -> ExportKind:
    columns = tuple(c.name for c in query(Window()).selected_columns)
    return ExportKind(name, description, columns, key, query)


PARTICIPATION_COLUMNS = (
    "department",
    "month",
    "members",
    "active_givers",
    "active_receivers",
    "kudos_given",
    "kudos_received",
)

KINDS: dict[str, ExportKind] = {
    kind.name: kind
    for kind in (
        _kind(
            "kudos",
            "One row per kudos and receiver (revoked ones too).",
            _kudos,
            "kudos_id",
            "receiver_id",
        ),
        _kind("awards", "One row per badge awarded (revoked ones too).", _awards, "award_id"),
        _kind("ledger", "One row per points ledger entry.", _ledger, "entry_id"),
        _kind("members", "One row per member (joined in the period).", _members, "member_id"),
        _kind("nominations", "One row per nomination.", _nominations, "nomination_id"),
        _kind("redemptions", "One row per shop redemption.", _redemptions, "redemption_id"),
        ExportKind(
            "participation",
            "Per department and month: active givers and receivers, kudos given and received.",
            PARTICIPATION_COLUMNS,
            (),
        ),
    )
}


def after_key(query: Select[Any], key: tuple[str, ...], last: tuple[Any, ...]) -> Select[Any]:
    """`query` restricted to rows after the key `last` (keyset paging on its order)."""
    columns = [query.selected_columns[name] for name in key]
    if len(columns) == 1:
        return query.where(columns[0] > last[0])
    first, second = columns
    return query.where(first >= last[0], ~and_(first == last[0], second <= last[1]))


def kind_named(name: str) -> ExportKind:
    from rewards.errors import InvalidInput

    found = KINDS.get(name.strip().casefold())
    if found is None:
        raise InvalidInput(
            f"I don't know the export {name.strip()!r}; try one of: {', '.join(KINDS)}."
        )
    return found
