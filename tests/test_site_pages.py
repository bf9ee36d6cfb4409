"""The pages the Teams manifest links to (`/`, `/privacy`, `/terms`) are served by `rewards serve`,
say what the bot stores, and escape every configurable piece of text."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from bots.commands.show_settings import show_settings
from bots.server import create_app
from rewards.settings import Settings, SettingsError, SitePages, load_settings

ROOT = Path(__file__).resolve().parents[1]


def _settings(tmp_path: Path, site: SitePages | None = None) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rewards.db'}",
        catalog_files=(),
        reward_scheduler=False,
        site=site or SitePages(),
    )


async def _get(settings: Settings, *paths: str) -> dict[str, tuple[int, str, dict[str, str]]]:
    found = {}
    async with TestClient(TestServer(create_app(settings, platforms=False))) as client:
        for path in paths:
            response = await client.get(path)
            found[path] = (response.status, await response.text(), dict(response.headers))
    return found


def _manifest_paths() -> list[str]:
    template = json.loads((ROOT / "manifest" / "teams" / "manifest.json").read_text())
    developer = template["developer"]
    urls = [developer[key] for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl")]
    return [urlsplit(url.replace("{{HOST}}", "host.example")).path for url in urls]


async def test_every_manifest_link_answers_with_a_page(tmp_path: Path) -> None:
    paths = _manifest_paths()
    assert paths == ["/", "/privacy", "/terms"]
    pages = await _get(_settings(tmp_path), *paths)
    for path, (status, body, headers) in pages.items():
        assert status == 200, path
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert body.startswith("<!doctype html>") and "<script" not in body
        for other in paths:  # each page links to the other two
            assert f'href="{other}"' in body
    home, privacy, terms = (pages[p][1] for p in paths)
    assert "recognition bot" in home and "your administrator" in home
    # the default privacy page says what is stored, and what is not
    for stored in ("email", "department", "birthday", "kudos", "votes", "account ids"):
        assert stored in privacy, stored
    assert "does not read conversations it is not part of" in privacy
    assert "<ul><li>" in privacy
    assert "Terms of use" in terms


async def test_settings_text_is_escaped_and_the_contact_is_a_link(tmp_path: Path) -> None:
    site = SitePages(
        organisation='<script>alert("x")</script> & Sons',
        contact="privacy@example.org",
    )
    pages = await _get(_settings(tmp_path, site), "/", "/privacy")
    for _, body, _ in pages.values():
        assert "<script>" not in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Sons" in body
        assert '<a href="mailto:privacy@example.org">privacy@example.org</a>' in body


async def test_files_replace_the_default_wording(tmp_path: Path) -> None:
    pages_dir = tmp_path / "pages"
    pages_dir.mkdir()
    (pages_dir / "privacy.txt").write_text(
        "Our <b>own</b> notice.\r\nSecond line.\n\n- one & two\n- three\n", encoding="utf-8"
    )
    site = SitePages(pages_dir=str(pages_dir))
    pages = await _get(_settings(tmp_path, site), "/", "/privacy", "/terms")
    privacy = pages["/privacy"][1]
    assert "<p>Our &lt;b&gt;own&lt;/b&gt; notice. Second line.</p>" in privacy
    assert "<ul><li>one &amp; two</li><li>three</li></ul>" in privacy
    assert "account ids" not in privacy  # the default wording is gone
    assert "recognition bot" in pages["/"][1]  # no index.txt: the default


async def test_an_unreadable_page_file_stops_the_start_naming_it(tmp_path: Path) -> None:
    pages_dir = tmp_path / "pages"
    pages_dir.mkdir()
    (pages_dir / "terms.txt").write_bytes(b"caf\xe9")
    with pytest.raises(SettingsError, match=r"terms\.txt"):
        create_app(_settings(tmp_path, SitePages(pages_dir=str(pages_dir))), platforms=False)


def test_the_settings_are_checked_at_start(tmp_path: Path) -> None:
    env = {"SITE_ORGANISATION": " Example Ltd ", "SITE_CONTACT": "hr@example.org"}
    loaded = load_settings(env, env_file=tmp_path / "none")
    assert loaded.site == SitePages(organisation="Example Ltd", contact="hr@example.org")
    with pytest.raises(SettingsError, match="SITE_PAGES_DIR must be a directory"):
        load_settings({"SITE_PAGES_DIR": str(tmp_path / "missing")}, env_file=tmp_path / "none")
    good = load_settings({"PUBLIC_URL": "https://rewards.example.org/"}, env_file=tmp_path / "x")
    assert good.public_url == "https://rewards.example.org"
    for bad in ("rewards.example.org", "ftp://x.org", "https://x.org/?q=1", "https://x.org:port"):
        with pytest.raises(SettingsError, match="PUBLIC_URL"):
            load_settings({"PUBLIC_URL": bad}, env_file=tmp_path / "none")


def test_rewards_settings_names_the_public_url_and_the_pages(tmp_path: Path) -> None:
    env = {"REWARDS_ENV_FILE": str(tmp_path / "none.env"), "PUBLIC_URL": "https://r.example.org"}
    result = CliRunner().invoke(show_settings, [], env=env)
    assert result.exit_code == 0, result.output
    lines = {k: v.strip() for k, v in (line.split("  ", 1) for line in result.output.splitlines())}
    assert lines["public URL (PUBLIC_URL)"] == "https://r.example.org"
    assert lines["manifest pages (SITE_PAGES_DIR)"] == "the built-in wording"
