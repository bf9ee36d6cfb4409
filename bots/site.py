"""The three pages a Teams app's manifest links to: `/` (websiteUrl), `/privacy` (privacyUrl) and
`/terms` (termsOfUseUrl).

Teams shows these links on the app's details page and the store review asks for them, so they
must answer on the bot's own host (`rewards manifest teams --host HOST` writes
`https://HOST/`, `/privacy` and `/terms`). They are short plain pages: the default wording says
what the bot stores and who runs it (`SITE_ORGANISATION`, `SITE_CONTACT`), and an organisation
with its own wording puts `index.txt`, `privacy.txt` and/or `terms.txt` in `SITE_PAGES_DIR`.
Every piece of text, from settings or files, is HTML-escaped; the pages are rendered once at start
(a file that cannot be read stops the start with a message naming it, like any bad setting).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from rewards.settings import Settings, SettingsError, SitePages

MAX_PAGE_FILE = 64 * 1024
_EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
_HEADERS = {
    # Nothing on these pages runs or loads: no script, no image, no frame.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:42em;margin:2em auto;padding:0 1em;"
    "line-height:1.5;color:#222}nav a{margin-right:1em}"
)


@dataclass(frozen=True)
class Page:
    path: str
    file: str
    title: str
    default: tuple[str, ...]  # paragraphs; one made of "- " lines is a list


def _pages(organisation: str, contact: str) -> tuple[Page, ...]:
    """The default wording: what the bot is, what it keeps and the rules of use."""
    return (
        Page(
            "/",
            "index.txt",
            "nav-rewards",
            (
                "nav-rewards is a recognition bot for Microsoft Teams, Slack and Telegram: "
                "colleagues thank each other with kudos, give badges, nominate and vote for "
                "awards, and follow the leaderboards.",
                f"This installation is run by {organisation}. Questions about it go to {contact}.",
            ),
        ),
        Page(
            "/privacy",
            "privacy.txt",
            "Privacy",
            (
                f"This bot is run by {organisation}, which keeps its data in its own database. "
                "It stores:",
                "- your profile: name, email, and what your organisation imports (department, "
                "job code, manager, groups, birthday, hire date, time zone, language)\n"
                "- your account ids on Teams, Slack and Telegram, so one person has one balance\n"
                "- the kudos you give and receive with their messages and tags, badges and "
                "awards, points, nominations and votes, and workflow progress\n"
                "- attendance and other figures your organisation loads for its rules\n"
                "- the chats and channels the bot was added to (to post announcements), an "
                "unfinished form, and the record of announcements sent",
                "Messages sent to the bot are used to answer them; only what becomes a kudos, "
                "a badge, a nomination or an answer to a form is kept. The bot does not read "
                "conversations it is not part of. Refused requests are logged without their "
                "text.",
                "Kudos, badges and awards are shown to colleagues in channels and on the "
                "leaderboards; your balance and history are shown to you, to administrators "
                "and to systems of your organisation holding an API key. You can be left out "
                "of the leaderboards and of birthday and anniversary announcements: ask "
                f"{contact}.",
                "Messages are delivered through the chat platforms (and email, when set up); "
                "the data is not sold or shared with anyone else. It is kept while your "
                f"organisation runs the bot. To have it corrected or removed, ask {contact}.",
            ),
        ),
        Page(
            "/terms",
            "terms.txt",
            "Terms of use",
            (
                f"{organisation} provides this bot to its people to recognise each other's work.",
                "- Be kind and honest: kudos and badges are seen by your colleagues.\n"
                "- Follow your organisation's policies in what you write.\n"
                "- Points and awards have only the value your organisation gives them.",
                "The service is provided as it is and may change or stop. "
                f"Questions go to {contact}.",
            ),
        ),
    )


def _contact_html(contact: str) -> str:
    """The contact as a link when it is an email address or a web address, escaped either way."""
    if _EMAIL.match(contact):
        return f'<a href="mailto:{html.escape(contact)}">{html.escape(contact)}</a>'
    if contact.startswith(("https://", "http://")) and not any(c.isspace() for c in contact):
        return f'<a href="{html.escape(contact)}">{html.escape(contact)}</a>'
    return html.escape(contact)


def _paragraphs_html(paragraphs: list[str], contact: str) -> str:
    contact_html = _contact_html(contact) if contact else ""
    out = []
    for paragraph in paragraphs:
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        if not lines:
            continue
        if all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{html.escape(line[2:].strip())}</li>" for line in lines)
            out.append(f"<ul>{items}</ul>")
        else:
            text = html.escape(" ".join(lines))
            if contact_html:  # the escaped contact becomes a link where the text names it
                text = text.replace(html.escape(contact), contact_html)
            out.append(f"<p>{text}</p>")
    return "".join(out)


def _read(directory: str, name: str) -> list[str] | None:
    """A page file's paragraphs (separated by blank lines), or None when it is absent."""
    if not directory:
        return None
    path = Path(directory) / name
    if not path.is_file():
        return None
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_PAGE_FILE:
            raise SettingsError(f"SITE_PAGES_DIR: {path} is larger than {MAX_PAGE_FILE} bytes")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise SettingsError(
            f"SITE_PAGES_DIR: cannot read {path} as UTF-8 text: {problem}"
        ) from None
    return re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())


def render(site: SitePages) -> dict[str, str]:
    """Each path's whole HTML page."""
    organisation = site.organisation or "the organisation that installed it"
    contact = site.contact or "your administrator"
    pages = _pages(organisation, contact)
    nav = "".join(f'<a href="{page.path}">{html.escape(page.title)}</a>' for page in pages)
    rendered = {}
    for page in pages:
        paragraphs = _read(site.pages_dir, page.file) or list(page.default)
        rendered[page.path] = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(page.title)}</title><style>{_STYLE}</style></head><body>"
            f"<nav>{nav}</nav><h1>{html.escape(page.title)}</h1>"
            f"{_paragraphs_html(paragraphs, site.contact)}</body></html>"
        )
    return rendered


def setup(app: web.Application, settings: Settings) -> None:
    """Serve `/`, `/privacy` and `/terms` (GET and HEAD) from pages rendered now."""
    for path, body in render(settings.site).items():

        async def page(request: web.Request, body: str = body) -> web.Response:
            return web.Response(
                text=body, content_type="text/html", charset="utf-8", headers=_HEADERS
            )

        app.router.add_get(path, page)
