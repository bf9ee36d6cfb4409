"""A deterministic synthetic organisation: members, a small catalogue and ~400 days of activity.

Why synthetic and seeded: a benchmark must be repeatable on any machine and comparable across
commits, so the same seed always yields byte-for-byte the same rows. The mix aims at what a
real deployment accumulates rather than at uniform noise, because leaderboard plans depend on it:

- activity is heavier on weekdays and in (mostly American) working hours, and grows slowly over
  time, so the week/month/quarter windows hold realistic fractions of the ledger;
- who receives and who gives is skewed (a popular few, a long tail), so group-by produces many
  small groups and a few large ones, as in real recognition data;
- ~30% of ledger entries are badge awards (each with its `award` row), ~65% are kudos credits
  (one per receiver, with `kudos`, `kudos_receiver` and `kudos_tag_link` rows), ~1% are reversals
  of earlier awards (the award gets `revoked_at`) and the rest are manual adjustments;
- ~2% of members opted out of leaderboards and ~1% are inactive (left the company), both of
  which the leaderboards must skip.

Rows are kept as plain tuples with times as integer UTC epoch seconds; the loaders convert them
to what each database driver wants. Ids are assigned in time order, as an append-only ledger
written by the service would have them.
"""

from __future__ import annotations

import hashlib
import json
import random
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

# The fixed "now" of every run: Wednesday 2026-11-18 15:00 UTC, as in the test suite's clock.
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())
HISTORY_DAYS = 400
DEFAULT_SEED = 20261118
DAY = 86_400


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Ada Alan Alice Amara Ana Andrea Arjun Ben Bianca Carla Carlos Chen Chloe Dan Daria David "
    "Diego Elena Emma Ethan Fatima Felix Grace Hana Hugo Ines Isaac Ivan Jade James Javier "
    "Julia Kai Kenji Laura Leo Lina Lucas Maya Mei Mia Noah Nora Olga Omar Paula Priya Rafael "
    "Rosa Sam Sara Sofia Tariq Tom Uma Victor Wei Yara Yusuf Zoe"
)
LAST_NAMES = _words(
    "Adams Ahmed Alvarez Baker Bauer Brown Castro Chen Clark Costa Cruz Davis Diaz Evans "
    "Fischer Garcia Gomez Gupta Hall Hernandez Ito Jensen Johnson Kim Klein Kumar Lee Lopez "
    "Martin Martinez Meyer Miller Moore Muller Nguyen Novak Okafor Park Patel Perez Petrov "
    "Reyes Rossi Ruiz Sanchez Santos Schmidt Silva Singh Smith Suzuki Tanaka Taylor Thomas "
    "Torres Wagner Walker Wang Weber Williams Wilson Wong Young Zhang"
)

# (department, relative head count, job-code prefix)
DEPARTMENTS: tuple[tuple[str, int, str], ...] = (
    ("Engineering", 22, "ENG"),
    ("Sales", 14, "SLS"),
    ("Customer Support", 12, "SUP"),
    ("Operations", 9, "OPS"),
    ("Marketing", 6, "MKT"),
    ("Finance", 5, "FIN"),
    ("Human Resources", 4, "HR"),
    ("Product", 5, "PRD"),
    ("Design", 3, "DSN"),
    ("Legal", 2, "LGL"),
    ("IT", 4, "IT"),
    ("Data Science", 3, "DAT"),
    ("Security", 2, "SEC"),
    ("Facilities", 2, "FAC"),
    ("Procurement", 2, "PRC"),
    ("Quality Assurance", 3, "QA"),
    ("Research", 2, "RES"),
    ("Logistics", 3, "LOG"),
    ("Training", 1, "TRN"),
    ("Executive Office", 1, "EXE"),
)
TEAMS_PER_DEPARTMENT = 4
CROSS_GROUPS = (
    "Mentors",
    "Remote",
    "New York Office",
    "Madrid Office",
    "Bangalore Office",
    "Women in Tech",
    "Green Team",
    "Volunteers",
    "Interns",
    "People Leaders",
)
TIMEZONES: tuple[tuple[str, int], ...] = (
    ("America/New_York", 35),
    ("America/Chicago", 15),
    ("America/Los_Angeles", 15),
    ("Europe/London", 10),
    ("Europe/Madrid", 8),
    ("Asia/Kolkata", 8),
    ("America/Sao_Paulo", 4),
    ("Asia/Tokyo", 3),
    ("Australia/Sydney", 2),
)

# (id, name, points, type, category, multiple, timeframe, relative frequency)
REWARDS: tuple[tuple[int, str, int, str, str, bool, str | None, int], ...] = (
    (1, "Team Player", 10, "User Badge", "Recognition", True, None, 30),
    (2, "Problem Solver", 20, "User Badge", "Recognition", True, None, 18),
    (3, "Customer Hero", 25, "User Badge", "Recognition", True, None, 12),
    (4, "Above and Beyond", 50, "User Badge", "Recognition", True, "monthly", 6),
    (5, "Mentor of the Month", 40, "User Badge", "Leadership", True, "monthly", 3),
    (6, "Great Leader", 30, "User Badge", "Leadership", True, None, 4),
    (7, "Innovator", 30, "User Badge", "Culture", True, None, 6),
    (8, "Culture Champion", 15, "User Badge", "Culture", True, None, 8),
    (9, "Work Anniversary", 100, "Automated Badge", "Milestones", True, "yearly", 2),
    (10, "Birthday", 5, "Automated Badge", "Milestones", True, "yearly", 2),
    (11, "Early Bird", 5, "Automated Badge", "Culture", True, "daily", 7),
    (12, "First Kudos", 10, "Automated Badge", "Milestones", False, None, 2),
)
PREDEFINED_TAGS = _words(
    "Teamwork Ownership Innovation Customer-First Helpfulness Leadership Learning Quality "
    "Mentoring Thank-You"
)
CUSTOM_TAGS = _words(
    "launch oncall hackathon release migration demo-day onboarding quarter-close big-deal "
    "bugbash documentation accessibility sustainability wellbeing kaizen"
)
KUDOS_MESSAGES = (
    "Thanks for jumping in on the incident last night!",
    "Great demo today, the customer loved it.",
    "Thank you for helping me get unblocked.",
    "Amazing attention to detail on the release notes.",
    "You made onboarding so much easier for the new hires.",
    "Huge thanks for covering my shift.",
    "Brilliant idea in the planning session.",
    "Thanks for the thorough code review.",
    "You closed that deal against all odds!",
    "Thank you for mentoring the interns this quarter.",
    "The new dashboard saves us hours every week.",
    "Thanks for staying late to fix the build.",
)
AWARD_MESSAGES = (
    None,
    None,
    None,
    "Well deserved!",
    "For leading the migration to the new platform.",
    "Thanks for always going the extra mile.",
    "For the fantastic customer feedback this month.",
)
ADJUSTMENT_POINTS = (-20, -10, -5, 5, 10, 10, 25, 50)


@dataclass(frozen=True)
class MemberRow:
    """One person as HR knows them; `groups` become `member_group` rows."""

    id: int
    email: str
    display_name: str
    job_code: str
    department: str
    manager_id: int | None
    birthday: date
    hire_date: date
    timezone: str
    active: bool
    opt_out: bool
    groups: tuple[str, ...]


@dataclass(frozen=True)
class RewardRow:
    id: int
    name: str
    points: int
    type_name: str
    category: str
    multiple: bool
    timeframe: str | None

    @property
    def definition(self) -> str:
        """The catalogue JSON the loader would have stored (kept whole in `reward.definition`)."""
        return json.dumps(
            {
                "reward_id": self.id,
                "reward": self.name,
                "points": self.points,
                "reward_type": self.type_name,
                "reward_category": self.category,
                "multiple": self.multiple,
                "timeframe": self.timeframe,
            },
            sort_keys=True,
        )

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.definition.encode()).hexdigest()


# Row layouts (all times are UTC epoch seconds):
# award:     (id, reward_id, member_id, giver_id, message, points, source, award_key, awarded)
# kudos:     (id, giver_id, message, visibility, created)
# receiver:  (kudos_id, member_id, created)
# tag link:  (kudos_id, tag, created)
# ledger:    (id, member_id, points, kind, award_id, kudos_id, note, created)
# revocation (by award id): (revoked, revoked_by_id, reason)
AwardTuple = tuple[int, int, int, int | None, str | None, int, str, str, int]
KudosTuple = tuple[int, int, str, str, int]
ReceiverTuple = tuple[int, int, int]
TagLinkTuple = tuple[int, str, int]
LedgerTuple = tuple[int, int, int, str, int | None, int | None, str | None, int]
Revocation = tuple[int, int | None, str]


@dataclass
class Dataset:
    seed: int
    members: list[MemberRow]
    rewards: list[RewardRow]
    tags: list[tuple[str, str, bool]]  # (normalised name, label, predefined)
    awards: list[AwardTuple] = field(default_factory=list)
    revocations: dict[int, Revocation] = field(default_factory=dict)
    kudos: list[KudosTuple] = field(default_factory=list)
    receivers: list[ReceiverTuple] = field(default_factory=list)
    tag_links: list[TagLinkTuple] = field(default_factory=list)
    ledger: list[LedgerTuple] = field(default_factory=list)

    @property
    def epoch(self) -> int:
        """When the organisation's history starts (member and catalogue creation time)."""
        return NOW_TS - (HISTORY_DAYS + 1) * DAY

    def counts(self) -> dict[str, int]:
        return {
            "member": len(self.members),
            "member_group": sum(len(m.groups) for m in self.members),
            "award": len(self.awards),
            "kudos": len(self.kudos),
            "kudos_receiver": len(self.receivers),
            "kudos_tag_link": len(self.tag_links),
            "ledger_entry": len(self.ledger),
        }


class _Picker:
    """Weighted choice with precomputed cumulative weights (random.choices rebuilds them)."""

    def __init__(self, rng: random.Random, items: list[int] | list[str], weights: list[float]):
        self.rng = rng
        self.items = items
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    def __call__(self) -> int | str:
        return self.items[bisect(self.cum, self.rng.random() * self.total)]


def _members(rng: random.Random, count: int) -> list[MemberRow]:
    dept_pick = _Picker(rng, list(range(len(DEPARTMENTS))), [d[1] for d in DEPARTMENTS])
    tz_pick = _Picker(rng, [t[0] for t in TIMEZONES], [t[1] for t in TIMEZONES])
    managers: dict[int, list[int]] = {}
    members: list[MemberRow] = []
    used_names: dict[str, int] = {}
    for member_id in range(1, count + 1):
        dept_index = int(dept_pick())
        dept, _, prefix = DEPARTMENTS[dept_index]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        base = f"{first}.{last}".lower()
        seen = used_names.get(base, 0)
        used_names[base] = seen + 1
        email = f"{base}{seen or ''}@example.com"
        level = min(5, 1 + int(rng.expovariate(0.9)))
        dept_managers = managers.setdefault(dept_index, [])
        manager_id = rng.choice(dept_managers) if dept_managers else None
        if level >= 3 and rng.random() < 0.5:
            dept_managers.append(member_id)
        groups = [f"{dept} / Team {rng.randrange(TEAMS_PER_DEPARTMENT) + 1}"]
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            group = rng.choice(CROSS_GROUPS)
            if group not in groups:
                groups.append(group)
        members.append(
            MemberRow(
                id=member_id,
                email=email,
                display_name=f"{first} {last}",
                job_code=f"{prefix}-{level}",
                department=dept,
                manager_id=manager_id,
                birthday=date(1960, 1, 1) + timedelta(days=rng.randrange(16_000)),
                hire_date=date(2000, 1, 1) + timedelta(days=rng.randrange(9_800)),
                timezone=str(tz_pick()),
                active=rng.random() >= 0.01,
                opt_out=rng.random() < 0.02,
                groups=tuple(groups),
            )
        )
    return members


def _day_weights() -> list[float]:
    """Relative activity per day of history: weekdays, a slow adoption trend, today partial."""
    start = (NOW - timedelta(days=HISTORY_DAYS)).date()
    weights = []
    for offset in range(HISTORY_DAYS + 1):
        day = start + timedelta(days=offset)
        weight = (1.0 if day.weekday() < 5 else 0.15) * (0.8 + 0.4 * offset / HISTORY_DAYS)
        if offset == HISTORY_DAYS:
            weight *= 0.4  # only the morning of "today" (before 15:00 UTC) has happened
        weights.append(weight)
    return weights


def _entry_times(rng: random.Random, entries: int) -> list[int]:
    """`entries` sorted timestamps, allocated to days by weight (largest remainder)."""
    weights = _day_weights()
    total = sum(weights)
    exact = [entries * w / total for w in weights]
    per_day = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - per_day[i], reverse=True)
    for i in by_remainder[: entries - sum(per_day)]:
        per_day[i] += 1
    start_day = (NOW_TS // DAY - HISTORY_DAYS) * DAY
    times: list[int] = []
    for offset, n in enumerate(per_day):
        day_start = start_day + offset * DAY
        day_times: list[int] = []
        while len(day_times) < n:
            # UTC working hours of a mostly American organisation, with a European morning.
            second = int(rng.gauss(16.5, 4.0) * 3600) % DAY
            ts = day_start + second
            if ts < NOW_TS:
                day_times.append(ts)
        day_times.sort()
        times.extend(day_times)
    return times


def generate(members: int = 100_000, entries: int = 2_000_000, seed: int = DEFAULT_SEED) -> Dataset:
    """Build the whole data set in memory; the same arguments always give the same rows."""
    rng = random.Random(seed)
    member_rows = _members(rng, members)
    rewards = [RewardRow(*r[:7]) for r in REWARDS]
    tags = [(t.casefold(), t, True) for t in PREDEFINED_TAGS] + [(t, t, False) for t in CUSTOM_TAGS]
    ds = Dataset(seed=seed, members=member_rows, rewards=rewards, tags=tags)

    ids = [m.id for m in member_rows]
    # Skewed popularity: member at popularity rank r is hit with probability ~ r^-0.4.
    receive_rank = ids[:]
    rng.shuffle(receive_rank)
    give_rank = ids[:]
    rng.shuffle(give_rank)
    n = len(ids)

    def receiver() -> int:
        return receive_rank[int(n * rng.random() ** 1.7)]

    def giver() -> int:
        return give_rank[int(n * rng.random() ** 1.5)]

    reward_pick = _Picker(rng, list(range(len(REWARDS))), [float(r[7]) for r in REWARDS])
    tag_names = [t[0] for t in tags]
    tag_pick = _Picker(rng, tag_names, [12.0 - i if i < 10 else 0.6 for i in range(len(tag_names))])
    receivers_pick = _Picker(rng, [1, 2, 3, 4, 5], [75, 15, 7, 2, 1])
    tags_pick = _Picker(rng, [0, 1, 2, 3], [25, 45, 22, 8])

    quota_award = round(entries * 0.30)
    quota_reversal = min(round(entries * 0.01), quota_award // 2)
    quota_kudos = round(entries * 0.65)
    quota_adjust = entries - quota_award - quota_reversal - quota_kudos
    times = _entry_times(rng, entries)

    awards, ledger, revocations = ds.awards, ds.ledger, ds.revocations
    kudos, receivers, tag_links = ds.kudos, ds.receivers, ds.tag_links
    award_owner: list[tuple[int, int]] = []  # index -> (member_id, points), award id = index + 1
    position = 0
    while position < entries:
        ts = times[position]
        remaining = quota_award + quota_reversal + quota_kudos + quota_adjust
        roll = rng.random() * remaining
        if roll < quota_kudos:
            count = min(int(receivers_pick()), quota_kudos)
            kudos_id = len(kudos) + 1
            from_id = giver()
            to: list[int] = []
            while len(to) < count:
                candidate = receiver()
                if candidate != from_id and candidate not in to:
                    to.append(candidate)
            kudos.append(
                (
                    kudos_id,
                    from_id,
                    KUDOS_MESSAGES[rng.randrange(len(KUDOS_MESSAGES))],
                    "public" if rng.random() < 0.9 else "private",
                    ts,
                )
            )
            chosen: list[str] = []
            for _ in range(int(tags_pick())):
                tag = str(tag_pick())
                if tag not in chosen:
                    chosen.append(tag)
                    tag_links.append((kudos_id, tag, ts))
            for member_id in to:
                receivers.append((kudos_id, member_id, ts))
                # All receivers of one kudos share its time; they may overrun today's slots.
                ledger.append((len(ledger) + 1, member_id, 5, "kudos", None, kudos_id, None, ts))
            quota_kudos -= count
            position += count
            continue
        roll -= quota_kudos
        if roll < quota_award or (roll < quota_award + quota_reversal and not award_owner):
            reward = REWARDS[int(reward_pick())]
            reward_id, name, points, type_name = reward[0], reward[1], reward[2], reward[3]
            to_id = receiver()
            award_id = len(awards) + 1
            if type_name == "User Badge":
                from_id_or_none: int | None = giver()
                while from_id_or_none == to_id:
                    from_id_or_none = giver()
                source = "dialog" if rng.random() < 0.85 else "api"
            else:
                from_id_or_none = None
                source = "rule" if rng.random() < 0.7 else "event"
            awards.append(
                (
                    award_id,
                    reward_id,
                    to_id,
                    from_id_or_none,
                    AWARD_MESSAGES[rng.randrange(len(AWARD_MESSAGES))],
                    points,
                    source,
                    f"r{reward_id}:m{to_id}:a{award_id}",
                    ts,
                )
            )
            award_owner.append((to_id, points))
            ledger.append((len(ledger) + 1, to_id, points, "award", award_id, None, name, ts))
            quota_award -= 1
        elif roll < quota_award + quota_reversal:
            # Revoke a recent award (within the last ~5,000), never the same one twice.
            index = len(award_owner) - 1 - rng.randrange(min(5_000, len(award_owner)))
            while index + 1 in revocations and index > 0:
                index -= 1
            if index + 1 in revocations:
                index = len(award_owner) - 1
                while index + 1 in revocations:
                    index -= 1
            award_id = index + 1
            owner, points = award_owner[index]
            by = awards[index][3]
            reason = "revoked" if rng.random() < 0.7 else "Given by mistake"
            revocations[award_id] = (ts, by, reason)
            ledger.append((len(ledger) + 1, owner, -points, "reversal", award_id, None, reason, ts))
            quota_reversal -= 1
        else:
            member_id = receiver()
            points = ADJUSTMENT_POINTS[rng.randrange(len(ADJUSTMENT_POINTS))]
            note = "Manual adjustment" if points > 0 else "Correction"
            ledger.append((len(ledger) + 1, member_id, points, "adjustment", None, None, note, ts))
            quota_adjust -= 1
        position += 1
    return ds


# --- daily-sweep data (bench/sweep.py): attendance records and daily activity --------------------

ATTENDANCE_DATASET = "employee_attendance"
# Attendance habits: (share of members, probability of attending a given weekday); sick days
# and holidays make a perfect month rare (~15% of the members).
ATTENDANCE_HABITS: tuple[tuple[float, float], ...] = ((0.05, 1.0), (0.45, 0.93), (0.50, 0.85))
# Login habits: (share of members, probability of activity on a given day); the last share is
# members on a current daily streak of 15 to 61 days (random before it).
LOGIN_HABITS: tuple[tuple[float, float], ...] = (
    (0.20, 0.0),
    (0.38, 0.2),
    (0.30, 0.6),
    (0.08, 0.95),
    (0.04, 1.0),
)


def _habit(rng: random.Random, habits: tuple[tuple[float, float], ...]) -> tuple[int, float]:
    roll = rng.random()
    for index, (share, probability) in enumerate(habits):
        if roll < share:
            return index, probability
        roll -= share
    return len(habits) - 1, habits[-1][1]


def attendance_rows(
    members: list[MemberRow], days: int, seed: int = DEFAULT_SEED
) -> Iterator[tuple[str, int, date, bool]]:
    """`attendance_record` rows (dataset, member_id, day, present) for the `days` days before
    `NOW`'s UTC date, in primary-key order.

    Like an HR export: weekdays only, plus the odd weekend shift; 8% of the members are not in
    the data set at all. An absence is a `present = false` row half of the time and a missing
    row the other half (the rules treat both as a missed day). Seeded per member, so a member's
    rows do not depend on the member count.
    """
    first = NOW.date() - timedelta(days=days)
    calendar_days = [first + timedelta(days=i) for i in range(days)]
    for m in members:
        rng = random.Random(f"{seed}:attendance:{m.id}")
        if rng.random() < 0.08:
            continue
        _, probability = _habit(rng, ATTENDANCE_HABITS)
        for day in calendar_days:
            if day.weekday() >= 5:
                if rng.random() < 0.02:
                    yield (ATTENDANCE_DATASET, m.id, day, True)
            elif rng.random() < probability:
                yield (ATTENDANCE_DATASET, m.id, day, True)
            elif rng.random() < 0.5:
                yield (ATTENDANCE_DATASET, m.id, day, False)


def activity_rows(
    members: list[MemberRow], days: int, seed: int = DEFAULT_SEED
) -> Iterator[tuple[int, date, datetime]]:
    """`member_activity` rows (member_id, day, first_seen_at) for each member's `days` local days
    up to and including the member's own today at `NOW` (Tokyo and Sydney are already on the
    next day), in primary-key order.

    Login habits follow `LOGIN_HABITS`; today has happened only in part, so a day-long habit
    shows on today half as often. `first_seen_at` is 09:00 UTC of the day, or `NOW` for today.
    """
    todays = {tz: NOW.astimezone(ZoneInfo(tz)).date() for tz in {m.timezone for m in members}}
    nine_am: dict[date, datetime] = {}
    for m in members:
        rng = random.Random(f"{seed}:activity:{m.id}")
        habit, probability = _habit(rng, LOGIN_HABITS)
        today = todays[m.timezone]
        streak = rng.randint(15, days) if habit == len(LOGIN_HABITS) - 1 else 0
        for back in range(days - 1, -1, -1):
            day = today - timedelta(days=back)
            if back == 0:
                active = rng.random() < probability * 0.5
            elif back <= streak:
                active = True
            else:
                active = rng.random() < (probability if streak == 0 else 0.5)
            if active:
                if back == 0:
                    yield (m.id, day, NOW)
                    continue
                seen = nine_am.get(day)
                if seen is None:
                    seen = nine_am[day] = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
                yield (m.id, day, seen)
