"""`rewards manifest`: the Teams app package, the Slack app manifest and Telegram's commands.

The templates live in `manifest/` at the top of the repository. Their command sections are always
regenerated from the one command table (`dialogs.commands.COMMANDS`), so the three platforms offer
the same commands; `rewards manifest sync` writes those sections back into the committed
templates (a test fails when they have drifted).

    rewards manifest teams --host rewards.example.com [--bot-id GUID] [--out FILE.zip]
    rewards manifest slack --host rewards.example.com [--out FILE.json]
    rewards manifest telegram
    rewards manifest sync
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import click

from bots.commands.common import settings
from dialogs.commands import COMMANDS

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "manifest"
TEAMS_DIR = MANIFEST_DIR / "teams"
SLACK_TEMPLATE = MANIFEST_DIR / "slack" / "manifest.json"
TELEGRAM_COMMANDS = MANIFEST_DIR / "telegram" / "commands.json"
DEFAULT_TEAMS_ZIP = Path("manifest") / "build" / "nav-rewards-teams.zip"

TEAMS_SCOPES = ["personal", "team", "groupChat"]
TEAMS_ICONS = ("color.png", "outline.png")
SLACK_EVENTS_PATH = "/slack/events"

# Slack's built-in commands cannot be registered by an app, and one reserved name makes Slack reject
# the whole slash_commands list, so those commands get another name in Slack only. The Slack
# adapter maps them back with `command_for_slack()`.
SLACK_RESERVED = frozenset(
    {"me", "status", "join", "away", "dnd", "shrug", "remind", "msg", "feed", "who", "collapse"}
    | {"expand", "leave", "open", "search", "topic", "mute", "pro", "shortcuts"}
)
SLACK_RENAMES = {"me": "myrewards"}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^{_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?$")
_TELEGRAM_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
# A zip entry's date: fixed, so the same inputs always give the same package bytes.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


class ManifestError(click.ClickException):
    """A manifest cannot be built from the given input; the message says what to fix."""


# --- validation -------------------------------------------------------------------------------


def check_host(host: str) -> str:
    """A bare public host name, optionally with a port: no scheme, no path, no credentials."""
    value = host.strip().lower()
    if "://" in value:
        raise ManifestError(
            f"--host takes a host name without a scheme, e.g. rewards.example.com, got {host!r}"
        )
    if any(c in value for c in "/?#@") or not _HOST.match(value):
        raise ManifestError(
            f"--host takes a bare host name (optionally :port), no path, e.g. rewards.example.com, "
            f"got {host!r}"
        )
    if ":" in value and not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
        raise ManifestError(f"--host has a port outside 1-65535: {host!r}")
    return value


def check_bot_id(bot_id: str) -> str:
    value = bot_id.strip()
    if not value:
        raise ManifestError(
            "No Teams bot id: pass --bot-id or set BOT_REWARDS_ID (the Microsoft App ID of the "
            "Azure Bot resource)."
        )
    if not _GUID.match(value):
        raise ManifestError(
            f"The Teams bot id must be a GUID (the Microsoft App ID), got {value!r}"
        )
    return value.lower()


# --- the command sections, from COMMANDS ------------------------------------------------------


def teams_command_lists() -> list[dict[str, Any]]:
    commands = [{"title": c.name, "description": c.description} for c in COMMANDS if c.teams_menu]
    if len(commands) > 10:  # the manifest schema allows ten commands per list
        raise ManifestError(f"Teams shows at most 10 bot commands, COMMANDS has {len(commands)}")
    return [{"scopes": list(TEAMS_SCOPES), "commands": commands}]


def _usage_hint(usage: str, name: str) -> str:
    prefix = f"/{name}"
    return usage[len(prefix) :].strip() if usage.startswith(prefix) else usage.strip()


def slack_command_name(name: str) -> str:
    """The slash command (without "/") under which a COMMANDS entry is registered in Slack."""
    renamed = SLACK_RENAMES.get(name, name)
    if renamed in SLACK_RESERVED:
        raise ManifestError(f"/{renamed} is a Slack built-in command: add it to SLACK_RENAMES")
    return renamed


def command_for_slack(slash: str) -> str:
    """The COMMANDS name behind a Slack slash command ("/myrewards" -> "me")."""
    name = slash.lstrip("/").lower()
    return next((c.name for c in COMMANDS if slack_command_name(c.name) == name), name)


def slack_slash_commands(host: str = "{{HOST}}") -> list[dict[str, Any]]:
    commands = []
    for c in COMMANDS:
        entry: dict[str, Any] = {
            "command": f"/{slack_command_name(c.name)}",
            "url": f"https://{host}{SLACK_EVENTS_PATH}",
            "description": c.description,
        }
        hint = _usage_hint(c.usage, c.name)
        if hint:
            entry["usage_hint"] = hint
        # Escaped text turns @mentions into <@U…> ids, which is what the Slack adapter resolves.
        entry["should_escape"] = True
        commands.append(entry)
    return commands


def telegram_commands() -> list[dict[str, str]]:
    commands = []
    for c in COMMANDS:
        name = c.name.lower()
        if not _TELEGRAM_COMMAND.match(name):
            raise ManifestError(f"Telegram command names are 1-32 of a-z, 0-9, _: got {name!r}")
        commands.append({"command": name, "description": c.description[:256]})
    return commands


# --- templates --------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _fill(value: Any, values: dict[str, str]) -> Any:
    """Replace `{{NAME}}` placeholders in every string of a JSON value."""
    if isinstance(value, str):
        for name, replacement in values.items():
            value = value.replace("{{" + name + "}}", replacement)
        if "{{" in value:
            raise ManifestError(f"Unfilled placeholder in manifest template: {value!r}")
        return value
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    return value


def teams_template() -> dict[str, Any]:
    template = _load(TEAMS_DIR / "manifest.json")
    for bot in template["bots"]:
        bot["commandLists"] = teams_command_lists()
    return template


def slack_template() -> dict[str, Any]:
    template = _load(SLACK_TEMPLATE)
    template["features"]["slash_commands"] = slack_slash_commands()
    return template


def teams_manifest(bot_id: str, host: str, app_version: str | None = None) -> dict[str, Any]:
    values = {"BOT_ID": check_bot_id(bot_id), "HOST": check_host(host)}
    manifest: dict[str, Any] = _fill(teams_template(), values)
    if app_version:
        manifest["version"] = app_version
    return manifest


def slack_manifest(host: str) -> dict[str, Any]:
    manifest: dict[str, Any] = _fill(slack_template(), {"HOST": check_host(host)})
    return manifest


def build_teams_package(out: Path, bot_id: str, host: str, app_version: str | None = None) -> Path:
    """Write the Teams app package: manifest.json and both icons at the root of a zip."""
    manifest = teams_manifest(bot_id, host, app_version)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        entries = [("manifest.json", _dump(manifest).encode("utf-8"))]
        entries += [(name, (TEAMS_DIR / name).read_bytes()) for name in TEAMS_ICONS]
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            package.writestr(info, data)
    return out


def sync_templates() -> list[Path]:
    """Rewrite the command sections of the committed templates from COMMANDS; return the changed."""
    changed = []
    for path, text in (
        (TEAMS_DIR / "manifest.json", _dump(teams_template())),
        (SLACK_TEMPLATE, _dump(slack_template())),
        (TELEGRAM_COMMANDS, _dump(telegram_commands())),
    ):
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


# --- CLI --------------------------------------------------------------------------------------


def _host_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_host(value)
    except ManifestError as problem:
        raise click.BadParameter(problem.message, ctx=ctx, param=param) from None


@click.group()
def manifest() -> None:
    """Build the Teams app package, the Slack app manifest and Telegram's command list."""


@manifest.command()
@click.option("--host", required=True, callback=_host_option, help="Public host, e.g. a.b.com.")
@click.option("--bot-id", default="", help="Microsoft App ID (default: BOT_REWARDS_ID).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_TEAMS_ZIP,
    show_default=True,
    help="Where to write the zip.",
)
@click.option("--app-version", default=None, help="App version (semver) to put in the manifest.")
def teams(host: str, bot_id: str, out: Path, app_version: str | None) -> None:
    """Write the Teams app package (manifest.json, color.png, outline.png) to upload."""
    bot_id = bot_id or settings().bot_app_id
    build_teams_package(out, bot_id, host, app_version)
    click.echo(f"Wrote {out}")


@manifest.command()
@click.option("--host", required=True, callback=_host_option, help="Public host, e.g. a.b.com.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of printing.",
)
def slack(host: str, out: Path | None) -> None:
    """Print (or write) the Slack app manifest, as JSON, to paste into api.slack.com/apps."""
    text = _dump(slack_manifest(host))
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {out}")


@manifest.command()
@click.option(
    "--botfather", is_flag=True, help="Print `command - description` lines for /setcommands."
)
def telegram(botfather: bool) -> None:
    """Print the command list for Telegram's setMyCommands (or BotFather's /setcommands)."""
    commands = telegram_commands()
    if botfather:
        for entry in commands:
            click.echo(f"{entry['command']} - {entry['description']}")
        return
    click.echo(_dump(commands), nl=False)


@manifest.command()
def sync() -> None:
    """Rewrite the command sections of the templates under manifest/ from the command table."""
    changed = sync_templates()
    for path in changed:
        click.echo(f"Updated {path}")
    if not changed:
        click.echo("Templates are up to date.")
