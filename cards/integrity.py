"""The integrity report card (`/integrity`, `rewards integrity`): reciprocity rings, giving
bursts and the open campaigns' vote timelines with their bursts flagged.

It shows vote counts of campaigns that are still open, so it is only ever sent to an admin,
privately. Lists are capped so the card fits every platform; the CLI prints the same card."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from cards.model import Block, Card, ItemList, Row, Text, Tone
from rewards.integrity import CampaignTimeline, IntegrityReport, Ring

SHOWN = 10  # rings, bursts and timeline rows per section
PERCENT = "{:.0%}"


def _day(moment: date) -> str:
    return f"{moment.day} {moment:%b %Y}"


def _hour(moment: datetime) -> str:
    return f"{moment.day} {moment:%b %H}:00"


def _usual(value: float) -> str:
    return f"{value:g}"


def _ring_row(ring: Ring) -> Row:
    names = [m.name for m in ring.members]
    circle = " ⇄ ".join(names) if len(names) == 2 else " → ".join([*names, names[0]])
    shares = " · ".join(
        f"{m.name}: {PERCENT.format(m.received_share)} of received points from the ring "
        f"({m.from_ring_points} of {m.received_points}), "
        f"{PERCENT.format(m.given_share)} of given to it"
        for m in ring.members
    )
    return Row("⚠️", circle, f"{ring.kudos} gifts", shares)


def _timeline(campaign: CampaignTimeline) -> list[Block]:
    """The campaign's votes per day, with each burst hour flagged under its day."""
    days: dict[date, int] = {}
    for hour in campaign.buckets:
        days[hour.start.date()] = days.get(hour.start.date(), 0) + hour.votes
    rows: list[Row] = []
    for day, votes in sorted(days.items()):
        rows.append(Row("", _day(day), f"{votes} votes"))
        for hour in campaign.bursts:
            if hour.start.date() == day:
                end = hour.start + timedelta(hours=1)
                top = f"; {hour.top_votes} for {hour.top_nominee}" if hour.top_nominee else ""
                rows.append(
                    Row(
                        "⚠️",
                        f"burst {_hour(hour.start)}–{end:%H}:00 UTC",
                        f"{hour.votes} votes",
                        f"{hour.voters} voters{top}; a usual hour has {_usual(hour.usual)}",
                    )
                )
    total = sum(days.values())
    flagged = len(campaign.bursts)
    return [
        Text(
            f"Votes: {campaign.reward_name} (campaign #{campaign.campaign_id}, "
            f"{campaign.status}) · {total} votes"
            + (f" · {flagged} burst{'s' if flagged != 1 else ''}" if flagged else ""),
            heading=True,
        ),
        ItemList(tuple(rows[-SHOWN * 2 :]), empty="No votes yet."),
    ]


def integrity_card(report: IntegrityReport) -> Card:
    limits = report.thresholds
    window = f"{_day(report.since.date())} – {_day((report.until - timedelta(seconds=1)).date())}"
    body: list[Block] = [
        Text(
            f"{window} (UTC). For admins only: it shows the votes of open campaigns, which "
            "everyone else sees only at the close.",
            tone=Tone.SUBTLE,
        )
    ]
    if report.clean:
        body.append(
            Text("Nothing stands out: no reciprocity ring, no giving burst, no vote burst.")
        )
    body.append(Text("Reciprocity rings", heading=True))
    body.append(
        ItemList(
            tuple(_ring_row(ring) for ring in report.rings[:SHOWN]),
            empty="None: nobody gets most of their points from a small circle that they "
            "mostly give to.",
        )
    )
    body.append(Text("Giving bursts", heading=True))
    body.append(
        ItemList(
            tuple(
                Row(
                    "⚡",
                    burst.name,
                    f"{burst.count} kudos",
                    f"on {_day(burst.day)}; a usual day has {_usual(burst.usual)}",
                )
                for burst in report.bursts[:SHOWN]
            ),
            empty="None: nobody gave far more than usual in a day.",
        )
    )
    for campaign in report.campaigns:
        body.extend(_timeline(campaign))
    body.append(
        Text(
            f"A ring: every member gets ≥{limits.ring_share:.0%} of their points from the others, "
            f"gives them ≥{limits.ring_share:.0%} of theirs, and got ≥{limits.ring_min_kudos} "
            f"gifts from them. A burst: ≥{limits.burst_min} kudos in a day and "
            f"≥{_usual(limits.burst_factor)}× the giver's usual day; ≥{limits.vote_burst_min} "
            f"votes in an hour and ≥{_usual(limits.vote_burst_factor)}× the campaign's usual "
            "hour.",
            tone=Tone.SUBTLE,
        )
    )
    found = len(report.rings) + len(report.bursts) + sum(len(c.bursts) for c in report.campaigns)
    return Card(
        screen="integrity_report",
        title="🛡️ Integrity report",
        summary="Nothing stands out"
        if report.clean
        else f"{found} thing stands out"
        if found == 1
        else f"{found} things stand out",
        body=tuple(body),
    )
