"""Settings read once from the environment and `env/.env`.

The names follow the original project's `env/.env` where it has them (`DBHOST`, `DBPORT`, ...),
so an existing file keeps working. The process environment wins over the file, and
`DATABASE_URL` wins over the `DB*` parts. Every value is checked here, at start, so a typo fails
with a message naming the setting instead of surfacing later as a confusing runtime error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_SQLITE_PATH = Path("var") / "rewards.db"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file: `KEY=value` lines, `#` comments, optional quotes, `export ` prefix."""
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


def _bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str | None, default: int, *, low: int = 0, high: int = 2**31) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _zone(name: str, raw: str | None, default: str) -> str:
    value = raw or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        raise SettingsError(
            f"{name} must be an IANA time zone such as Europe/Madrid, got {value!r}"
        ) from None
    return value


def _choice(name: str, raw: str | None, choices: tuple[str, ...]) -> str:
    """A setting with a fixed set of values; the first is the default."""
    if raw is None or raw.strip() == "":
        return choices[0]
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


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
        port = _int("DBPORT", env.get("DBPORT"), 5432, low=1, high=65535)
        name = env.get("DBNAME") or "navigator"
        user = env.get("DBUSER") or "postgres"
        password = env.get("DBPWD", "")
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        host = env["DBHOST"].strip()
        if ":" in host and not host.startswith("["):  # a bare IPv6 address
            host = f"[{host}]"
        return f"postgresql+asyncpg://{auth}@{host}:{port}/{quote(name, safe='')}"
    return f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"


@dataclass(frozen=True)
class EventManagerSettings:
    """The RabbitMQ event manager (`ENABLE_EVENT_MANAGER`, `RABBITMQ_*`).

    It is on only when switched on *and* the `events` extra (aio-pika) is installed; `status()`
    says which of the two is missing, so a deployment that forgot the extra is told so at start
    and by `rewards settings` instead of silently publishing nothing.
    """

    enabled: bool = False
    host: str = "localhost"
    port: int = 5672
    user: str = "guest"
    password: str = "guest"  # noqa: S105  (RabbitMQ's own default, as in the seed)
    vhost: str = "/"
    # The topic exchange both directions use; outbound routing keys start with "rewards.".
    exchange: str = "nav-rewards"
    # The durable inbound queue and the routing keys bound to it (Automated Badges' custom event
    # names are bound as well, from the catalogue).
    queue: str = "nav-rewards.inbound"
    bindings: tuple[str, ...] = ("user.login", "attendance.recorded")
    prefetch: int = 10
    # A message whose handling fails is retried this many times, after retry_seconds, doubling,
    # then dead-lettered.
    max_retries: int = 5
    retry_seconds: int = 2

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


@dataclass(frozen=True)
class Settings:
    """Validated configuration for one process."""

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    timezone: str = "UTC"
    host: str = "127.0.0.1"
    port: int = 3978
    catalog_files: tuple[str, ...] = ("examples/rewards.json",)
    # True when REWARDS_CATALOG was set: an embedding application (rewards.engine) loads the
    # files only then, its catalogue otherwise comes from its storages.
    catalog_from_env: bool = False
    reward_scheduler: bool = True
    enable_rewards: bool = True
    # Embedded in a host application (`rewards.engine`): record a login for each request of an
    # authenticated member, once per member per day.
    reward_middleware: bool = True
    event_manager: EventManagerSettings = field(default_factory=EventManagerSettings)
    kudos_points: int = 5
    kudos_max_message: int = 500
    kudos_max_receivers: int = 10
    reward_cooldown_minutes: int = 0
    admins: tuple[str, ...] = ()
    function_modules: tuple[str, ...] = ()
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    telegram_bot_token: str = ""
    telegram_chat_id: str = ""
    bot_app_id: str = ""
    bot_app_secret: str = ""
    bot_tenant_id: str = ""
    # The SDK behind the Teams endpoint (TEAMS_SDK): "botbuilder" (Bot Framework SDK 4.17, final
    # release) or "agents" (Microsoft 365 Agents SDK, Python 3.12+). Same behaviour either way;
    # README "Teams SDK" says why the default is what it is.
    teams_sdk: str = "botbuilder"
    # The organisation's boundary (see README "Security model"): the Teams tenants served
    # (REWARDS_TENANT_ID, a comma list; the first is the bot's own for single-tenant sign-in), the
    # Slack workspaces or Enterprise Grid orgs served (SLACK_TEAM_IDS; empty = the bot token's own
    # workspace, learnt from auth.test), and the Telegram chats whose members may take part.
    tenant_ids: tuple[str, ...] = ()
    slack_team_ids: tuple[str, ...] = ()
    telegram_allowed_chats: tuple[str, ...] = ()
    # Who becomes a member on first sight inside the boundary: "open" (everyone) or "directory"
    # (only people already imported; others are asked to see their admin).
    membership: str = "open"
    # Birthdays and anniversaries on a Saturday or Sunday: "on_day", "friday_before" or
    # "monday_after" (the member's own calendar).
    weekend_policy: str = "on_day"
    # How often the sweep evaluates rewards without a `job` of their own (birthdays per member
    # zone, achievements): every N minutes. Awards are idempotent, so the sweep may run often.
    sweep_minutes: int = 60
    # Default announcement places per platform (a reward's `announce` overrides them).
    announce_teams: str = ""
    announce_slack: str = ""
    # Delivery retries: attempts before a delivery is marked failed, and the first back-off.
    delivery_max_attempts: int = 5
    delivery_backoff_seconds: int = 30
    # Rate limits of this process (`rewards.limits`, token buckets per process): REST API
    # requests per key and minute, chat turns per member and minute; 0 switches one off.
    api_rate_limit: int = 1200
    chat_rate_limit: int = 60
    extra: Mapping[str, str] = field(default_factory=dict)

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


def _csv(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").replace(";", ",").split(",") if part.strip())


def _event_manager(env: Mapping[str, str]) -> EventManagerSettings:
    bindings = _csv(env.get("RABBITMQ_BINDINGS"))
    return EventManagerSettings(
        enabled=_bool("ENABLE_EVENT_MANAGER", env.get("ENABLE_EVENT_MANAGER"), False),
        host=env.get("RABBITMQ_HOST") or "localhost",
        port=_int("RABBITMQ_PORT", env.get("RABBITMQ_PORT"), 5672, low=1, high=65535),
        user=env.get("RABBITMQ_USER") or "guest",
        password=env.get("RABBITMQ_PASSWORD") or "guest",
        vhost=env.get("RABBITMQ_VHOST") or "/",
        exchange=env.get("RABBITMQ_EXCHANGE") or "nav-rewards",
        queue=env.get("RABBITMQ_QUEUE") or "nav-rewards.inbound",
        bindings=bindings or ("user.login", "attendance.recorded"),
        prefetch=_int("RABBITMQ_PREFETCH", env.get("RABBITMQ_PREFETCH"), 10, low=1, high=10_000),
        max_retries=_int(
            "RABBITMQ_MAX_RETRIES", env.get("RABBITMQ_MAX_RETRIES"), 5, low=0, high=100
        ),
        retry_seconds=_int(
            "RABBITMQ_RETRY_SECONDS", env.get("RABBITMQ_RETRY_SECONDS"), 2, low=1, high=86_400
        ),
    )


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> Settings:
    """Merge `env/.env` (or `env_file`) under the process environment and validate everything."""
    process = dict(os.environ if environ is None else environ)
    file_path = env_file or Path(process.get("REWARDS_ENV_FILE", "env/.env"))
    env = {**read_env_file(file_path), **process}
    catalog = (
        _csv(env.get("REWARDS_CATALOG")) if "REWARDS_CATALOG" in env else ("examples/rewards.json",)
    )
    tenants = _csv(env.get("REWARDS_TENANT_ID") or env.get("MICROSOFT_APP_TENANT_ID"))
    return Settings(
        database_url=_database_url(env),
        timezone=_zone("TIMEZONE", env.get("TIMEZONE"), "UTC"),
        host=env.get("HOST") or "127.0.0.1",
        port=_int("PORT", env.get("PORT"), 3978, low=0, high=65535),
        catalog_files=catalog,
        catalog_from_env="REWARDS_CATALOG" in env,
        reward_scheduler=_bool("REWARD_SCHEDULER", env.get("REWARD_SCHEDULER"), True),
        enable_rewards=_bool("ENABLE_REWARDS", env.get("ENABLE_REWARDS"), True),
        reward_middleware=_bool("REWARD_MIDDLEWARE", env.get("REWARD_MIDDLEWARE"), True),
        event_manager=_event_manager(env),
        kudos_points=_int("KUDOS_POINTS", env.get("KUDOS_POINTS"), 5, high=1_000_000),
        kudos_max_message=_int(
            "KUDOS_MAX_MESSAGE", env.get("KUDOS_MAX_MESSAGE"), 500, low=1, high=10_000
        ),
        kudos_max_receivers=_int(
            "KUDOS_MAX_RECEIVERS", env.get("KUDOS_MAX_RECEIVERS"), 10, low=1, high=100
        ),
        reward_cooldown_minutes=_int(
            "REWARD_COOLDOWN_MINUTES", env.get("REWARD_COOLDOWN_MINUTES"), 0, high=525_600
        ),
        admins=tuple(a.lower() for a in _csv(env.get("REWARDS_ADMINS"))),
        function_modules=_csv(env.get("REWARDS_FUNCTION_MODULES")),
        smtp_host=env.get("SMTP_HOST", ""),
        smtp_port=_int("SMTP_PORT", env.get("SMTP_PORT"), 587, low=1, high=65535),
        smtp_user=env.get("SMTP_USER", ""),
        smtp_password=env.get("SMTP_PASSWORD", ""),
        smtp_from=env.get("SMTP_FROM", "") or env.get("SMTP_USER", ""),
        telegram_bot_token=env.get("TELEGRAM_BOT_TOKEN", ""),
        telegram_chat_id=env.get("TELEGRAM_CHAT_ID", ""),
        bot_app_id=env.get("BOT_REWARDS_ID") or env.get("MICROSOFT_APP_ID", ""),
        bot_app_secret=env.get("BOT_REWARDS_SECRET") or env.get("MICROSOFT_APP_PASSWORD", ""),
        bot_tenant_id=(tenants[0] if tenants else ""),
        teams_sdk=_choice("TEAMS_SDK", env.get("TEAMS_SDK"), ("botbuilder", "agents")),
        tenant_ids=tenants,
        slack_team_ids=_csv(env.get("SLACK_TEAM_IDS")),
        telegram_allowed_chats=tuple(
            dict.fromkeys(
                _csv(env.get("TELEGRAM_CHAT_ID")) + _csv(env.get("TELEGRAM_ALLOWED_CHATS"))
            )
        ),
        membership=_choice("MEMBERSHIP", env.get("MEMBERSHIP"), ("open", "directory")),
        weekend_policy=_choice(
            "CELEBRATION_WEEKEND_POLICY",
            env.get("CELEBRATION_WEEKEND_POLICY"),
            ("on_day", "friday_before", "monday_after"),
        ),
        sweep_minutes=_int(
            "REWARDS_SWEEP_MINUTES", env.get("REWARDS_SWEEP_MINUTES"), 60, low=1, high=1440
        ),
        announce_teams=env.get("ANNOUNCE_TEAMS_CHANNEL", ""),
        announce_slack=env.get("ANNOUNCE_SLACK_CHANNEL", "") or env.get("SLACK_CHANNEL_ID", ""),
        delivery_max_attempts=_int(
            "DELIVERY_MAX_ATTEMPTS", env.get("DELIVERY_MAX_ATTEMPTS"), 5, low=1, high=100
        ),
        delivery_backoff_seconds=_int(
            "DELIVERY_BACKOFF_SECONDS", env.get("DELIVERY_BACKOFF_SECONDS"), 30, low=1, high=86_400
        ),
        api_rate_limit=_int(
            "API_RATE_LIMIT", env.get("API_RATE_LIMIT"), 1200, low=0, high=1_000_000
        ),
        chat_rate_limit=_int(
            "CHAT_RATE_LIMIT", env.get("CHAT_RATE_LIMIT"), 60, low=0, high=1_000_000
        ),
        extra={k: v for k, v in env.items() if k.startswith(("SLACK_", "TELEGRAM_", "RABBITMQ_"))},
    )
