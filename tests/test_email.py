"""Email notifications against a real SMTP server (aiosmtpd on 127.0.0.1, on the test's loop)."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword

from bots.notifier.email import Mailer, to_html
from cards import announcements as cards
from rewards.services.announcements import AnnouncedItem, AnnouncementView
from rewards.settings import Settings
from tests.test_announcements import VIEW


@dataclass
class Inbox:
    """What the SMTP server accepted: one parsed message per DATA, with its envelope."""

    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        parsed = []
        for envelope in self.envelopes:
            raw = envelope.original_content or envelope.content or b""
            data = raw if isinstance(raw, bytes) else raw.encode()
            parsed.append(email.message_from_bytes(data, policy=default))
        return parsed  # type: ignore[return-value]

    def to(self, address: str) -> EmailMessage:
        [found] = [m for m in self.messages if m["To"] == address]
        return found


@asynccontextmanager
async def smtp_server(**options: Any) -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="mail.test", **options), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield inbox, port
    finally:
        server.close()
        await server.wait_closed()


def parts(message: EmailMessage) -> dict[str, str]:
    """content type -> decoded text of a multipart/alternative message."""
    assert message.get_content_type() == "multipart/alternative"
    return {part.get_content_type(): part.get_content() for part in message.iter_parts()}


async def test_a_card_arrives_as_text_and_html():
    card = cards.personal(VIEW, VIEW.items[2])
    async with smtp_server() as (inbox, port):
        mailer = Mailer(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="hr@corp.test"))
        message_id = await mailer.send("bjorn@corp.test", card)
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "hr@corp.test" and envelope.rcpt_tos == ["bjorn@corp.test"]
    message = inbox.to("bjorn@corp.test")
    assert message["Message-ID"] == message_id and message_id.endswith("@corp.test>")
    assert message["Subject"] == "🎉 Congratulations, Björn!"
    body = parts(message)
    assert "Holiday Raffle winners" in body["text/plain"]
    assert "A <b>book</b> voucher & cake" in body["text/plain"]  # text stays text
    assert "A &lt;b&gt;book&lt;/b&gt; voucher &amp; cake" in body["text/html"]  # HTML is escaped
    assert '<img src="https://example.com/badges/raffle.png"' in body["text/html"]


async def test_login_when_a_user_is_set():
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        if ok:
            inbox.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=ok)

    async with smtp_server(authenticator=check, auth_require_tls=False) as (inbox, port):
        good = Settings(
            smtp_host="127.0.0.1", smtp_port=port, smtp_user="bot@corp.test", smtp_password="s3cret"
        )
        await Mailer(good).send("ana@corp.test", cards.announcement(VIEW))
    assert inbox.logins == [("bot@corp.test", "s3cret")]
    [message] = inbox.messages
    assert message["From"] == "Rewards <bot@corp.test>"  # SMTP_FROM falls back to SMTP_USER


async def test_a_server_that_is_down_raises_for_the_notifier_to_retry():
    async with smtp_server() as (_inbox, port):
        pass  # closed again: nothing listens on `port` any more
    mailer = Mailer(Settings(smtp_host="127.0.0.1", smtp_port=port), timeout=5)
    with pytest.raises(Exception, match=r"(?i)connect"):
        await mailer.send("ana@corp.test", cards.announcement(VIEW))


def test_email_is_off_without_a_host():
    assert Mailer.from_settings(Settings()) is None
    assert Mailer.from_settings(Settings(smtp_host="mail.corp.test")) is not None


def test_html_has_every_line():
    view = AnnouncementView(
        1,
        "k",
        "anniversary",
        "Work anniversaries",
        (AnnouncedItem(1, "Li Wei", "5 years", 25),),
        VIEW.created_at,
    )
    page = to_html(cards.announcement(view))
    assert page.startswith("<!DOCTYPE html>")
    assert "🎊 Work anniversaries" in page and "Li Wei" in page and "+25 points" in page
