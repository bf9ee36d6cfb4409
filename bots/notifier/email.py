"""Email notifications over SMTP with aiosmtplib: one multipart message (plain text + HTML).

Used by the notifier for `Delivery` rows on the "email" channel, which `announce()` only creates
when ``SMTP_HOST`` is set and the reward asks for email. The message carries the same card the
recipient gets as a direct message: the text part is the console rendering (`to_text`), the HTML
part a small, inline-styled rendering of the same blocks (mail clients ignore stylesheets), so
both say the same thing and neither needs images to be read.

Connection rules, from the settings:

- ``SMTP_PORT`` 465: TLS from the first byte (SMTPS);
- ``SMTP_PORT`` 587: STARTTLS is required (the submission port; a server that does not offer it
  fails the attempt rather than sending credentials in the clear);
- any other port: STARTTLS when the server offers it;
- ``SMTP_USER`` set: log in with ``SMTP_PASSWORD`` after the TLS step.

``SMTP_FROM`` is the sender (``SMTP_USER`` when unset). An error (connection refused, a rejected
recipient, a timeout) is raised to the notifier, which retries with back-off like any platform.
"""

from __future__ import annotations

import html
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr

import aiosmtplib

from cards.model import Block, Card, Columns, Facts, Image, ItemList, Text, Tone
from cards.render import is_web_url
from cards.render.text import to_text
from rewards.settings import Settings

SEND_TIMEOUT = 30.0  # seconds for the whole SMTP conversation; well inside the delivery lease

_TONE_COLOURS = {
    Tone.GOOD: "#2e7d32",
    Tone.ATTENTION: "#c62828",
    Tone.WARNING: "#ef6c00",
    Tone.ACCENT: "#1565c0",
    Tone.SUBTLE: "#6b6b6b",
}


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        if block.heading:
            return (
                f'<p style="font-size:16px;font-weight:bold;margin:12px 0 4px">{_e(block.text)}</p>'
            )
        colour = _TONE_COLOURS.get(block.tone)
        style = f' style="color:{colour};margin:4px 0"' if colour else ' style="margin:4px 0"'
        return f"<p{style}>{_e(block.text)}</p>"
    if isinstance(block, Facts):
        rows = "".join(
            f'<tr><td style="padding:2px 12px 2px 0;font-weight:bold">{_e(f.label)}</td>'
            f"<td>{_e(f.value)}</td></tr>"
            for f in block.facts
        )
        return f"<table>{rows}</table>"
    if isinstance(block, Image):
        if not is_web_url(block.url):
            return ""
        width = {"small": 48, "medium": 96, "large": 192}.get(block.size, 96)
        return f'<p><img src="{_e(block.url)}" alt="{_e(block.alt)}" width="{width}"></p>'
    if isinstance(block, ItemList):
        if not block.rows:
            return f'<p style="color:#6b6b6b">{_e(block.empty)}</p>'
        rows = []
        for row in block.rows:
            detail = (
                f'<br><span style="color:#6b6b6b">{_e(row.detail)}</span>' if row.detail else ""
            )
            rows.append(
                f'<tr><td style="padding:4px 8px 4px 0;vertical-align:top">{_e(row.lead)}</td>'
                f'<td style="padding:4px 0"><b>{_e(row.text)}</b>{detail}</td>'
                f'<td style="padding:4px 0 4px 12px;vertical-align:top;text-align:right;'
                f'white-space:nowrap">{_e(row.value)}</td></tr>'
            )
        return f'<table style="border-collapse:collapse">{"".join(rows)}</table>'
    if isinstance(block, Columns):
        return "".join(_html_block(b) for column in block.columns for b in column)
    raise TypeError(f"unknown block {block!r}")  # pragma: no cover - Block is a closed union


def to_html(card: Card) -> str:
    """The card as a self-contained HTML document (inline styles only; links are not added)."""
    body = "".join(_html_block(block) for block in card.body)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{_e(card.title)}</title></head>"
        '<body style="font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;'
        'color:#242424">'
        f'<h2 style="font-size:20px;margin:0 0 8px">{_e(card.title)}</h2>{body}</body></html>'
    )


def build_message(settings: Settings, to: str, card: Card) -> EmailMessage:
    """A multipart/alternative message: the text rendering first, the HTML one preferred."""
    sender = settings.smtp_from or settings.smtp_user
    message = EmailMessage()
    message["Subject"] = card.title
    message["From"] = formataddr(("Rewards", sender)) if sender else "rewards@localhost"
    message["To"] = to
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(to_text(card) + "\n")
    message.add_alternative(to_html(card), subtype="html")
    return message


class Mailer:
    """Sends cards as email through the configured SMTP server (one connection per message:
    announcements are rare, and a fresh connection never trips over a server-side idle close)."""

    def __init__(self, settings: Settings, *, timeout: float = SEND_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer | None:
        """A mailer when ``SMTP_HOST`` is set, else None (email is off)."""
        return cls(settings) if settings.smtp_host else None

    async def send(self, to: str, card: Card) -> str:
        """Send `card` to `to`; returns the Message-ID (kept as the delivery's reference)."""
        s = self.settings
        message = build_message(s, to, card)
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user or None,
            password=s.smtp_password if s.smtp_user else None,
            use_tls=s.smtp_port == 465,
            start_tls=True if s.smtp_port == 587 else None,
            timeout=self.timeout,
        )
        return str(message["Message-ID"])
