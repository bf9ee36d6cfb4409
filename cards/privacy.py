"""Privacy screens: the `/me settings` form, and the `/forget me` confirmation and outcome.

The settings form is three choice inputs, prefilled with what applies now; Teams and Slack show
it whole, Telegram and the console ask for each choice in turn with its options as buttons.
"""

from __future__ import annotations

from cards.model import Action, Card, Choice, Fact, Facts, Field, FieldKind, Form, Text, Tone
from rewards.privacy.preferences import LANGUAGES, Preferences

LEADERBOARD_CHOICES = (
    Choice("shown", "Shown", "Appear on leaderboards"),
    Choice("hidden", "Hidden", "Leave me off every leaderboard"),
)
CELEBRATION_CHOICES = (
    Choice("public", "Public", "Announce my birthday and anniversaries in the channel"),
    Choice("private", "Private", "Only a direct message to me"),
    Choice("off", "Off", "No celebrations for me"),
)


def _title(choices: tuple[Choice, ...], value: str) -> str:
    return next((c.title for c in choices if c.value == value), value)


def privacy_settings(current: Preferences, *, submit: str, cancel: str) -> Card:
    """The member's privacy choices as a form, prefilled with what applies to them now."""
    languages = tuple(Choice(code, name) for code, name in LANGUAGES.items())
    fields = [
        Field(
            "leaderboard",
            "Leaderboards",
            FieldKind.CHOICE,
            choices=LEADERBOARD_CHOICES,
            value=current.leaderboard,
        ),
        Field(
            "celebrations",
            "Birthday and anniversary celebrations",
            FieldKind.CHOICE,
            choices=CELEBRATION_CHOICES,
            value=current.celebrations,
        ),
        Field(
            "language",
            "Language of my replies",
            FieldKind.CHOICE,
            choices=languages,
            value=current.language,
        ),
    ]
    return Card(
        screen="privacy_settings",
        title="🔒 Your privacy settings",
        summary="Your privacy settings",
        body=(
            Text(
                "Choose whether you appear on leaderboards, how your birthday and work "
                "anniversaries are celebrated, and the language I reply in.",
                tone=Tone.SUBTLE,
            ),
        ),
        form=Form(
            tuple(fields),
            submit=Action("Save", token=submit, style="positive", submits_form=True),
            cancel=Action("Cancel", token=cancel),
        ),
    )


def privacy_saved(current: Preferences) -> Card:
    """What now applies, after saving."""
    return Card(
        screen="privacy_saved",
        title="✅ Privacy settings saved",
        summary="Privacy settings saved",
        body=(
            Facts(
                (
                    Fact("Leaderboards", _title(LEADERBOARD_CHOICES, current.leaderboard)),
                    Fact("Celebrations", _title(CELEBRATION_CHOICES, current.celebrations)),
                    Fact("Language", LANGUAGES.get(current.language, current.language)),
                )
            ),
        ),
    )


def forget_confirm(*, confirm: str, cancel: str) -> Card:
    """The one question before erasing: what goes, what stays, and that it cannot be undone."""
    return Card(
        screen="forget_confirm",
        title="Forget me?",
        summary="Erase your personal data? This cannot be undone.",
        body=(
            Text(
                "I will erase your name, email, linked accounts, birthday and everything you "
                "wrote (kudos messages, nomination reasons, redemption notes). Your points stay "
                "in the totals under an anonymous “Former member”, so other people's history "
                "still adds up.",
            ),
            Text("This cannot be undone.", tone=Tone.ATTENTION),
        ),
        actions=(
            Action("Forget me", token=confirm, style="destructive"),
            Action("Cancel", token=cancel),
        ),
    )


def forgotten() -> Card:
    return Card(
        screen="forgotten",
        title="Your data has been erased",
        summary="Your personal data has been erased.",
        body=(
            Text(
                "Goodbye. If you write to me again, you start afresh as a new member.",
                tone=Tone.SUBTLE,
            ),
        ),
    )
