"""Tables of the rewards store.

Design notes:
- Times are `UTCDateTime`; the member's zone is applied in services, never in storage.
- The points ledger is append-only: balances and leaderboards are sums over it; revocation writes a
  reversal entry.
- `award.award_key` is unique. It encodes what may not happen twice (once ever, once per timeframe
  bucket, once per draw, once per client idempotency key), so duplicates are refused by the
  database itself rather than by a check-then-insert that races.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from rewards.store.types import JSONType, UTCDateTime


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _time(*, nullable: bool = False, index: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=_utcnow, sa_type=UTCDateTime, nullable=False, index=index)


class Member(SQLModel, table=True):
    __tablename__ = "member"
    __table_args__ = (
        # The members who chose to be shown: with LEADERBOARD_DEFAULT=hidden a board can start
        # from them (a counter lookup each) instead of skipping hidden rows down a ranking index.
        Index(
            "ix_member_leaderboard_shown",
            "id",
            postgresql_where=text("leaderboard_choice = 'shown'"),
            sqlite_where=text("leaderboard_choice = 'shown'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    display_name: str = Field(max_length=200)
    job_code: str | None = Field(default=None, max_length=100, index=True)
    department: str | None = Field(default=None, max_length=200, index=True)
    manager_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="SET NULL"), index=True),
    )
    birthday_month: int | None = None
    birthday_day: int | None = None
    birth_year: int | None = None
    hire_date: date | None = None
    timezone: str | None = Field(default=None, max_length=64)
    locale: str | None = Field(default=None, max_length=35)
    active: bool = True
    # The import's (HR's, by team) privacy defaults; the member's own choices below win.
    leaderboard_opt_out: bool = False
    celebrations_opt_out: bool = False
    created_at: datetime = _time()
    updated_at: datetime = _time()
    # Set by an admin's `/lock`: the member can still receive, but not give (kudos, badges,
    # nominations, votes). Read with the member, so the kudos path checks it for free.
    giving_locked_at: datetime | None = _time(nullable=True)
    giving_lock_reason: str | None = Field(default=None, max_length=500)
    # The member's own choices from `/me settings` (rewards.privacy): None follows the defaults
    # (LEADERBOARD_DEFAULT, the import's flags). The import never writes these.
    leaderboard_choice: str | None = Field(default=None, max_length=10)  # shown | hidden
    celebrations: str | None = Field(default=None, max_length=10)  # public | private | off
    reply_language: str | None = Field(default=None, max_length=35)
    # Set when the member was forgotten (`/forget me`): the row is an anonymous placeholder that
    # keeps the ledger and other people's history whole.
    forgotten_at: datetime | None = _time(nullable=True)


class MemberGroup(SQLModel, table=True):
    __tablename__ = "member_group"
    __table_args__ = (Index("ix_member_group_name", "name"),)

    member_id: int = Field(
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), primary_key=True)
    )
    name: str = Field(max_length=200, primary_key=True)


class PlatformAccount(SQLModel, table=True):
    __tablename__ = "platform_account"
    __table_args__ = (
        UniqueConstraint("platform", "tenant", "user_id", name="uq_platform_account"),
        Index("ix_platform_account_username", "platform", "username"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("member.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    platform: str = Field(max_length=20)
    tenant: str = Field(default="", max_length=100)
    user_id: str = Field(max_length=200)
    username: str | None = Field(default=None, max_length=200)
    created_at: datetime = _time()


class RewardCategory(SQLModel, table=True):
    __tablename__ = "reward_category"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)


class RewardGroup(SQLModel, table=True):
    __tablename__ = "reward_group"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)


class RewardType(SQLModel, table=True):
    __tablename__ = "reward_type"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)


class Reward(SQLModel, table=True):
    """A catalogue entry. `definition` keeps the whole validated JSON, so nothing is lost."""

    __tablename__ = "reward"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    name: str = Field(max_length=200)
    description: str | None = None
    points: int = 10
    reward_type_id: int = Field(foreign_key="reward_type.id", index=True)
    category_id: int = Field(foreign_key="reward_category.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="reward_group.id")
    multiple: bool = False
    timeframe: str | None = Field(default=None, max_length=20)
    icon: str | None = None
    definition: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    fingerprint: str = Field(max_length=64)
    enabled: bool = True
    created_at: datetime = _time()
    updated_at: datetime = _time()


class Award(SQLModel, table=True):
    __tablename__ = "award"
    __table_args__ = (
        # Member-first covering indexes serve long leaderboard windows and a member's history.
        Index("ix_award_member_time_revoked", "member_id", "awarded_at", "revoked_at"),
        # Covers the badges leaderboard of a window without touching the table.
        Index("ix_award_time_member", "awarded_at", "member_id", "revoked_at"),
        # Small partial indexes (most awards come from rules, with neither): the badges a person
        # gave or revoked, found when they ask to be forgotten (`rewards.privacy.erasure`).
        Index(
            "ix_award_giver",
            "giver_id",
            postgresql_where=text("giver_id IS NOT NULL"),
            sqlite_where=text("giver_id IS NOT NULL"),
        ),
        Index(
            "ix_award_revoked_by",
            "revoked_by_id",
            postgresql_where=text("revoked_by_id IS NOT NULL"),
            sqlite_where=text("revoked_by_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    reward_id: int = Field(foreign_key="reward.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    giver_id: int | None = Field(default=None, foreign_key="member.id")
    message: str | None = None
    points: int = 0
    source: str = Field(max_length=20)
    award_key: str = Field(max_length=300, unique=True)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    awarded_at: datetime = _time()
    revoked_at: datetime | None = _time(nullable=True)
    revoked_by_id: int | None = Field(default=None, foreign_key="member.id")
    revoke_reason: str | None = None
    # The REST API key that gave (or revoked) it, when it came through the API: the audit trail.
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    revoked_by_key_id: int | None = Field(default=None, foreign_key="api_key.id")


class AnnouncePending(SQLModel, table=True):
    """Rule awards whose announcement is not recorded yet: one row per batch transaction of the
    batch award (up to a thousand award ids), written in that transaction and deleted in the one
    that records the announcement (`announcements.announce_awards`). A crash between the two
    leaves the row, and the next run announces its awards: exactly once. A row per batch rather
    than a mark per award, because clearing 33,000 marks was an UPDATE of 33,000 award rows (new
    row versions in every award index) where deleting these is a few dozen rows."""

    __tablename__ = "announce_pending"

    id: int | None = Field(default=None, primary_key=True)
    reward_id: int = Field(foreign_key="reward.id", index=True)
    run_key: str = Field(max_length=300)
    award_ids: list[int] = Field(default_factory=list, sa_type=JSONType)
    created_at: datetime = _time()


class LedgerEntry(SQLModel, table=True):
    """Append-only. Kinds: award, kudos, reversal, adjustment."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        # Covers the points leaderboard of a window: an index-only range scan.
        Index("ix_ledger_time_member_points", "created_at", "member_id", "points"),
        Index("ix_ledger_member_time_points", "member_id", "created_at", "points"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    points: int
    kind: str = Field(max_length=20)
    award_id: int | None = Field(default=None, foreign_key="award.id", index=True)
    kudos_id: int | None = Field(default=None, foreign_key="kudos.id", index=True)
    note: str | None = None
    created_at: datetime = _time()


class Kudos(SQLModel, table=True):
    __tablename__ = "kudos"
    __table_args__ = (
        Index("ix_kudos_giver_time", "giver_id", "created_at"),
        Index("ix_kudos_time_giver", "created_at", "giver_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    giver_id: int = Field(foreign_key="member.id")
    message: str
    visibility: str = Field(default="public", max_length=10)
    channel: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    created_at: datetime = _time()
    # The REST API key that sent it, when it came through the API: the audit trail.
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    # An admin's revocation: the points went back through reversal entries; the kudos stays.
    revoked_at: datetime | None = _time(nullable=True)
    revoked_by_id: int | None = Field(default=None, foreign_key="member.id")
    revoke_reason: str | None = None


class KudosReceiver(SQLModel, table=True):
    __tablename__ = "kudos_receiver"
    __table_args__ = (
        Index("ix_kudos_receiver_time_member", "created_at", "member_id"),
        Index("ix_kudos_receiver_member_time", "member_id", "created_at"),
    )

    kudos_id: int = Field(
        sa_column=Column(Integer, ForeignKey("kudos.id", ondelete="CASCADE"), primary_key=True)
    )
    member_id: int = Field(sa_column=Column(Integer, ForeignKey("member.id"), primary_key=True))
    created_at: datetime = _time()


class KudosTag(SQLModel, table=True):
    """A tag; `name` is the normalised key (`#TeamWork` and `teamwork` are one tag)."""

    __tablename__ = "kudos_tag"

    name: str = Field(max_length=50, primary_key=True)
    label: str = Field(max_length=50)
    description: str | None = None
    predefined: bool = False
    created_at: datetime = _time()


class KudosTagLink(SQLModel, table=True):
    __tablename__ = "kudos_tag_link"
    __table_args__ = (Index("ix_kudos_tag_link_tag_time", "tag", "created_at"),)

    kudos_id: int = Field(
        sa_column=Column(Integer, ForeignKey("kudos.id", ondelete="CASCADE"), primary_key=True)
    )
    tag: str = Field(sa_column=Column(ForeignKey("kudos_tag.name"), primary_key=True))
    created_at: datetime = _time()


class KudosAllowance(SQLModel, table=True):
    """What a giver has used of their kudos allowance in the current period (`period`, e.g.
    "day:2026-12-07" in their own time zone). One row per giver, overwritten when a new period
    starts (use it or lose it), so the table never grows past the number of givers."""

    __tablename__ = "kudos_allowance"

    giver_id: int = Field(sa_column=Column(Integer, ForeignKey("member.id"), primary_key=True))
    period: str = Field(max_length=20)
    used: int = 0


class ConversationState(SQLModel, table=True):
    """Where one person's chat conversation with the bot stands, so any replica can continue it.

    One row per (platform, tenant, chat, user_id). `nonce` changes on every step and is carried in
    the card's action tokens: a click whose nonce no longer matches is a stale or double click.
    Expired rows are ignored and deleted on the next load.
    """

    __tablename__ = "conversation_state"
    __table_args__ = (
        UniqueConstraint("platform", "tenant", "chat", "user_id", name="uq_conversation_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    tenant: str = Field(default="", max_length=100)
    chat: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    dialog: str = Field(max_length=40)
    step: str = Field(max_length=40)
    values: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    nonce: str = Field(max_length=16)
    expires_at: datetime = _time(index=True)
    updated_at: datetime = _time()


class ChannelReference(SQLModel, table=True):
    """How to reach a chat or channel outside a conversation turn (proactive posts, DMs).

    `reference` is the platform's own addressing data (a Teams conversation reference with its
    service URL, a Slack channel id, a Telegram chat id), kept as JSON so any replica can post.
    """

    __tablename__ = "channel_reference"
    __table_args__ = (
        UniqueConstraint("platform", "tenant", "chat_id", name="uq_channel_reference"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    tenant: str = Field(default="", max_length=100)
    chat_id: str = Field(max_length=300)
    kind: str = Field(default="channel", max_length=20)  # channel | group | personal
    name: str | None = Field(default=None, max_length=200)
    member_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), index=True),
    )
    reference: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    updated_at: datetime = _time()


class InboundEvent(SQLModel, table=True):
    """Platform deliveries already processed: retried webhooks are absorbed by the unique key."""

    __tablename__ = "inbound_event"
    __table_args__ = (UniqueConstraint("platform", "event_id", name="uq_inbound_event"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    event_id: str = Field(max_length=200)
    received_at: datetime = _time(index=True)


class LotteryRun(SQLModel, table=True):
    """One recorded draw: enough to re-run it and get the same winners (`rewards lottery verify`).

    `draw_key` (reward + period bucket or job fire time) is unique, so a restart or a second
    replica can never draw twice for the same period.
    """

    __tablename__ = "lottery_run"

    id: int | None = Field(default=None, primary_key=True)
    reward_id: int = Field(foreign_key="reward.id", index=True)
    draw_key: str = Field(max_length=200, unique=True)
    seed: str = Field(max_length=64)
    eligible_count: int
    eligible_hash: str = Field(max_length=64)
    winners: list[int] = Field(default_factory=list, sa_type=JSONType)
    parameters: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    drawn_at: datetime = _time()


class MemberActivity(SQLModel, table=True):
    """One row per member per local day with any activity (chat, API login): login streaks."""

    __tablename__ = "member_activity"

    member_id: int = Field(
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), primary_key=True)
    )
    day: date = Field(primary_key=True)
    first_seen_at: datetime = _time()


class MemberStreak(SQLModel, table=True):
    """Each member's latest run of consecutive active days (`first_day` .. `last_day`, local
    days), kept by `rewards.rules.activity.record_activity` as activity is recorded, so the login
    streak of 100,000 members is a read of this table instead of a scan of `member_activity`."""

    __tablename__ = "member_streak"

    member_id: int = Field(
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), primary_key=True)
    )
    first_day: date
    last_day: date


class AttendanceRecord(SQLModel, table=True):
    """Attendance data sets loaded by `rewards attendance import` or the API; one row per
    (data set, member, day)."""

    __tablename__ = "attendance_record"
    __table_args__ = (Index("ix_attendance_dataset_day", "dataset", "day"),)

    dataset: str = Field(max_length=100, primary_key=True)
    member_id: int = Field(
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), primary_key=True)
    )
    day: date = Field(primary_key=True)
    present: bool = True


class MetricRecord(SQLModel, table=True):
    """Numeric data sets (sales counts, training scores...) loaded by `rewards data import` or the
    API: one value per (data set, member, day, column). BestSeller sums a column over a period."""

    __tablename__ = "metric_record"
    __table_args__ = (Index("ix_metric_dataset_name_day", "dataset", "name", "day"),)

    dataset: str = Field(max_length=100, primary_key=True)
    member_id: int = Field(
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), primary_key=True)
    )
    day: date = Field(primary_key=True)
    name: str = Field(max_length=100, primary_key=True)
    value: float = 0.0


class JobRun(SQLModel, table=True):
    """One claimed scheduler run. (job_id, fire_time) is unique, so among all processes sharing
    the database exactly one runs each fire time; the others find the claim and skip.

    The owner refreshes `heartbeat_at` while the run is in progress. A "running" claim whose
    heartbeat has stopped belongs to a dead process: another process takes it over (new
    `claimed_by`, `attempts` + 1) and runs the idempotent job body again, so no run is lost.
    """

    __tablename__ = "job_run"
    __table_args__ = (
        UniqueConstraint("job_id", "fire_time", name="uq_job_run"),
        Index("ix_job_run_status_heartbeat", "status", "heartbeat_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=200)
    fire_time: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # What the job body is told (lottery draw keys derive from it): "<job id>:<fire time>" for
    # scheduled runs, "manual:<time>" for `rewards jobs run`. A takeover re-runs with the same key.
    run_key: str = Field(max_length=200)
    claimed_by: str = Field(max_length=200)
    claimed_at: datetime = _time()
    heartbeat_at: datetime = _time()
    attempts: int = 1
    finished_at: datetime | None = _time(nullable=True)
    status: str = Field(default="running", max_length=20)
    detail: str | None = Field(default=None, max_length=4000)


class Announcement(SQLModel, table=True):
    """Results to announce (winners, birthdays, anniversaries, an award): written in the same
    flow as the awards, delivered later by the notifier through `Delivery` rows, so a platform
    that is down delays an announcement but never loses or repeats the award."""

    __tablename__ = "announcement"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    reward_id: int | None = Field(default=None, foreign_key="reward.id", index=True)
    kind: str = Field(max_length=30)
    title: str = Field(max_length=300)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = _time(index=True)


class Delivery(SQLModel, table=True):
    """One announcement to one place: a channel or chat, a member's direct chat, or an email.

    Unique per (announcement, channel, target), so enqueuing twice sends once. The notifier
    retries failures with back-off (`attempts`, `next_attempt_at`) and records the last error;
    after the last attempt the status is "failed" and stays visible."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("announcement_id", "channel", "target", name="uq_delivery"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(
        sa_column=Column(Integer, ForeignKey("announcement.id", ondelete="CASCADE"), nullable=False)
    )
    channel: str = Field(max_length=20)
    target: str = Field(max_length=300)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = _time()
    last_error: str | None = Field(default=None, max_length=2000)
    sent_at: datetime | None = _time(nullable=True)
    message_ref: str | None = Field(default=None, max_length=300)
    # Who holds the lease (a random token per claim): every write after the claim, and the
    # re-check right before sending, applies only while the token is still the caller's.
    lease_token: str | None = Field(default=None, max_length=36)


class NominationCampaign(SQLModel, table=True):
    """One run of a Nomination Badge: nominating, then voting, then closed (or cancelled).

    `key` is unique (the job's run key, or the admin's request), so a job firing on two replicas,
    or an admin clicking twice, opens one campaign. Phase times are stored, so any process moves
    the phases on. `messages` keeps the posted cards (platform, chat, message id) to update them.
    """

    __tablename__ = "nomination_campaign"
    __table_args__ = (Index("ix_campaign_status_reward", "status", "reward_id"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    reward_id: int = Field(foreign_key="reward.id")
    status: str = Field(default="nominating", max_length=20)
    opened_by: int | None = Field(default=None, foreign_key="member.id")
    opened_at: datetime = _time()
    nominations_close_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    voting_close_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    closed_at: datetime | None = _time(nullable=True)
    closed_by: int | None = Field(default=None, foreign_key="member.id")
    outcome: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    messages: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)


class Nomination(SQLModel, table=True):
    """A nominator's nomination of a nominee, with a reason. Unique per (campaign, nominator,
    nominee): a person nominated by several people is one candidate with several reasons."""

    __tablename__ = "nomination"
    __table_args__ = (
        UniqueConstraint("campaign_id", "nominator_id", "nominee_id", name="uq_nomination"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("nomination_campaign.id", ondelete="CASCADE"), nullable=False
        )
    )
    nominator_id: int = Field(foreign_key="member.id")
    nominee_id: int = Field(foreign_key="member.id", index=True)
    reason: str = Field(max_length=1000)
    created_at: datetime = _time()


class NominationVote(SQLModel, table=True):
    """A vote. Unique per (campaign, voter, slot) with slot < max_votes_per_user, so concurrent
    clicks can never exceed the limit; changing a vote updates the slot in place."""

    __tablename__ = "nomination_vote"
    __table_args__ = (
        UniqueConstraint("campaign_id", "voter_id", "slot", name="uq_vote_slot"),
        UniqueConstraint("campaign_id", "voter_id", "nominee_id", name="uq_vote_nominee"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("nomination_campaign.id", ondelete="CASCADE"), nullable=False
        )
    )
    voter_id: int = Field(foreign_key="member.id")
    slot: int = 0
    nominee_id: int = Field(foreign_key="member.id")
    cast_at: datetime = _time()


class WorkflowEnrollment(SQLModel, table=True):
    """A member working through a Workflow Badge. `cycle` counts re-enrolments (a `multiple`
    workflow can be completed again); unique per (reward, member, cycle)."""

    __tablename__ = "workflow_enrollment"
    __table_args__ = (
        UniqueConstraint("reward_id", "member_id", "cycle", name="uq_workflow_enrollment"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reward_id: int = Field(foreign_key="reward.id")
    member_id: int = Field(
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), nullable=False)
    )
    cycle: int = 1
    status: str = Field(default="active", max_length=20)
    enrolled_at: datetime = _time()
    completed_at: datetime | None = _time(nullable=True)
    # Indexed: SQLite's plan for a multi-row (or upsert) insert into `award` probes this
    # foreign key, which without an index is a scan of every enrolment.
    award_id: int | None = Field(default=None, foreign_key="award.id", index=True)


class WorkflowStepDone(SQLModel, table=True):
    """A completed step of an enrolment; the primary key makes completing it twice a no-op."""

    __tablename__ = "workflow_step_done"

    enrollment_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("workflow_enrollment.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    step_index: int = Field(primary_key=True)
    step: str = Field(max_length=200)
    done_at: datetime = _time()
    source: str = Field(default="evaluation", max_length=20)
    done_by: int | None = Field(default=None, foreign_key="member.id")


class ApiKey(SQLModel, table=True):
    """A REST API key. Only the SHA-256 of the key is kept: the key itself is shown once, at
    creation. `scope` is read, write or admin (each includes the ones before it)."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    key_hash: str = Field(max_length=64, unique=True)
    scope: str = Field(max_length=10)
    created_at: datetime = _time()
    last_used_at: datetime | None = _time(nullable=True)
    revoked_at: datetime | None = _time(nullable=True)


class ApiIdempotency(SQLModel, table=True):
    """The first response to a write sent with an `Idempotency-Key`, per API key, so a retry gets
    the same answer and changes nothing; the same key with another request (`fingerprint`) is
    refused. `status` 0 marks a request still in progress."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("api_key_id", "key", name="uq_api_idempotency"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(
        sa_column=Column(Integer, ForeignKey("api_key.id", ondelete="CASCADE"), nullable=False)
    )
    key: str = Field(max_length=200)
    route: str = Field(max_length=300)
    status: int = 0
    body: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    created_at: datetime = _time()
    # SHA-256 (hex) of method, route and canonical body; None on rows from before it was kept
    # (last: the column was added by migration 0018).
    fingerprint: str | None = Field(default=None, max_length=64)


class OutboxEvent(SQLModel, table=True):
    """A domain event for the message broker, written in the same transaction as the change it
    describes (the transactional outbox): if the change commits, the event exists; if it rolls
    back, so does the event. The relay publishes pending rows in id order and stamps
    `published_at` once the broker has confirmed them, so a broker outage delays events and
    loses none. `claimed_until` is a lease, so two relays never publish the same row at once.

    Rows are written only while the event manager is on (`ENABLE_EVENT_MANAGER` and the
    `events` extra); published rows older than a week are pruned by the relay.
    """

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_pending", "published_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, unique=True)
    type: str = Field(max_length=100)
    occurred_at: datetime = _time()
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    published_at: datetime | None = _time(nullable=True)
    claimed_until: datetime | None = _time(nullable=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)


class EventHook(SQLModel, table=True):
    """An event whose hooks (Automated Badges, workflow evaluation) are still to run, written in
    the same transaction as the kudos, award or first activity that caused it (`rewards.hooks`).

    The process that wrote it runs it right after the commit, after the turn's reply; a row left
    by a crashed process is claimed by the next poll once its lease (`claimed_until`) has run
    out. A handled row is deleted, so the table holds only pending work.
    """

    __tablename__ = "event_hook"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    member_id: int
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    occurrence: str | None = Field(default=None, max_length=200)
    created_at: datetime = _time()
    claimed_until: datetime | None = _time(nullable=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)


class ApiAudit(SQLModel, table=True):
    """One row per API write (any method but GET/HEAD/OPTIONS) by an authenticated key: which key,
    what it asked for, and the answer's status. Kept so an admin can see who changed what; refused
    writes (403, 422) are recorded too, since attempts are what an audit is for."""

    __tablename__ = "api_audit"
    __table_args__ = (Index("ix_api_audit_key_time", "api_key_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(
        sa_column=Column(Integer, ForeignKey("api_key.id", ondelete="CASCADE"), nullable=False)
    )
    method: str = Field(max_length=10)
    path: str = Field(max_length=300)
    status: int = 0
    created_at: datetime = _time(index=True)


class AdminAudit(SQLModel, table=True):
    """One row per admin action (revoke, lock, unlock, a campaign's phase), from the chat, the CLI
    or the API, written in the action's own transaction: an action is never done unrecorded, and
    a refused or failed one leaves no row."""

    __tablename__ = "admin_audit"
    __table_args__ = (Index("ix_admin_audit_target", "target_kind", "target_id"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _time(index=True)
    via: str = Field(max_length=10)  # chat, cli, api
    actor: str = Field(max_length=320)  # who, as a person would name them
    actor_member_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="SET NULL"), nullable=True),
    )
    api_key_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("api_key.id", ondelete="SET NULL"), nullable=True),
    )
    action: str = Field(max_length=40)
    target_kind: str = Field(max_length=20)
    target_id: int
    target_label: str = Field(default="", max_length=300)
    reason: str | None = Field(default=None, max_length=500)


class LinkCode(SQLModel, table=True):
    """A one-time code that joins a chat account on another platform to a member (`/link`).

    Only the code's SHA-256 is stored. A code lives 10 minutes and is spent by its first use
    (`used_at`), claimed with a conditional update so two redemptions cannot both succeed.
    """

    __tablename__ = "link_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    member_id: int = Field(
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), nullable=False)
    )
    platform: str = Field(max_length=20)
    created_at: datetime = _time()
    expires_at: datetime = _time(index=True)
    used_at: datetime | None = _time(nullable=True)


class CatalogVersion(SQLModel, table=True):
    """One row (id 1) whose `version` every catalogue load that changes a reward bumps, in the
    load's transaction (`rewards.services.catalog.bump_version`). Each process caches the stored
    definitions and checks this number once per turn, so every replica sees a load at its next
    turn without re-reading the catalogue on every one."""

    __tablename__ = "catalog_version"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    version: int = 0


class MembershipVersion(SQLModel, table=True):
    """One row (id 1) whose `version` every statement that changes a member, their groups or
    their platform accounts bumps, in that statement's transaction (PostgreSQL triggers, added by
    migration 0023). A process may keep the people a Slack kudos looked up for its next kudos
    (`rewards.services.members.remember_accounts`); that kudos' statement writes nothing unless
    the version is still the one the rows were read with (`rewards.store.db.Claim`)."""

    __tablename__ = "membership_version"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))


class LeaderboardCounter(SQLModel, table=True):
    """A member's totals in one calendar period (in `TIMEZONE`): the leaderboards' read model
    (rewards/leaderboards/). Kept in the same transaction as the award, kudos or ledger row it
    counts, so it is never stale; `rewards leaderboard rebuild` recomputes it.

    `dim` narrows the count: "" is everything, "c<id>" one reward category, "t:<tag>" one kudos
    tag. `period_start` is the local first day of the week/month/quarter/year (1970-01-01 for
    all time). One row carries every metric (a column each) rather than a row per metric: an
    award adds its badge and its points to the same row, which halves the rows a sweep writes.
    Each metric has its own ranking index, partial (`> 0`, what a board shows), so "top N of
    this period" is a backward range scan by value and a row enters only the indexes of the
    metrics it has: an award row is not in the kudos indexes, a kudos tag row not in badges.
    """

    __tablename__ = "leaderboard_counter"
    __table_args__ = tuple(
        Index(
            f"ix_leaderboard_counter_{metric}",
            "period",
            "period_start",
            "dim",
            metric,
            postgresql_where=text(f"{metric} > 0"),
            sqlite_where=text(f"{metric} > 0"),
        )
        for metric in ("points", "badges", "kudos", "kudos_given")
    )

    period: str = Field(max_length=8, primary_key=True)
    period_start: date = Field(primary_key=True)
    dim: str = Field(default="", max_length=60, primary_key=True)
    member_id: int = Field(primary_key=True)
    points: int = Field(default=0, sa_type=BigInteger)
    badges: int = Field(default=0, sa_type=BigInteger)
    kudos: int = Field(default=0, sa_type=BigInteger)
    kudos_given: int = Field(default=0, sa_type=BigInteger)


class LeaderboardCounterState(SQLModel, table=True):
    """One row once the counters have been built: the zone they were bucketed in. A missing row
    (a database migrated from before the counters) or another zone makes start-up rebuild them."""

    __tablename__ = "leaderboard_counter_state"

    id: int = Field(default=1, primary_key=True)
    timezone: str = Field(max_length=64)
    rebuilt_at: datetime = _time()


# ----------------------------------------------------------------------------------------------
# The rewards shop (rewards/economy/shop): items, redemptions and what each member has spent.


class ShopItemRecord(SQLModel, table=True):
    """An item of the rewards shop, as loaded from the shop file (`rewards shop load`).

    `stock` is the item's stock as the file gives it (None: unlimited); `stock_left` is what can
    still be redeemed. A redemption takes one with a conditional decrement (``... WHERE stock_left
    > 0``), a rejection or cancellation gives it back, so two redeemers can never both take the
    last one. `available_to` holds the permission entries (the catalogue's `awardee` shape);
    `enabled` is false for an item no longer in the file (kept: redemptions refer to it)."""

    __tablename__ = "shop_item"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    cost: int = Field(sa_type=BigInteger)
    stock: int | None = None
    stock_left: int | None = None
    per_member_limit: int | None = None
    limit_period: str | None = Field(default=None, max_length=10)
    approval: bool = False
    icon: str | None = Field(default=None, max_length=2000)
    available_to: list[Any] = Field(default_factory=list, sa_type=JSONType)
    enabled: bool = True
    updated_at: datetime = _time()


class Redemption(SQLModel, table=True):
    """A member spending points on a shop item: requested -> approved -> fulfilled, or rejected /
    cancelled. `cost` is what was debited (the item's cost at the time); a rejection or a
    cancellation refunds it. Who decided and when are kept for the audit trail."""

    __tablename__ = "redemption"
    __table_args__ = (
        Index("ix_redemption_member_item", "member_id", "item_id", "requested_at"),
        Index("ix_redemption_state", "state", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="shop_item.id")
    member_id: int = Field(foreign_key="member.id")
    cost: int = Field(sa_type=BigInteger)
    note: str | None = Field(default=None, max_length=500)
    state: str = Field(max_length=12)
    approval: bool = False
    requested_at: datetime = _time()
    decided_by: str | None = Field(default=None, max_length=320)
    decided_at: datetime | None = _time(nullable=True)
    reason: str | None = Field(default=None, max_length=500)
    fulfilled_by: str | None = Field(default=None, max_length=320)
    fulfilled_at: datetime | None = _time(nullable=True)


class MemberWallet(SQLModel, table=True):
    """What a member has spent in the shop (redemptions requested, approved or fulfilled).

    Earned points stay in the ledger and its counters (leaderboards never lose them); the
    spendable balance is earned minus `spent`. The row is also the member's lock: a redemption,
    a refund and a grant lock it first (``FOR UPDATE`` on PostgreSQL; SQLite's writer lock
    serialises them anyway), so concurrent redemptions cannot overdraw."""

    __tablename__ = "member_wallet"

    member_id: int = Field(
        sa_column=Column(Integer, ForeignKey("member.id", ondelete="CASCADE"), primary_key=True)
    )
    spent: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = _time()
