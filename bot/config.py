"""Load and validate the TOML config (tomllib + pydantic). Secrets come from the environment."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from bot.desk_config import SavedReply, TagRule, VipSection, desk_problems
from bot.errors import ConfigError
from bot.models import Intent

DEFAULT_CONFIG_NAME = "socialcare.toml"
CONFIG_ENV = "SOCIALCARE_CONFIG"

_SLACK_ID = r"^[A-Z0-9][A-Z0-9_]{1,40}$"
_DEPARTMENT_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_LANGUAGE = r"^[a-z]{2,3}$"
SlackId = Annotated[str, StringConstraints(pattern=_SLACK_ID)]
_SLACK_USER = r"^[UW][A-Z0-9]{2,40}$"
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_PERSON_ID = r"^[a-z][a-z0-9_.-]{0,39}$"
# Who may act: a Slack user id, a Teams user's Entra object id, or a [[people]] id.
PersonRef = Annotated[str, StringConstraints(pattern=f"{_SLACK_USER}|{_GUID}|{_PERSON_ID}")]
# A Teams channel id, e.g. 19:0a1b2c3d4e5f@thread.tacv2
TeamsChannel = Annotated[str, StringConstraints(pattern=r"^19:[^\s;]{3,200}$")]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


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
    # /healthz answers 503 once a chat surface or the publisher has failed this long
    # without a success, or the oldest pending card has waited this long.
    unhealthy_after_seconds: int = Field(default=300, ge=1, le=86_400)
    # Work a process holds (a card being sent, a reply being published) is leased for
    # this long and renewed while it runs; another process takes it over once it lapses.
    lease_seconds: int = Field(default=30, ge=2, le=600)


class SlackSection(_Section):
    enabled: bool = True
    mode: Literal["socket", "http"] = "socket"
    admins: list[PersonRef] = Field(default_factory=list)
    team_id: SlackId | None = None
    enterprise_id: SlackId | None = None
    # Slack's documented ceiling is about one message per second per channel.
    messages_per_second: float = Field(default=1.0, gt=0, le=5)


class TeamsSection(_Section):
    enabled: bool = False
    admins: list[PersonRef] = Field(default_factory=list)
    # Where proactive posts go before any activity from a team has told us its serviceUrl.
    service_url: str | None = None
    # Cards per second per channel (Teams allows about 7 per second per bot).
    messages_per_second: float = Field(default=1.0, gt=0, le=7)
    # The managers' channel in Teams: cross-department digest, escalations, spike alerts.
    managers_channel: TeamsChannel | None = None


class Person(_Section):
    """One person on every surface: roles, claims and the no-self-approval rule follow
    the person, whichever surface they act from."""

    id: Annotated[str, StringConstraints(pattern=_PERSON_ID)]
    name: str | None = None
    slack: Annotated[str, StringConstraints(pattern=_SLACK_USER)] | None = None
    teams: Annotated[str, StringConstraints(pattern=_GUID)] | None = None
    email: str | None = None


class Department(_Section):
    id: Annotated[str, StringConstraints(pattern=_DEPARTMENT_ID)]
    name: str = Field(min_length=1)
    slack_channel: SlackId | None = None
    teams_channel: TeamsChannel | None = None
    intents: list[Intent] = Field(default_factory=list)
    keywords: list[Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=list)
    authors: list[str] = Field(default_factory=list)
    languages: list[Annotated[str, StringConstraints(pattern=_LANGUAGE)]] = Field(
        default_factory=list
    )
    networks: list[Literal["x", "bluesky", "mastodon", "facebook", "instagram"]] = Field(
        default_factory=list
    )
    members: list[PersonRef] = Field(default_factory=list)
    managers: list[PersonRef] = Field(default_factory=list)
    first_response_minutes: int = Field(default=60, ge=1, le=60 * 24 * 14)
    # A claim with no draft this long reminds its holder; as long again, it is released.
    stale_claim_minutes: int = Field(default=30, ge=1, le=60 * 24 * 7)
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


class BlueskySource(_Section):
    enabled: bool = False
    handle: str | None = None  # the brand account, e.g. acmeair.bsky.social
    queries: list[str] = Field(default_factory=list)  # searchPosts, for talk without a mention
    poll_seconds: int = Field(default=30, ge=10, le=3600)


class MastodonSource(_Section):
    enabled: bool = False
    instance: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(:\d+)?/?$")] | None = (
        None
    )
    hashtags: list[str] = Field(default_factory=list)  # no full-text search on Mastodon
    poll_seconds: int = Field(default=30, ge=10, le=3600)

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return [tag.lstrip("#") for tag in value]


_GRAPH_ID = r"^[0-9]{5,25}$"


class FacebookSource(_Section):
    enabled: bool = False
    page_id: Annotated[str, StringConstraints(pattern=_GRAPH_ID)] | None = None
    poll_seconds: int = Field(default=60, ge=10, le=3600)  # backfill; webhooks are the live path


class InstagramSource(_Section):
    enabled: bool = False
    # The Instagram professional account linked to the page.
    account_id: Annotated[str, StringConstraints(pattern=_GRAPH_ID)] | None = None
    poll_seconds: int = Field(default=60, ge=10, le=3600)


class MetaSection(_Section):
    graph_version: Annotated[str, StringConstraints(pattern=r"^v[0-9]{1,2}\.[0-9]$")] = "v23.0"


class SourcesSection(_Section):
    x: XSource = Field(default_factory=XSource)
    bluesky: BlueskySource = Field(default_factory=BlueskySource)
    mastodon: MastodonSource = Field(default_factory=MastodonSource)
    facebook: FacebookSource = Field(default_factory=FacebookSource)
    instagram: InstagramSource = Field(default_factory=InstagramSource)


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
    # One call per mention returns the reading and the suggestions; this caps its answer.
    max_output_tokens: int = Field(default=600, ge=64, le=16_384)
    # OpenAI's current name; some older OpenAI-compatible servers only know "max_tokens".
    max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    # False: mentions the offline reading marks as spam or clearly needing no reply skip the LLM.
    read_everything: bool = False


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
    """The whole file. Build it with parse_config/load_config: the checks that span several
    keys (duplicate department ids, ...) run there, on the raw data, so they always run."""

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
    people: list[Person] = Field(default_factory=list)
    saved_replies: list[SavedReply] = Field(default_factory=list)
    tag_rules: list[TagRule] = Field(default_factory=list)
    vip: VipSection = Field(default_factory=VipSection)
    meta: MetaSection = Field(default_factory=MetaSection)
    # Where the file was read from; relative paths (the database) resolve against it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    def database_target(self, env: Mapping[str, str] | None = None) -> str | Path:
        """Where the store lives: `DATABASE_URL` (which may carry a password), else
        `[bot].database` (a PostgreSQL URL, or a SQLite path relative to this file)."""
        url = (os.environ if env is None else env).get("DATABASE_URL")
        if url:
            return url
        if self.bot.database.startswith(("postgresql://", "postgres://")):
            return self.bot.database
        return self.database_path

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

    @property
    def has_managers_channel(self) -> bool:
        """A managers' channel on some surface (Slack's [digest] or [teams])."""
        return bool(self.digest.managers_channel or self.teams.managers_channel)

    def identity(self, user_id: str | None) -> str:
        """The person behind a Slack id, a Teams object id or a [[people]] id: their
        [[people]] id when listed (`person:ana`), else the id itself."""
        if not user_id:
            return ""
        for person in self.people:
            if user_id in (person.id, person.slack) or (
                person.teams and user_id.lower() == person.teams.lower()
            ):
                return f"person:{person.id}"
        return user_id.lower() if re.fullmatch(_GUID, user_id) else user_id

    def same_person(self, a: str | None, b: str | None) -> bool:
        return bool(a) and bool(b) and self.identity(a) == self.identity(b)

    def listed(self, user_id: str, entries: list[str]) -> bool:
        """Whether the person behind `user_id` is among `entries` (any kind of id)."""
        who = self.identity(user_id)
        return any(self.identity(entry) == who for entry in entries)

    def person(self, user_id: str | None) -> Person | None:
        who = self.identity(user_id)
        return next((p for p in self.people if f"person:{p.id}" == who), None)

    def display_name(self, user_id: str | None) -> str | None:
        """A person's name from [[people]], if the config gives one."""
        found = self.person(user_id)
        return found.name if found and found.name else None

    def account_on(self, user_id: str, surface: str) -> str | None:
        """The same person's account on another surface (`slack` or `teams`), if known."""
        found = self.person(user_id)
        if found is not None:
            return found.slack if surface == "slack" else found.teams
        if surface == "slack" and re.fullmatch(_SLACK_USER, user_id):
            return user_id
        if surface == "teams" and re.fullmatch(_GUID, user_id):
            return user_id
        return None


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
    teams_openid_metadata_url: str | None = None
    teams_login_url: str | None = None
    teams_service_url: str | None = None
    bluesky_app_password: str | None = None
    bluesky_api_url: str | None = None
    mastodon_access_token: str | None = None
    meta_page_access_token: str | None = None
    meta_app_secret: str | None = None
    meta_verify_token: str | None = None
    meta_graph_url: str | None = None
    database_url: str | None = None
    slack_api_url: str | None = None
    x_api_url: str | None = None
    openai_base_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        return cls(**{name: (env.get(name.upper()) or None) for name in cls.__dataclass_fields__})

    def values(self) -> list[str]:
        """Every secret value present, so logs and cards can be scrubbed of them."""
        endpoints = {
            "slack_api_url",
            "x_api_url",
            "openai_base_url",
            "teams_tenant_id",
            "teams_app_id",
            "teams_openid_metadata_url",
            "teams_login_url",
            "teams_service_url",
            "bluesky_api_url",
            "meta_graph_url",
        }
        values = [
            value
            for name, value in self.__dict__.items()
            if value and name not in endpoints and len(value) >= 6
        ]
        # libpq and the pool quote a bad URL's password on its own in their errors.
        password = urlsplit(self.database_url or "").password
        if password and len(password) >= 6:
            values += [password, quote(password, safe="")]
        if self.meta_page_access_token and self.meta_app_secret:
            # Derived from the token, and as good as it for a replay: never logged either.
            values.append(appsecret_proof(self.meta_page_access_token, self.meta_app_secret))
        return values

    def __repr__(self) -> str:
        present = [name for name, value in self.__dict__.items() if value]
        return f"Secrets(present={present})"


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """Meta's `appsecret_proof`: HMAC-SHA256 of the access token keyed by the app secret."""
    import hashlib
    import hmac

    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


# -- validation: every problem of a file, reported at once -------------------------------
#
# pydantic alone hides problems: a model validator runs only once every field is valid,
# and a list-level check only once every item is. So parse_config collects three kinds of
# problems from the raw TOML data, every time, and reports them together:
#   1. schema problems (pydantic: types, patterns, unknown and missing keys),
#   2. cross-field problems (checked here on the raw data, each naming its key),
#   3. secrets pasted into the file (any string, anywhere).


@dataclass(frozen=True)
class _Problem:
    path: str  # key path, e.g. departments[1].slack_channel
    message: str


@dataclass(frozen=True)
class _PastedSecret:
    path: str
    what: str  # e.g. "a Slack bot token"
    variable: str  # where it belongs instead, e.g. "SLACK_BOT_TOKEN"
    texts: tuple[str, ...]  # the secret-looking parts, to blank out of every message


def parse_config(data: Mapping[str, Any], *, base_dir: Path = Path(".")) -> Config:
    """Validate already-parsed TOML; raise ConfigError with one line per problem, all at once."""
    config, problems = _schema_problems(data, base_dir)
    problems += _cross_field_problems(data)
    secrets = _pasted_secrets(data)
    if problems or secrets:
        raise ConfigError(_report(data, problems, secrets))
    assert config is not None  # no schema problem means pydantic built it
    return config


def _report(
    data: Mapping[str, Any], problems: list[_Problem], secrets: list[_PastedSecret]
) -> list[str]:
    """One line per problem, in file order, never showing a secret."""
    secret_paths = {secret.path for secret in secrets}
    # At a key holding a secret, the secret is the problem that matters (a pattern
    # mismatch there is just noise, and some messages would quote the value).
    kept = [problem for problem in problems if problem.path not in secret_paths]
    kept += [
        _Problem(
            secret.path,
            f"looks like {secret.what}; secrets go in the environment ({secret.variable}),"
            " never in the config file",
        )
        for secret in secrets
    ]
    order = _file_order(data)
    kept.sort(key=lambda problem: _position(problem.path, order))  # stable: ties keep order
    # Longest first, and not the very short (a 1-letter URL password would mangle every
    # line); the log filter (Secrets.values) draws the same line at 6 characters.
    texts = sorted(
        {text for secret in secrets for text in secret.texts if len(text) >= 6},
        key=len,
        reverse=True,
    )
    return [_blank(f"{problem.path}: {problem.message}", texts) for problem in kept]


def _blank(line: str, texts: list[str]) -> str:
    # Belt and braces: a message about another key (a list, a duplicate id) may quote the
    # secret, perhaps lowercased by a validator (business_days), hence IGNORECASE.
    for text in texts:
        line = re.sub(re.escape(text), "[redacted]", line, flags=re.IGNORECASE)
    return line


# 1. schema problems (pydantic)

_PATTERN_HINTS = {
    _SLACK_ID: "must be a Slack ID such as C0CARE or U0ADMIN (not a #channel or @name)",
    _DEPARTMENT_ID: "must be a short lowercase id such as care (letters, digits, - and _)",
    _LANGUAGE: "must be an ISO 639-1 language code such as en or es",
    _GRAPH_ID: "must be a numeric Graph API id of 5 to 25 digits, e.g. 102030405060708",
}


def _schema_problems(
    data: Mapping[str, Any], base_dir: Path
) -> tuple[Config | None, list[_Problem]]:
    try:
        return Config.model_validate({**data, "base_dir": base_dir}), []
    except ValidationError as exc:
        return None, [_Problem(_key_path(tuple(e["loc"])), _message(e)) for e in exc.errors()]


def _key_path(loc: tuple[int | str, ...]) -> str:
    """('departments', 0, 'intents', 1) -> departments[0].intents[1]."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"function-after", "model"} or "[" in str(part):
            continue  # pydantic's names for validator steps and union members, not keys
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see config.example.toml)"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(str(error.get("ctx", {}).get("pattern")))
        if hint:
            return hint
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


# 2. cross-field problems, on the raw data: pydantic would skip them as soon as any field
# of the model is invalid. Values of the wrong type are skipped here; pydantic names them.


def _cross_field_problems(data: Mapping[str, Any]) -> list[_Problem]:
    departments = _tables(data.get("departments"))
    return [
        *_duplicate_department_ids(departments),
        *_extra_default_departments(departments),
        *_missing_slack_channels(data, departments),
        *_unknown_people(data),
        *_x_source_without_target(data),
        *(_Problem(path, message) for path, message in desk_problems(data)),
        *_meta_sources_without_ids(data),
    ]


def _duplicate_department_ids(departments: list[tuple[int, Mapping[str, Any]]]) -> list[_Problem]:
    first_index: dict[str, int] = {}
    problems = []
    for index, dept in departments:
        dept_id = dept.get("id")
        if not isinstance(dept_id, str):
            continue
        if dept_id in first_index:
            problems.append(
                _Problem(
                    f"departments[{index}].id",
                    f"duplicate id {dept_id!r}: departments[{first_index[dept_id]}] has it too",
                )
            )
        else:
            first_index[dept_id] = index
    return problems


def _extra_default_departments(
    departments: list[tuple[int, Mapping[str, Any]]],
) -> list[_Problem]:
    defaults = [index for index, dept in departments if dept.get("default") is True]
    return [
        _Problem(
            f"departments[{index}].default",
            f"only one department may have default = true (departments[{defaults[0]}] has it)",
        )
        for index in defaults[1:]
    ]


def _missing_slack_channels(
    data: Mapping[str, Any], departments: list[tuple[int, Mapping[str, Any]]]
) -> list[_Problem]:
    slack = _setting(data, ("slack",), SlackSection, "enabled") is True
    teams = _setting(data, ("teams",), TeamsSection, "enabled") is True
    if not slack:
        return []
    # With Teams on too, a department may live in Teams only.
    return [
        _Problem(
            f"departments[{index}].slack_channel",
            "required while [slack] enabled = true (the channel ID where its cards go)"
            + (", unless the department has a teams_channel" if teams else ""),
        )
        for index, dept in departments
        if "slack_channel" not in dept and not (teams and "teams_channel" in dept)
    ]


def _unknown_people(data: Mapping[str, Any]) -> list[_Problem]:
    """A members/managers/admins entry that looks like a [[people]] id must be one."""
    known = {p.get("id") for _, p in _tables(data.get("people"))}
    places: list[tuple[str, Any]] = [
        ("slack.admins", _table(data, "slack").get("admins")),
        ("teams.admins", _table(data, "teams").get("admins")),
    ]
    for index, dept in _tables(data.get("departments")):
        places += [
            (f"departments[{index}].members", dept.get("members")),
            (f"departments[{index}].managers", dept.get("managers")),
        ]
    problems = []
    for path, entries in places:
        for n, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, str) and re.fullmatch(_PERSON_ID, entry) and entry not in known:
                problems.append(
                    _Problem(
                        f"{path}[{n}]",
                        f"{entry!r} is not a [[people]] id (nor a Slack user id U…/W…, nor a"
                        " Teams object id); add a [[people]] entry with id = "
                        f"{entry!r}, or use the account id",
                    )
                )
    return problems


def _x_source_without_target(data: Mapping[str, Any]) -> list[_Problem]:
    x = _table(data, "sources", "x")
    if _setting(data, ("sources", "x"), XSource, "enabled") is not True:
        return []
    if x.get("user_id") or x.get("queries"):
        return []
    return [
        _Problem(
            "sources.x.user_id",
            "required while [sources.x] enabled = true, unless queries are set"
            " (otherwise there is nothing to watch)",
        )
    ]


def _meta_sources_without_ids(data: Mapping[str, Any]) -> list[_Problem]:
    problems = []
    for network, model, key, what in (
        ("facebook", FacebookSource, "page_id", "the Facebook Page's id"),
        ("instagram", InstagramSource, "account_id", "the Instagram professional account's id"),
    ):
        section = ("sources", network)
        if _setting(data, section, model, "enabled") is True and not _table(data, *section).get(
            key
        ):
            problems.append(
                _Problem(
                    f"sources.{network}.{key}",
                    f"required while [sources.{network}] enabled = true ({what})",
                )
            )
    return problems


def _table(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    """The table at keys, or {} when it is absent or not a table (pydantic reports that)."""
    node: object = data
    for key in keys:
        node = node.get(key, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _tables(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, table) for each table of an array of tables; anything else is skipped."""
    items = value if isinstance(value, list) else []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, Mapping)]


def _setting(
    data: Mapping[str, Any], section: tuple[str, ...], model: type[BaseModel], key: str
) -> object:
    """A raw setting, or the model's default when the file leaves it out."""
    return _table(data, *section).get(key, model.model_fields[key].default)


# 3. secrets pasted into the file


@dataclass(frozen=True)
class _SecretShape:
    what: str
    variable: str | None  # None: depends on the section it was found in
    pattern: re.Pattern[str]
    group: int = 0  # the part of a match that is secret


_SECRET_SHAPES = (
    # Slack tokens are xox?- (b bot, p user, a app, e/r refresh, s session, ...);
    # "xoxo-" is spared: it is a sign-off, not a token type.
    _SecretShape("a Slack bot token", "SLACK_BOT_TOKEN", re.compile(r"xoxb-[A-Za-z0-9-]*")),
    _SecretShape("a Slack app-level token", "SLACK_APP_TOKEN", re.compile(r"xapp-[A-Za-z0-9-]*")),
    _SecretShape("a Slack token", "SLACK_BOT_TOKEN", re.compile(r"xox[a-np-z]-[A-Za-z0-9-]*")),
    # X app bearer tokens start with a long run of A's (URL-encoded characters follow).
    _SecretShape("an X bearer token", "X_BEARER_TOKEN", re.compile(r"A{20,}[A-Za-z0-9%+/=._~-]*")),
    # sk-..., sk-proj-...; the word boundary and length spare words such as "task-list".
    _SecretShape("an OpenAI API key", "OPENAI_API_KEY", re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")),
    # Meta user and page access tokens start with EAA (the app's token type) and run long.
    _SecretShape(
        "a Meta access token", "META_PAGE_ACCESS_TOKEN", re.compile(r"\bEAA[A-Za-z0-9]{20,}")
    ),
    _SecretShape(
        "a JSON Web Token",
        None,
        re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    ),
    _SecretShape(
        "a URL with a password",
        None,
        re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:([^\s/@]+)@"),
        group=1,
    ),
)
_RANDOM_KEY = "a secret key (a long random string)"
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")
_PATH_OR_URL = re.compile(r"^(/|\.{1,2}/|~|[A-Za-z]:[\\/])|://")

# Where a secret without a telltale prefix belongs, by the section it was found in.
_SECTION_VARIABLES = {
    "bot.database": "DATABASE_URL",
    "slack": "SLACK_BOT_TOKEN, SLACK_APP_TOKEN or SLACK_SIGNING_SECRET",
    "teams": "TEAMS_APP_ID, TEAMS_APP_PASSWORD or TEAMS_TENANT_ID",
    "sources.x": "X_BEARER_TOKEN",
    "publish": "X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN or X_ACCESS_TOKEN_SECRET",
    "llm": "OPENAI_API_KEY",
    "sources.facebook": "META_PAGE_ACCESS_TOKEN, META_APP_SECRET or META_VERIFY_TOKEN",
    "sources.instagram": "META_PAGE_ACCESS_TOKEN, META_APP_SECRET or META_VERIFY_TOKEN",
    "meta": "META_PAGE_ACCESS_TOKEN, META_APP_SECRET or META_VERIFY_TOKEN",
}
_ANY_VARIABLE = "the variables listed in README.md"


def _pasted_secrets(data: Mapping[str, Any]) -> list[_PastedSecret]:
    """Every string (in tables, lists and tables in lists) that looks like a secret."""
    found = []
    for path, value in _walk(data):
        if not isinstance(value, str):
            continue
        hits = _secret_hits(value)
        if hits:
            what, variable = hits[0][0], hits[0][1] or _section_variable(path)
            found.append(_PastedSecret(path, what, variable, tuple(t for _, _, t in hits)))
    return found


def _secret_hits(text: str) -> list[tuple[str, str | None, str]]:
    """(what, variable, secret text) for each secret-looking part of text, telltales first."""
    hits = [
        (shape.what, shape.variable, match.group(shape.group))
        for shape in _SECRET_SHAPES
        for match in shape.pattern.finditer(text)
    ]
    return hits + [(_RANDOM_KEY, None, run) for run in _random_runs(text)]


def _random_runs(text: str) -> list[str]:
    """Long unbroken hex or base64 runs: how keys, secrets and passwords look.

    Checked word by word, so prose never joins into a run; in a path or URL each /-segment
    counts alone, so a deep directory is not taken for base64. A base64 run needs a digit
    and a letter: names such as "Customer-Care-And-Complaints-Resolution" are spared,
    while a random key of 40 characters lacks a digit about once in a thousand.
    """
    runs: list[str] = []
    for word in text.split():
        for part in word.split("/") if _PATH_OR_URL.search(word) else [word]:
            runs += _HEX_RUN.findall(part)
            runs += [run for run in _BASE64_RUN.findall(part) if _has_digit_and_letter(run)]
    return runs


def _has_digit_and_letter(text: str) -> bool:
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _section_variable(path: str) -> str:
    sections = [key for key in _SECTION_VARIABLES if re.match(rf"{re.escape(key)}(\.|\[|$)", path)]
    return _SECTION_VARIABLES[max(sections, key=len)] if sections else _ANY_VARIABLE


# Walking the raw data: key paths in file order


def _walk(node: object, path: str = "") -> Iterator[tuple[str, object]]:
    """(key path, value) for every table entry and list item, depth first, in file order."""
    if isinstance(node, Mapping):
        children = [(f"{path}.{key}" if path else str(key), v) for key, v in node.items()]
    elif isinstance(node, list):
        children = [(f"{path}[{index}]", v) for index, v in enumerate(node)]
    else:
        return
    for child_path, value in children:
        yield child_path, value
        yield from _walk(value, child_path)


def _file_order(data: Mapping[str, Any]) -> dict[str, int]:
    return {path: index for index, (path, _) in enumerate(_walk(data))}


def _position(path: str, order: dict[str, int]) -> int:
    """Where path is in the file; a key the file lacks sorts with its nearest parent."""
    while path:
        if path in order:
            return order[path]
        path = re.sub(r"(\.[^.\[]*|\[\d+\]|^[^.\[]*)$", "", path, count=1)
    return len(order)


# -- environment: what `socialcare run` needs


@dataclass(frozen=True)
class _Need:
    variable: str
    path: str  # the key that needs it
    setting: str  # how the file asks for it, e.g. [slack] enabled = true


_X_PUBLISH_VARIABLES = (
    "X_CONSUMER_KEY",
    "X_CONSUMER_SECRET",
    "X_ACCESS_TOKEN",
    "X_ACCESS_TOKEN_SECRET",
    "X_BEARER_TOKEN",
)


def missing_environment(config: Config, secrets: Secrets) -> list[str]:
    """Each variable `run` needs that is not set, once, naming every setting that needs it:
    `sources.x: X_BEARER_TOKEN is not set (needed by [sources.x] enabled = true and
    [publish] dry_run = false)`. The path is that of the first setting."""
    missing: dict[str, list[_Need]] = {}
    for need in _environment_needs(config):
        if not getattr(secrets, need.variable.lower()):
            missing.setdefault(need.variable, []).append(need)
    return [
        f"{needs[0].path}: {variable} is not set"
        f" (needed by {' and '.join(need.setting for need in needs)})"
        for variable, needs in missing.items()
    ]


def _environment_needs(config: Config) -> list[_Need]:
    needs: list[_Need] = []
    if config.slack.enabled:
        needs.append(_Need("SLACK_BOT_TOKEN", "slack.enabled", "[slack] enabled = true"))
        mode_variable = (
            "SLACK_APP_TOKEN" if config.slack.mode == "socket" else "SLACK_SIGNING_SECRET"
        )
        needs.append(_Need(mode_variable, "slack.mode", f'[slack] mode = "{config.slack.mode}"'))
    if config.teams.enabled:
        needs += [
            _Need(variable, "teams.enabled", "[teams] enabled = true")
            for variable in ("TEAMS_APP_ID", "TEAMS_APP_PASSWORD", "TEAMS_TENANT_ID")
        ]
    if config.sources.x.enabled:
        needs.append(_Need("X_BEARER_TOKEN", "sources.x", "[sources.x] enabled = true"))
    if config.sources.bluesky.enabled:
        needs.append(
            _Need("BLUESKY_APP_PASSWORD", "sources.bluesky", "[sources.bluesky] enabled = true")
        )
    if config.sources.mastodon.enabled:
        needs.append(
            _Need("MASTODON_ACCESS_TOKEN", "sources.mastodon", "[sources.mastodon] enabled = true")
        )
    for network in ("facebook", "instagram"):
        if getattr(config.sources, network).enabled:
            needs += [
                _Need(variable, f"sources.{network}", f"[sources.{network}] enabled = true")
                for variable in ("META_PAGE_ACCESS_TOKEN", "META_APP_SECRET", "META_VERIFY_TOKEN")
            ]
    # X publishes when X is watched, or (as before other networks) when nothing else is.
    other_networks = any(
        getattr(config.sources, n).enabled for n in ("bluesky", "mastodon", "facebook", "instagram")
    )
    if not config.publish.dry_run and (config.sources.x.enabled or not other_networks):
        needs += [
            _Need(variable, "publish", "[publish] dry_run = false")
            for variable in _X_PUBLISH_VARIABLES
        ]
    return needs


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
