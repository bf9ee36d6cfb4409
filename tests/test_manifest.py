"""`rewards manifest`: the Teams app package validates against the official schema of the version it
declares, its icons are what Teams asks for, and all three platforms list the commands of
`dialogs.commands.COMMANDS`."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft4Validator, Draft6Validator, FormatChecker, validators

from bots.cli import cli
from bots.commands import manifest as mf
from dialogs.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = Path(__file__).parent / "data" / "teams-manifest-schema"
BOT_ID = "0b2c4d6e-8f10-4a12-9b34-c56d78e90f12"
HOST = "rewards.example.com"


# --- a small PNG reader -----------------------------------------------------------------------


def read_png(data: bytes) -> tuple[int, int, list[list[tuple[int, int, int, int]]]]:
    """Width, height and RGBA rows of an 8-bit RGBA, non-interlaced PNG (all five filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, ihdr, idat = 8, b"", bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    assert (depth, colour, interlace) == (8, 6, 0), "expected 8-bit RGBA, not interlaced"
    raw, stride, bpp = zlib.decompress(bytes(idat)), width * 4, 4
    rows: list[list[tuple[int, int, int, int]]] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            corner = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
            else:
                assert kind == 0, f"unknown filter {kind}"
        rows.append([tuple(line[x : x + 4]) for x in range(0, stride, 4)])  # type: ignore[misc]
        previous = line
    return width, height, rows


def png_size(data: bytes) -> tuple[int, int]:
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- helpers ----------------------------------------------------------------------------------


def run(*args: str, bot_id: str | None = BOT_ID):
    env = {"BOT_REWARDS_ID": bot_id} if bot_id is not None else {}
    return CliRunner().invoke(cli, ["manifest", *args], env=env)


@pytest.fixture()
def package(tmp_path: Path) -> zipfile.ZipFile:
    out = tmp_path / "nested" / "teams.zip"
    result = run("teams", "--host", HOST, "--out", str(out))
    assert result.exit_code == 0, result.output
    return zipfile.ZipFile(out)


def teams_validator(manifest: dict) -> Draft4Validator:
    version = manifest["manifestVersion"]
    assert manifest["$schema"] == (
        f"https://developer.microsoft.com/json-schemas/teams/v{version}/MicrosoftTeams.schema.json"
    )
    schema = json.loads((SCHEMAS / f"v{version}" / "MicrosoftTeams.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    # The official files are draft-04 but use draft-06 `const` (e.g. for manifestVersion).
    checker = validators.extend(Draft4Validator, {"const": Draft6Validator.VALIDATORS["const"]})
    checker.check_schema(schema)
    return checker(schema, format_checker=FormatChecker())


# --- Teams ------------------------------------------------------------------------------------


def test_teams_package_validates_against_the_schema_of_its_declared_version(package):
    assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
    manifest = json.loads(package.read("manifest.json"))
    errors = sorted(teams_validator(manifest).iter_errors(manifest), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert manifest["manifestVersion"] == "1.22"
    assert manifest["id"] == BOT_ID and manifest["bots"][0]["botId"] == BOT_ID
    assert manifest["validDomains"] == [HOST]
    assert manifest["developer"]["websiteUrl"] == f"https://{HOST}/"
    assert "{{" not in package.read("manifest.json").decode()
    assert sorted(manifest["bots"][0]["scopes"]) == ["groupChat", "personal", "team"]
    icons = manifest["icons"]
    assert (icons["color"], icons["outline"]) == ("color.png", "outline.png")


def test_the_schema_catches_a_broken_manifest(package):
    manifest = json.loads(package.read("manifest.json"))
    validator = teams_validator(manifest)
    broken = {**manifest, "id": "not-a-guid", "manifestVersion": "1.5"}
    messages = " ".join(e.message for e in validator.iter_errors(broken))
    assert "not-a-guid" in messages and "1.22" in messages


def test_teams_icons(package):
    color = package.read("color.png")
    assert png_size(color) == (192, 192)
    width, height, rows = read_png(color)
    assert (width, height) == (192, 192)
    pixels = {p for row in rows for p in row}
    assert all(a == 255 for *_, a in pixels), "the colour icon is opaque"
    assert len({p[:3] for p in pixels}) > 3, "the colour icon is in colour"

    outline = package.read("outline.png")
    assert png_size(outline) == (32, 32)
    width, height, rows = read_png(outline)
    assert (width, height) == (32, 32)
    flat = [p for row in rows for p in row]
    offenders = [p for p in flat if p[3] != 0 and p[:3] != (255, 255, 255)]
    assert not offenders, f"outline pixels that are neither transparent nor white: {offenders[:5]}"
    assert any(p[3] == 0 for p in flat) and any(p[3] == 255 for p in flat)
    # the corners are background
    assert rows[0][0][3] == rows[0][-1][3] == rows[-1][0][3] == rows[-1][-1][3] == 0


def test_teams_command_list_is_the_command_table(package):
    manifest = json.loads(package.read("manifest.json"))
    (command_list,) = manifest["bots"][0]["commandLists"]
    assert sorted(command_list["scopes"]) == ["groupChat", "personal", "team"]
    assert [(c["title"], c["description"]) for c in command_list["commands"]] == [
        (c.name, c.description) for c in COMMANDS if c.teams_menu
    ]


def test_the_package_is_reproducible(tmp_path: Path):
    for name in ("a.zip", "b.zip"):
        assert run("teams", "--host", HOST, "--out", str(tmp_path / name)).exit_code == 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_bot_id_option_wins_and_app_version_is_set(tmp_path: Path):
    other = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
    out = tmp_path / "t.zip"
    result = run(
        "teams", "--host", HOST, "--bot-id", other, "--out", str(out), "--app-version", "2.3.4"
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(zipfile.ZipFile(out).read("manifest.json"))
    assert manifest["id"] == other.lower() and manifest["version"] == "2.3.4"


def test_missing_bot_id_is_a_clear_error(tmp_path: Path):
    out = tmp_path / "t.zip"
    result = run("teams", "--host", HOST, "--out", str(out), bot_id=None)
    assert result.exit_code != 0
    assert "BOT_REWARDS_ID" in result.output and "--bot-id" in result.output
    assert not out.exists()


def test_a_bot_id_that_is_not_a_guid_is_refused(tmp_path: Path):
    result = run("teams", "--host", HOST, "--out", str(tmp_path / "t.zip"), bot_id="my-bot")
    assert result.exit_code != 0 and "GUID" in result.output


@pytest.mark.parametrize(
    "host",
    [
        "https://rewards.example.com",
        "http://rewards.example.com",
        "rewards.example.com/api",
        "rewards.example.com/",
        "user@rewards.example.com",
        "rewards example.com",
        "-bad.example.com",
        "rewards.example.com:99999",
        "",
    ],
)
@pytest.mark.parametrize("platform", ["teams", "slack"])
def test_host_must_be_a_bare_host_name(tmp_path: Path, platform: str, host: str):
    result = run(platform, "--host", host, "--out", str(tmp_path / "x"))
    assert result.exit_code != 0
    assert "--host" in result.output
    assert not (tmp_path / "x").exists()


def test_host_may_carry_a_port_and_is_lowercased():
    assert mf.check_host(" Rewards.Example.com:8443 ") == "rewards.example.com:8443"
    assert mf.check_host("localhost") == "localhost"


# --- Slack ------------------------------------------------------------------------------------


def test_slack_manifest_lists_the_command_table():
    result = run("slack", "--host", HOST)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    url = f"https://{HOST}/slack/events"
    commands = manifest["features"]["slash_commands"]
    assert [mf.command_for_slack(c["command"]) for c in commands] == [c.name for c in COMMANDS]
    for entry, command in zip(commands, COMMANDS, strict=True):
        assert re.fullmatch(r"/[a-z0-9-]{1,31}", entry["command"])
        assert entry["command"].lstrip("/") not in mf.SLACK_RESERVED
        assert entry["url"] == url
        assert entry["description"] == command.description
        hint = command.usage.removeprefix(f"/{command.name}").strip()
        assert entry.get("usage_hint", "") == hint
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": url}
    events = manifest["settings"]["event_subscriptions"]
    assert events["request_url"] == url
    assert set(events["bot_events"]) == {"app_mention", "message.im"}
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {
        "commands",
        "chat:write",
        "chat:write.public",
        "users:read",
        "users:read.email",
        "im:write",
        "channels:read",
        "groups:read",
        "app_mentions:read",  # needed by the app_mention event
        "im:history",  # needed by the message.im event
    } <= scopes
    assert manifest["features"]["bot_user"]["display_name"] == "nav-rewards"
    assert "{{" not in result.output


def test_slack_reserved_commands_are_renamed_and_mapped_back():
    assert mf.slack_command_name("me") == "myrewards"
    assert mf.command_for_slack("/myrewards") == "me"
    assert mf.command_for_slack("/kudos") == "kudos"


def test_slack_manifest_can_be_written_to_a_file(tmp_path: Path):
    out = tmp_path / "slack.json"
    result = run("slack", "--host", HOST, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == mf.slack_manifest(HOST)


# --- Telegram ---------------------------------------------------------------------------------


def test_telegram_commands_are_the_command_table():
    result = run("telegram")
    assert result.exit_code == 0, result.output
    commands = json.loads(result.output)
    assert [c["command"] for c in commands] == [c.name.lower() for c in COMMANDS]
    for entry, command in zip(commands, COMMANDS, strict=True):
        assert re.fullmatch(r"[a-z0-9_]{1,32}", entry["command"])
        assert 1 <= len(entry["description"]) <= 256
        assert entry["description"] == command.description
    assert set(commands[0]) == {"command", "description"}


def test_telegram_commands_for_botfather():
    result = run("telegram", "--botfather")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{c.name} - {c.description}" for c in COMMANDS]


# --- the committed templates ------------------------------------------------------------------


def test_committed_templates_are_in_sync_with_the_command_table():
    """Run `rewards manifest sync` after changing dialogs/commands.py."""
    teams = json.loads((ROOT / "manifest/teams/manifest.json").read_text())
    assert teams == mf.teams_template()
    slack = json.loads((ROOT / "manifest/slack/manifest.json").read_text())
    assert slack == mf.slack_template()
    telegram = json.loads((ROOT / "manifest/telegram/commands.json").read_text())
    assert telegram == mf.telegram_commands()


def test_templates_hold_only_the_two_placeholders():
    for path in ("manifest/teams/manifest.json", "manifest/slack/manifest.json"):
        text = (ROOT / path).read_text()
        assert set(re.findall(r"\{\{(\w+)\}\}", text)) <= {"BOT_ID", "HOST"}
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text), f"{path} hard-codes an id"


def test_make_icons_runs_as_a_script(tmp_path: Path):
    # The script writes next to itself; run it on a copy so the work tree stays untouched.
    (tmp_path / "teams").mkdir()
    script = tmp_path / "make_icons.py"
    script.write_text((ROOT / "manifest/make_icons.py").read_text())
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    for name in ("color.png", "outline.png"):
        assert (tmp_path / "teams" / name).read_bytes() == (
            ROOT / "manifest/teams" / name
        ).read_bytes()
