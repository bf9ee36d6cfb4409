"""The card that hands over a file as a link (Teams: the bot cannot upload into a chat, so it
sends a download button pointing at a short-lived signed link it serves itself)."""

from __future__ import annotations

from cards.model import Action, Card, Text, Tone


def download_link(name: str, caption: str, url: str, minutes: int) -> Card:
    return Card(
        screen="download_link",
        title=name,
        summary=f"{caption} Download {name}: {url}",
        body=(
            Text(caption),
            Text(f"The link works for {minutes} minutes; keep it to yourself.", tone=Tone.SUBTLE),
        ),
        actions=(Action("Download", url=url),),
    )
