"""What a card shows, assembled from the store. Chat surfaces render a CaseView."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.models import Case


@dataclass(frozen=True)
class AuthorView:
    handle: str
    name: str
    followers: int | None
    verified: bool


@dataclass(frozen=True)
class EarlierContact:
    case_id: int
    state: str
    intent: str
    created_at: datetime
    text: str


@dataclass(frozen=True)
class ThreadPost:
    mention_id: str
    text: str
    created_at: datetime
    url: str | None


@dataclass(frozen=True)
class GroupedCase:
    """A near-duplicate of the card's case, shown on its card instead of a card of its own."""

    case_id: int
    handle: str
    state: str


@dataclass(frozen=True)
class SavedReplyChoice:
    """A saved reply offered on a card's picker (`dedicated`: written for its department)."""

    id: str
    title: str
    dedicated: bool = False


@dataclass(frozen=True)
class ManagerRef:
    """A manager a card calls in (a VIP's case), as each surface can address them."""

    slack: str | None
    teams: str | None
    name: str


@dataclass(frozen=True)
class CaseView:
    case: Case
    department_name: str
    author: AuthorView
    text: str
    url: str | None
    earlier: list[EarlierContact] = field(default_factory=list)
    thread: list[ThreadPost] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    paused: bool = False
    grouped: list[GroupedCase] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    saved_replies: list[SavedReplyChoice] = field(default_factory=list)
    # Set for a VIP's case: the department's managers, mentioned on the card.
    vip_managers: list[ManagerRef] = field(default_factory=list)
