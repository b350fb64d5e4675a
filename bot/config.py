"""Load and validate the TOML config (tomllib + pydantic). Secrets come from the environment."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError
from bot.models import Intent

DEFAULT_CONFIG_NAME = "socialcare.toml"
CONFIG_ENV = "SOCIALCARE_CONFIG"

SlackId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_]{1,40}$")]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_SECRET_LIKE = re.compile(r"^(xox[abpre]-|xapp-|sk-)")


def _parse_hhmm(value: str) -> time:
    match = _HHMM.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a time as HH:MM (24-hour), e.g. 09:00")
    return time(int(match.group(1)), int(match.group(2)))


class _Section(BaseModel):
    # Unknown keys are errors: a typo such as `manager = [...]` must not silently
    # leave a department without approvers.
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotSection(_Section):
    brand: str = Field(min_length=1)
    database: str = "socialcare.db"
    timezone: str = "UTC"
    slash_command: str = "/care"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Europe/London"
            ) from None
        return value

    @field_validator("slash_command")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
            raise ValueError("must look like /care (a slash, then lowercase letters)")
        return value


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)


class SlackSection(_Section):
    enabled: bool = True
    mode: Literal["socket", "http"] = "socket"
    admins: list[SlackId] = Field(default_factory=list)
    team_id: SlackId | None = None
    enterprise_id: SlackId | None = None
    # Slack's documented ceiling is about one message per second per channel.
    messages_per_second: float = Field(default=1.0, gt=0, le=5)


class TeamsSection(_Section):
    enabled: bool = False
    admins: list[str] = Field(default_factory=list)


class Department(_Section):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
    name: str = Field(min_length=1)
    slack_channel: SlackId | None = None
    teams_channel: str | None = None
    intents: list[Intent] = Field(default_factory=list)
    keywords: list[Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=list)
    authors: list[str] = Field(default_factory=list)
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]] = Field(
        default_factory=list
    )
    members: list[SlackId] = Field(default_factory=list)
    managers: list[SlackId] = Field(default_factory=list)
    first_response_minutes: int = Field(default=60, ge=1, le=60 * 24 * 14)
    default: bool = False

    @field_validator("authors")
    @classmethod
    def _handles(cls, value: list[str]) -> list[str]:
        return [handle.lstrip("@").lower() for handle in value]


class XSource(_Section):
    enabled: bool = False
    user_id: str | None = None
    queries: list[str] = Field(default_factory=list)
    poll_seconds: int = Field(default=60, ge=10, le=3600)

    @model_validator(mode="after")
    def _needs_something_to_watch(self) -> XSource:
        if self.enabled and not self.user_id and not self.queries:
            raise ValueError("enabled but neither user_id nor queries is set: nothing to watch")
        return self


class SourcesSection(_Section):
    x: XSource = Field(default_factory=XSource)


class BrandSection(_Section):
    voice: str = "Warm, concise and helpful. Plain words, no jargon."
    dos: list[str] = Field(default_factory=list)
    donts: list[str] = Field(default_factory=list)
    sign_off: str = ""
    forbidden_phrases: list[str] = Field(default_factory=list)


class LLMSection(_Section):
    enabled: bool = False
    model: str = "gpt-4o-mini"
    timeout_seconds: float = Field(default=20, gt=0, le=300)
    max_retries: int = Field(default=1, ge=0, le=5)
    max_concurrency: int = Field(default=4, ge=1, le=64)
    max_calls_per_hour: int = Field(default=500, ge=0)
    suggestions: int = Field(default=3, ge=0, le=3)


class PublishSection(_Section):
    network: Literal["x"] = "x"
    dry_run: bool = False
    allow_self_approval: bool = False


class DigestSection(_Section):
    time: str = "09:00"
    managers_channel: SlackId | None = None

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        _parse_hhmm(value)
        return value


class SLASection(_Section):
    business_hours: str = "09:00-17:00"
    business_days: list[str] = Field(default_factory=lambda: list(DAYS[:5]))
    urgent_calendar_time: bool = True
    remind_before_minutes: int = Field(default=15, ge=1, le=24 * 60)

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        start, sep, end = value.partition("-")
        if not sep:
            raise ValueError("must be HH:MM-HH:MM, e.g. 09:00-17:00")
        if _parse_hhmm(start.strip()) >= _parse_hhmm(end.strip()):
            raise ValueError("the start must be before the end")
        return value

    @field_validator("business_days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [day.lower() for day in value]
        unknown = [day for day in days if day not in DAYS]
        if unknown:
            raise ValueError(f"unknown day(s) {unknown}; use {', '.join(DAYS)}")
        if not days:
            raise ValueError("needs at least one day")
        return days


class AlertsSection(_Section):
    spike_factor: float = Field(default=4.0, gt=1)
    spike_min_mentions: int = Field(default=20, ge=1)
    spike_min_negative: int = Field(default=10, ge=1)


class Config(_Section):
    bot: BotSection
    server: ServerSection = Field(default_factory=ServerSection)
    slack: SlackSection = Field(default_factory=SlackSection)
    teams: TeamsSection = Field(default_factory=TeamsSection)
    departments: list[Department] = Field(min_length=1)
    sources: SourcesSection = Field(default_factory=SourcesSection)
    brand: BrandSection = Field(default_factory=BrandSection)
    llm: LLMSection = Field(default_factory=LLMSection)
    publish: PublishSection = Field(default_factory=PublishSection)
    digest: DigestSection = Field(default_factory=DigestSection)
    sla: SLASection = Field(default_factory=SLASection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    # Where the file was read from; relative paths (the database) resolve against it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _departments_consistent(self) -> Config:
        ids = [dept.id for dept in self.departments]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"departments: duplicate id(s) {dupes}")
        defaults = [dept.id for dept in self.departments if dept.default]
        if len(defaults) > 1:
            raise ValueError(f"departments: only one may have default = true, found {defaults}")
        if self.slack.enabled:
            missing = [dept.id for dept in self.departments if not dept.slack_channel]
            if missing:
                raise ValueError(
                    f"departments {missing}: slack_channel is required while [slack] is enabled"
                )
        return self

    @property
    def database_path(self) -> Path:
        path = Path(self.bot.database)
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def default_department(self) -> Department:
        return next((d for d in self.departments if d.default), self.departments[0])

    def department(self, dept_id: str) -> Department | None:
        return next((d for d in self.departments if d.id == dept_id), None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.bot.timezone)


@dataclass(frozen=True, repr=False)
class Secrets:
    """Tokens read from the environment. repr() never shows values."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    x_bearer_token: str | None = None
    x_consumer_key: str | None = None
    x_consumer_secret: str | None = None
    x_access_token: str | None = None
    x_access_token_secret: str | None = None
    openai_api_key: str | None = None
    teams_app_id: str | None = None
    teams_app_password: str | None = None
    teams_tenant_id: str | None = None
    slack_api_url: str | None = None
    x_api_url: str | None = None
    openai_base_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        return cls(**{name: (env.get(name.upper()) or None) for name in cls.__dataclass_fields__})

    def values(self) -> list[str]:
        """Every secret value present, so logs and cards can be scrubbed of them."""
        endpoints = {"slack_api_url", "x_api_url", "openai_base_url", "teams_tenant_id"}
        return [
            value
            for name, value in self.__dict__.items()
            if value and name not in endpoints and len(value) >= 6
        ]

    def __repr__(self) -> str:
        present = [name for name, value in self.__dict__.items() if value]
        return f"Secrets(present={present})"


def _key_path(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    """('departments', 0, 'intents', 1) -> departments[0].intents[1]."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"function-after", "model"} or "[" in str(part):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see config.example.toml)"
    if kind == "missing":
        return "required key is missing"
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def parse_config(data: Mapping[str, Any], *, base_dir: Path = Path(".")) -> Config:
    """Validate already-parsed TOML; raise ConfigError with one line per problem."""
    problems: list[str] = []
    try:
        config = Config.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(f"{_key_path(tuple(error['loc']), data)}: {_message(error)}")
        raise ConfigError(problems) from None
    problems.extend(_secrets_in_file(data))
    if problems:
        raise ConfigError(problems)
    return config


def _secrets_in_file(data: object, prefix: str = "") -> list[str]:
    """Every value (in tables, lists and tables in lists) that looks like a token."""
    found: list[str] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            found.extend(_secrets_in_file(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(_secrets_in_file(value, f"{prefix}[{index}]"))
    elif isinstance(data, str) and _SECRET_LIKE.match(data):
        found.append(f"{prefix}: looks like a token; secrets belong in environment variables")
    return found


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """-c PATH, else $SOCIALCARE_CONFIG, else ./socialcare.toml."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else Path(DEFAULT_CONFIG_NAME)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError naming each problem."""
    resolved = resolve_config_path(path)
    try:
        raw = resolved.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{resolved}: config file not found (use -c PATH)"]) from None
    except OSError as exc:
        raise ConfigError([f"{resolved}: cannot read config file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{resolved}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{resolved}: invalid TOML: {exc}"]) from None
    return parse_config(data, base_dir=resolved.resolve().parent)
