"""Settings read once from the environment and `env/.env`, declared as pydantic-settings models.

The names follow the original project's `env/.env` where it has them (`DBHOST`, `DBPORT`, ...),
so an existing file keeps working. The process environment wins over the file, and
`DATABASE_URL` wins over the `DB*` parts. Every value is checked here, at start, so a typo fails
with a message naming the setting instead of surfacing later as a confusing runtime error.

Each field names its variable (`validation_alias`) and its type and bounds; one before-validator
turns the variable's text into that type with the project's own messages ("PORT must be between
0 and 65535, got 70000"), so the messages do not depend on pydantic's wording. Values come only
from what `load_settings` gathers (the file under the environment): constructing `Settings(...)`
directly, as tests and embedding applications do, never reads the process environment behind
the caller's back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Re-exported: callers import it from here.
from rewards.errors import SettingsError as SettingsError

DEFAULT_SQLITE_PATH = Path("var") / "rewards.db"
DEFAULT_CATALOG = ("examples/rewards.json",)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file: `KEY=value` lines, `#` comments, optional quotes, `export ` prefix.

    Our own parser rather than python-dotenv's: a malformed line is an error naming the file and
    line (python-dotenv skips it with a warning, and a skipped `DATABASE_URL` means a silently
    different database)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        if "=" not in line:
            raise SettingsError(f"{path}:{number}: expected KEY=value, got {raw!r}")
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not key or any(c.isspace() for c in key):
            raise SettingsError(f"{path}:{number}: expected KEY=value, got {raw!r}")
        if value[:1] in ("'", '"'):
            # A quoted value ends at its closing quote; only a comment may follow it.
            end = value.find(value[0], 1)
            if end < 0:
                raise SettingsError(f"{path}:{number}: {key} has an unterminated quoted value")
            rest = value[end + 1 :].strip()
            if rest and not rest.startswith("#"):
                raise SettingsError(f"{path}:{number}: {key} has text after its closing quote")
            value = value[1:end]
        else:
            for marker in (" #", "\t#"):
                value = value.split(marker, 1)[0]
            value = value.rstrip()
        values[key] = value
    return values


# --- from text to typed values -------------------------------------------------------------------


def _csv(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").replace(";", ",").split(",") if part.strip())


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _zone(name: str, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        raise SettingsError(
            f"{name} must be an IANA time zone such as Europe/Madrid, got {value!r}"
        ) from None
    return value


def _bounds(field: FieldInfo) -> tuple[int, int]:
    low, high = 0, 2**31
    for rule in field.metadata:
        if isinstance(rule, Ge):
            low = int(rule.ge)  # type: ignore[call-overload]
        elif isinstance(rule, Le):
            high = int(rule.le)  # type: ignore[call-overload]
    return low, high


def _from_text(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """A variable's text as its field's type, with the project's messages; empty = default.

    Values that are not text (a test or an embedding application passing `port=8080`) are left
    to pydantic's own validation."""
    if not isinstance(value, str) or info.field_name is None:
        return value
    field = model.model_fields[info.field_name]
    name = str(field.validation_alias or info.field_name)
    kind = field.annotation
    if value.strip() == "":
        # An empty variable means its default (`HOST=` is 127.0.0.1, `KUDOS_POINTS=` is 5).
        return field.get_default(call_default_factory=True)
    if kind is bool:
        return _bool(name, value)
    if kind is int:
        return _int(name, value.strip(), *_bounds(field))
    if get_origin(kind) is tuple:
        return _csv(value)
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        lowered = value.strip().lower()
        if lowered not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return lowered
    return value


ALLOWANCE_MAX = 1_000_000
ALLOWANCE_KINDS = ("job_code", "group", "department")


def allowance_limit(name: str, value: Any) -> int | None:
    """An allowance as written: a whole number, or empty / "unlimited" for no limit."""
    if value is None or isinstance(value, int):
        if isinstance(value, int) and not 0 <= value <= ALLOWANCE_MAX:
            raise SettingsError(f"{name} must be between 0 and {ALLOWANCE_MAX}, got {value}")
        return value
    text = str(value).strip().lower()
    if text in {"", "unlimited"}:
        return None
    return _int(name, text, 0, ALLOWANCE_MAX)


def allowance_override(rule: str) -> str:
    """One KUDOS_ALLOWANCE_OVERRIDES rule, `KIND:VALUE=LIMIT`, checked and written canonically
    (KIND is job_code, group or department; LIMIT a whole number or "unlimited")."""
    name = "KUDOS_ALLOWANCE_OVERRIDES"
    who, equals, limit = rule.partition("=")
    kind, colon, value = who.partition(":")
    kind, value = kind.strip().lower(), value.strip()
    if not equals or not colon or kind not in ALLOWANCE_KINDS or not value:
        raise SettingsError(
            f"{name} rules look like job_code:MANAGER=unlimited or group:interns=3 "
            f"(job_code, group or department), got {rule!r}"
        )
    number = allowance_limit(f"{name} ({kind}:{value})", limit)
    return f"{kind}:{value}={'unlimited' if number is None else number}"


# --- the database URL -----------------------------------------------------------------------------


def _database_url(env: Mapping[str, str]) -> str:
    url = env.get("DATABASE_URL", "").strip()
    if url:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite:///"):
            url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        if not (url.startswith("postgresql+asyncpg://") or url.startswith("sqlite+aiosqlite://")):
            raise SettingsError(
                "DATABASE_URL must be a postgresql:// or sqlite:/// URL, got " + url.split("://")[0]
            )
        return url
    if env.get("DBHOST"):
        raw_port = env.get("DBPORT", "").strip()
        port = _int("DBPORT", raw_port, 1, 65535) if raw_port else 5432
        name = env.get("DBNAME") or "navigator"
        user = env.get("DBUSER") or "postgres"
        password = env.get("DBPWD", "")
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        host = env["DBHOST"].strip()
        if ":" in host and not host.startswith("["):  # a bare IPv6 address
            host = f"[{host}]"
        return f"postgresql+asyncpg://{auth}@{host}:{port}/{quote(name, safe='')}"
    return f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"


def _public_url(raw: str) -> str:
    """PUBLIC_URL: the https://host[/prefix] people and platforms reach the server at (behind a
    proxy, the proxy's address). Checked here so a typo never ends up in a published link."""
    value = raw.strip()
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        parts = urlsplit("")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(c.isspace() or c in "\"'<>\\" for c in value)
    ):
        raise SettingsError(
            f"PUBLIC_URL must be an http(s) URL such as https://rewards.example.org, got {raw!r}"
        )
    return value.rstrip("/")


# --- the models ---------------------------------------------------------------------------------

Port = Annotated[int, Ge(0), Le(65535)]


class EventManagerSettings(BaseModel):
    """The RabbitMQ event manager (`ENABLE_EVENT_MANAGER`, `RABBITMQ_*`).

    It is on only when switched on *and* the `events` extra (aio-pika) is installed; `status()`
    says which of the two is missing, so a deployment that forgot the extra is told so at start
    and by `rewards settings` instead of silently publishing nothing.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, validate_default=False)

    enabled: bool = Field(False, validation_alias="ENABLE_EVENT_MANAGER")
    host: str = Field("localhost", validation_alias="RABBITMQ_HOST")
    port: Annotated[int, Ge(1), Le(65535)] = Field(5672, validation_alias="RABBITMQ_PORT")
    user: str = Field("guest", validation_alias="RABBITMQ_USER")
    # RabbitMQ's own default, as in the seed.
    password: str = Field("guest", validation_alias="RABBITMQ_PASSWORD")
    vhost: str = Field("/", validation_alias="RABBITMQ_VHOST")
    # The topic exchange both directions use; outbound routing keys start with "rewards.".
    exchange: str = Field("nav-rewards", validation_alias="RABBITMQ_EXCHANGE")
    # The durable inbound queue and the routing keys bound to it (Automated Badges' custom event
    # names are bound as well, from the catalogue).
    queue: str = Field("nav-rewards.inbound", validation_alias="RABBITMQ_QUEUE")
    bindings: tuple[str, ...] = Field(
        ("user.login", "attendance.recorded"), validation_alias="RABBITMQ_BINDINGS"
    )
    prefetch: Annotated[int, Ge(1), Le(10_000)] = Field(10, validation_alias="RABBITMQ_PREFETCH")
    # A message whose handling fails is retried this many times, after retry_seconds, doubling,
    # then dead-lettered.
    max_retries: Annotated[int, Ge(0), Le(100)] = Field(5, validation_alias="RABBITMQ_MAX_RETRIES")
    retry_seconds: Annotated[int, Ge(1), Le(86_400)] = Field(
        2, validation_alias="RABBITMQ_RETRY_SECONDS"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> Any:
        return _from_text(cls, value, info)

    @property
    def installed(self) -> bool:
        return find_spec("aio_pika") is not None

    @property
    def active(self) -> bool:
        return self.enabled and self.installed

    def url(self) -> str:
        auth = quote(self.user, safe="") + ":" + quote(self.password, safe="")
        return f"amqp://{auth}@{self.host}:{self.port}/{quote(self.vhost, safe='')}"

    def redacted_url(self) -> str:
        return f"amqp://{quote(self.user, safe='')}:***@{self.host}:{self.port}/" + quote(
            self.vhost, safe=""
        )

    def status(self) -> str:
        """One line for logs and `rewards settings`: on (and where) or off (and why)."""
        if not self.enabled:
            return "off: ENABLE_EVENT_MANAGER is not true"
        if not self.installed:
            return (
                "off: ENABLE_EVENT_MANAGER is true but the events extra is not installed "
                "(pip install 'nav-rewards[events]')"
            )
        return f"on: {self.redacted_url()} exchange {self.exchange!r}, queue {self.queue!r}"


class SitePages(BaseModel):
    """The three pages a Teams app's manifest links to (`/`, `/privacy`, `/terms`, served by
    `bots.site`): who runs the bot, whom to ask about the data, and optional text files that
    replace the default wording (`index.txt`, `privacy.txt`, `terms.txt` in `pages_dir`)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, validate_default=False)

    organisation: str = Field("", validation_alias="SITE_ORGANISATION")
    contact: str = Field("", validation_alias="SITE_CONTACT")
    pages_dir: str = Field("", validation_alias="SITE_PAGES_DIR")

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("pages_dir")
    @classmethod
    def _a_directory(cls, value: str) -> str:
        if value and not Path(value).is_dir():
            raise SettingsError(f"SITE_PAGES_DIR must be a directory, got {value!r}")
        return value


class Settings(BaseSettings):
    """Validated configuration for one process."""

    model_config = SettingsConfigDict(
        frozen=True,
        populate_by_name=True,
        extra="ignore",
        validate_default=False,
        # Variables are upper case and fields lower case: matched case-insensitively, DATABASE_URL
        # as given would land on `database_url` over the value `load_settings` derived from it.
        case_sensitive=True,
    )

    # Derived by `load_settings` (DATABASE_URL or the DB* parts), not read under one name.
    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    timezone: str = Field("UTC", validation_alias="TIMEZONE")
    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: Port = Field(3978, validation_alias="PORT")
    # The public base URL (PUBLIC_URL): the OpenAPI document's `servers`; empty: the request's.
    public_url: str = Field("", validation_alias="PUBLIC_URL")
    site: SitePages = Field(default_factory=SitePages)
    # REWARDS_CATALOG, a comma list; set but empty means no catalogue (`load_settings`).
    catalog_files: tuple[str, ...] = DEFAULT_CATALOG
    # True when REWARDS_CATALOG was set: an embedding application (rewards.engine) loads the
    # files only then, its catalogue otherwise comes from its storages.
    catalog_from_env: bool = False
    reward_scheduler: bool = Field(True, validation_alias="REWARD_SCHEDULER")
    enable_rewards: bool = Field(True, validation_alias="ENABLE_REWARDS")
    # Embedded in a host application (`rewards.engine`): record a login for each request of an
    # authenticated member, once per member per day.
    reward_middleware: bool = Field(True, validation_alias="REWARD_MIDDLEWARE")
    event_manager: EventManagerSettings = Field(default_factory=EventManagerSettings)
    kudos_points: Annotated[int, Ge(0), Le(1_000_000)] = Field(5, validation_alias="KUDOS_POINTS")
    kudos_max_message: Annotated[int, Ge(1), Le(10_000)] = Field(
        500, validation_alias="KUDOS_MAX_MESSAGE"
    )
    kudos_max_receivers: Annotated[int, Ge(1), Le(100)] = Field(
        10, validation_alias="KUDOS_MAX_RECEIVERS"
    )
    # The giving allowance (`rewards.economy.allowance`): kudos a person may give per period
    # (one per receiver; None = unlimited), the period (reset at midnight in the giver's own
    # time zone, weeks from Monday), and per-role overrides, e.g.
    # "job_code:MANAGER=unlimited, group:interns=3, department:Sales=10" (the first that matches).
    kudos_allowance: int | None = Field(None, validation_alias="KUDOS_ALLOWANCE")
    kudos_allowance_period: Literal["day", "week", "month"] = Field(
        "day", validation_alias="KUDOS_ALLOWANCE_PERIOD"
    )
    kudos_allowance_overrides: tuple[str, ...] = Field(
        (), validation_alias="KUDOS_ALLOWANCE_OVERRIDES"
    )
    # Required values: every kudos names a tag (KUDOS_REQUIRE_TAG), and with KUDOS_TAGS=closed
    # only the predefined tags (people cannot invent new ones).
    kudos_require_tag: bool = Field(False, validation_alias="KUDOS_REQUIRE_TAG")
    kudos_tags: Literal["open", "closed"] = Field("open", validation_alias="KUDOS_TAGS")
    reward_cooldown_minutes: Annotated[int, Ge(0), Le(525_600)] = Field(
        0, validation_alias="REWARD_COOLDOWN_MINUTES"
    )
    admins: tuple[str, ...] = Field((), validation_alias="REWARDS_ADMINS")
    # Signs the short-lived download links the bot sends on Teams (`rewards.exports.links`); empty:
    # a random secret per process (links then work only on the replica that made them).
    link_secret: str = Field("", validation_alias="REWARDS_LINK_SECRET", repr=False)
    function_modules: tuple[str, ...] = Field((), validation_alias="REWARDS_FUNCTION_MODULES")
    smtp_host: str = Field("", validation_alias="SMTP_HOST")
    smtp_port: Annotated[int, Ge(1), Le(65535)] = Field(587, validation_alias="SMTP_PORT")
    smtp_user: str = Field("", validation_alias="SMTP_USER")
    smtp_password: str = Field("", validation_alias="SMTP_PASSWORD")
    smtp_from: str = Field("", validation_alias="SMTP_FROM")
    telegram_bot_token: str = Field("", validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_chat_id: str = Field("", validation_alias="TELEGRAM_CHAT_ID")
    # BOT_REWARDS_* win over the generic MICROSOFT_APP_* names (`load_settings`).
    bot_app_id: str = ""
    bot_app_secret: str = ""
    bot_tenant_id: str = ""
    # The SDK behind the Teams endpoint (TEAMS_SDK): "botbuilder" (Bot Framework SDK 4.17, final
    # release) or "agents" (Microsoft 365 Agents SDK, Python 3.12+). Same behaviour either way;
    # README "Teams SDK" says why the default is what it is.
    teams_sdk: Literal["botbuilder", "agents"] = Field("botbuilder", validation_alias="TEAMS_SDK")
    # The organisation's boundary (see README "Security model"): the Teams tenants served
    # (REWARDS_TENANT_ID, a comma list; the first is the bot's own for single-tenant sign-in), the
    # Slack workspaces or Enterprise Grid orgs served (SLACK_TEAM_IDS; empty = the bot token's own
    # workspace, learnt from auth.test), and the Telegram chats whose members may take part.
    tenant_ids: tuple[str, ...] = ()
    slack_team_ids: tuple[str, ...] = Field((), validation_alias="SLACK_TEAM_IDS")
    telegram_allowed_chats: tuple[str, ...] = ()
    # Who becomes a member on first sight inside the boundary: "open" (everyone) or "directory"
    # (only people already imported; others are asked to see their admin).
    membership: Literal["open", "directory"] = Field("open", validation_alias="MEMBERSHIP")
    # Whether members who have not chosen (`/me settings`) appear on leaderboards: "shown" or
    # "hidden". The import's `leaderboard_opt_out` hides a member (their team) when "shown".
    leaderboard_default: Literal["shown", "hidden"] = Field(
        "shown", validation_alias="LEADERBOARD_DEFAULT"
    )
    # Birthdays and anniversaries on a Saturday or Sunday: "on_day", "friday_before" or
    # "monday_after" (the member's own calendar).
    weekend_policy: Literal["on_day", "friday_before", "monday_after"] = Field(
        "on_day", validation_alias="CELEBRATION_WEEKEND_POLICY"
    )
    # How often the sweep evaluates rewards without a `job` of their own (birthdays per member
    # zone, achievements): every N minutes. Awards are idempotent, so the sweep may run often.
    sweep_minutes: Annotated[int, Ge(1), Le(1440)] = Field(
        60, validation_alias="REWARDS_SWEEP_MINUTES"
    )
    # Default announcement places per platform (a reward's `announce` overrides them).
    announce_teams: str = Field("", validation_alias="ANNOUNCE_TEAMS_CHANNEL")
    announce_slack: str = ""
    # The rewards shop file (REWARDS_SHOP), loaded at start-up like the catalogue; empty: none.
    shop_file: str = Field("", validation_alias="REWARDS_SHOP")
    # Where redemption requests are posted besides each admin's direct chat (REDEMPTIONS_CHANNEL):
    # a comma list of platform:channel pairs, the channel as for ANNOUNCE_*_CHANNEL /
    # TELEGRAM_CHAT_ID (its id or stored name), e.g. "slack:C0123456,telegram:-1001234567".
    redemptions_channel: tuple[str, ...] = Field((), validation_alias="REDEMPTIONS_CHANNEL")
    # Delivery retries: attempts before a delivery is marked failed, and the first back-off.
    delivery_max_attempts: Annotated[int, Ge(1), Le(100)] = Field(
        5, validation_alias="DELIVERY_MAX_ATTEMPTS"
    )
    delivery_backoff_seconds: Annotated[int, Ge(1), Le(86_400)] = Field(
        30, validation_alias="DELIVERY_BACKOFF_SECONDS"
    )
    # Rate limits of this process (`rewards.limits`, token buckets per process): REST API
    # requests per key and minute, chat turns per member and minute; 0 switches one off.
    api_rate_limit: Annotated[int, Ge(0), Le(1_000_000)] = Field(
        1200, validation_alias="API_RATE_LIMIT"
    )
    chat_rate_limit: Annotated[int, Ge(0), Le(1_000_000)] = Field(
        60, validation_alias="CHAT_RATE_LIMIT"
    )
    # Log lines: "text" (one readable line) or "json" (one object per line), and the lowest
    # level written (`rewards.observability.logs`).
    log_format: Literal["text", "json"] = Field("text", validation_alias="LOG_FORMAT")
    log_level: Literal["info", "debug", "warning", "error", "critical"] = Field(
        "info", validation_alias="LOG_LEVEL"
    )
    # The event loop of `rewards serve`: uvloop's (when installed, as it is on Linux and macOS)
    # or Python's own asyncio loop.
    event_loop: Literal["uvloop", "asyncio"] = Field("uvloop", validation_alias="EVENT_LOOP")
    # Every SLACK_*, TELEGRAM_* and RABBITMQ_* variable as given: the platform adapters read
    # their own settings from here (tokens, secrets, API base URLs for fake servers in tests).
    extra: Mapping[str, str] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the caller passes: `load_settings` gathers the file and the environment with
        # the project's precedence and its own file parser.
        return (init_settings,)

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> Any:
        return _from_text(cls, value, info)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone("TIMEZONE", value)

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str) -> str:
        return _public_url(value)

    @field_validator("kudos_allowance", mode="before")
    @classmethod
    def _allowance(cls, value: Any) -> Any:
        return allowance_limit("KUDOS_ALLOWANCE", value)

    @field_validator("kudos_allowance_overrides")
    @classmethod
    def _overrides(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(allowance_override(rule) for rule in value)

    @field_validator("redemptions_channel")
    @classmethod
    def _platform_channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            platform, sep, channel = entry.partition(":")
            if not sep or platform.strip() not in ("teams", "slack", "telegram") or not channel:
                raise SettingsError(
                    "REDEMPTIONS_CHANNEL must list platform:channel pairs such as "
                    f'"slack:C0123456,teams:Rewards admins", got {entry!r}'
                )
        return tuple(f"{e.partition(':')[0].strip()}:{e.partition(':')[2].strip()}" for e in value)

    @field_validator("admins")
    @classmethod
    def _lowercase(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(address.lower() for address in value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def redacted_database_url(self) -> str:
        """The database URL with any password hidden, for logs."""
        head, sep, tail = self.database_url.partition("://")
        if "@" in tail and ":" in tail.split("@", 1)[0]:
            creds, host = tail.split("@", 1)
            tail = creds.split(":", 1)[0] + ":***@" + host
        return head + sep + tail


def _derived(env: Mapping[str, str]) -> dict[str, Any]:
    """The fields read from more than one variable, or from none under their own name."""
    tenants = _csv(env.get("REWARDS_TENANT_ID") or env.get("MICROSOFT_APP_TENANT_ID"))
    return {
        "database_url": _database_url(env),
        "catalog_files": (
            _csv(env.get("REWARDS_CATALOG")) if "REWARDS_CATALOG" in env else DEFAULT_CATALOG
        ),
        "catalog_from_env": "REWARDS_CATALOG" in env,
        "event_manager": EventManagerSettings.model_validate(env),
        "site": SitePages.model_validate(env),
        "smtp_from": env.get("SMTP_FROM", "") or env.get("SMTP_USER", ""),
        "bot_app_id": env.get("BOT_REWARDS_ID") or env.get("MICROSOFT_APP_ID", ""),
        "bot_app_secret": env.get("BOT_REWARDS_SECRET") or env.get("MICROSOFT_APP_PASSWORD", ""),
        "bot_tenant_id": tenants[0] if tenants else "",
        "tenant_ids": tenants,
        "telegram_allowed_chats": tuple(
            dict.fromkeys(
                _csv(env.get("TELEGRAM_CHAT_ID")) + _csv(env.get("TELEGRAM_ALLOWED_CHATS"))
            )
        ),
        "announce_slack": env.get("ANNOUNCE_SLACK_CHANNEL", "") or env.get("SLACK_CHANNEL_ID", ""),
        "extra": {
            k: v for k, v in env.items() if k.startswith(("SLACK_", "TELEGRAM_", "RABBITMQ_"))
        },
    }


def _first_message(error: ValidationError) -> str:
    """Our own message when a validator raised one; otherwise pydantic's, naming the variable."""
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, SettingsError):
        return str(cause)
    where = ".".join(str(part) for part in first["loc"])
    return f"{where} {first['msg']}"


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> Settings:
    """Merge `env/.env` (or `env_file`) under the process environment and validate everything."""
    process = dict(os.environ if environ is None else environ)
    file_path = env_file or Path(process.get("REWARDS_ENV_FILE", "env/.env"))
    env = {**read_env_file(file_path), **process}
    try:
        return Settings.model_validate({**env, **_derived(env)})
    except ValidationError as error:
        raise SettingsError(_first_message(error)) from None
