"""Config sections of the care desk: saved replies, tag rules and VIPs (issue 14).

Kept apart from bot/config.py so the desk's rules live in one place; config.py adds one
field per section and calls `desk_problems()` for the checks that span several keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import regex
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bot.models import Intent

# The words a saved reply may use; each is filled when the draft is made (bot/desk.py).
SAVED_REPLY_VARIABLES = ("first_name", "handle", "case", "agent_first_name", "brand")
VARIABLE = re.compile(r"\{([^{}\s]*)\}")
SAVED_REPLY_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"
# Tag names: lower-case words joined by hyphens (refund, lost-bag, vip).
TAG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
TAG_MAX = 40
TagName = Annotated[str, StringConstraints(pattern=TAG, max_length=TAG_MAX)]
Network = Literal["x", "bluesky", "mastodon", "facebook", "instagram"]
NETWORKS = get_args(Network)
_DEPARTMENT_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SavedReply(_Section):
    """A reply staff can pick instead of typing: still checked and still approved."""

    id: Annotated[str, StringConstraints(pattern=SAVED_REPLY_ID)]
    title: str = Field(min_length=1, max_length=75)
    text: str = Field(min_length=1, max_length=2000)
    departments: list[Annotated[str, StringConstraints(pattern=_DEPARTMENT_ID)]] = Field(
        default_factory=list
    )
    intents: list[Intent] = Field(default_factory=list)

    @field_validator("text")
    @classmethod
    def _known_variables(cls, value: str) -> str:
        known = " ".join("{" + name + "}" for name in SAVED_REPLY_VARIABLES)
        unknown = [name for name in VARIABLE.findall(value) if name not in SAVED_REPLY_VARIABLES]
        if unknown:
            shown = ", ".join("{" + name + "}" for name in dict.fromkeys(unknown))
            raise ValueError(f"unknown variable(s) {shown}; saved replies may use {known}")
        # A brace outside a {variable} would reach the customer as typed ("{{brand}}",
        # "{first_name, 50% off"): almost always a typo, so it is refused here.
        stray = VARIABLE.sub("", value)
        if "{" in stray or "}" in stray:
            at = next(i for i, ch in enumerate(stray) if ch in "{}")
            near = stray[max(0, at - 15) : at + 15]
            raise ValueError(
                f"a {{ or }} that is not part of a {{variable}} (near {near!r});"
                f" saved replies may use {known}"
            )
        return value


class TagRule(_Section):
    """Tags a case at ingest when every condition it gives holds (at least one is needed)."""

    tag: TagName
    keywords: list[Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=list)
    regex: str | None = None
    intents: list[Intent] = Field(default_factory=list)
    networks: list[Network] = Field(default_factory=list)
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]] = Field(
        default_factory=list
    )
    min_followers: int | None = Field(default=None, ge=0)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            regex.compile(value)  # the engine bot/desk.py runs it with (it can time out)
        except regex.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class VipSection(_Section):
    """Authors who matter: their cases become `high` priority (never lower than they
    were), get the `vip` tag, and their cards mention the department's managers."""

    min_followers: int | None = Field(default=None, ge=1)
    verified: bool = False
    handles: list[str] = Field(default_factory=list)

    @field_validator("handles")
    @classmethod
    def _handles(cls, value: list[str]) -> list[str]:
        # `x:bigjournalist` is a VIP on X only (usernames are per network: anyone may take
        # the same one on Instagram); a bare handle counts on every network.
        handles = []
        for entry in (item.strip() for item in value):
            network, sep, handle = entry.partition(":")
            if not sep:
                network, handle = "", entry
            elif network not in NETWORKS:
                raise ValueError(
                    f"{entry!r}: write NETWORK:handle with a network of {', '.join(NETWORKS)},"
                    " or the handle alone"
                )
            handle = handle.strip().lstrip("@").lower()
            if handle:
                handles.append(f"{network}:{handle}" if network else handle)
        return handles


def desk_problems(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key path, message) for what pydantic cannot see: duplicate saved reply ids,
    departments that do not exist, tag rules with no condition."""
    departments = {
        d.get("id") for d in _tables(data.get("departments")) if isinstance(d.get("id"), str)
    }
    problems: list[tuple[str, str]] = []
    first: dict[str, int] = {}
    for index, reply in enumerate(_tables(data.get("saved_replies"))):
        reply_id = reply.get("id")
        if isinstance(reply_id, str):
            if reply_id in first:
                problems.append(
                    (
                        f"saved_replies[{index}].id",
                        f"duplicate id {reply_id!r}: saved_replies[{first[reply_id]}] has it too",
                    )
                )
            else:
                first[reply_id] = index
        listed = reply.get("departments")
        for n, dept in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(dept, str) and dept not in departments:
                known = ", ".join(sorted(str(d) for d in departments))
                problems.append(
                    (
                        f"saved_replies[{index}].departments[{n}]",
                        f"unknown department {dept!r}; departments: {known}",
                    )
                )
    conditions = ("keywords", "regex", "intents", "networks", "languages", "min_followers")
    for index, rule in enumerate(_tables(data.get("tag_rules"))):
        if not any(rule.get(key) not in (None, [], "") for key in conditions):
            problems.append(
                (
                    f"tag_rules[{index}]",
                    "needs at least one condition (" + ", ".join(conditions) + ")",
                )
            )
    return problems


def _tables(value: object) -> list[Mapping[str, Any]]:
    # Index-preserving: a non-table item stays as {} (pydantic reports its type).
    items = value if isinstance(value, list) else []
    return [item if isinstance(item, Mapping) else {} for item in items]
