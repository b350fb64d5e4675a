"""Domain values: mentions, readings, cases. Plain data, no I/O."""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Intent(enum.StrEnum):
    COMPLAINT = "complaint"
    QUESTION = "question"
    PRAISE = "praise"
    SUGGESTION = "suggestion"
    LEAD = "lead"
    PRESS = "press"
    SPAM = "spam"
    OTHER = "other"


class Sentiment(enum.StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Priority(enum.StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class CaseState(enum.StrEnum):
    NEW = "new"
    CLAIMED = "claimed"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    PUBLISHED = "published"
    DISMISSED = "dismissed"
    FAILED = "failed"


OPEN_STATES = frozenset(
    {
        CaseState.NEW,
        CaseState.CLAIMED,
        CaseState.AWAITING_APPROVAL,
        CaseState.APPROVED,
        CaseState.FAILED,
    }
)

# Mentions longer than this are cut when stored: no network allows more, and it bounds memory.
MAX_TEXT_CHARS = 10_000


NETWORK_NAMES = {
    "x": "X",
    "bluesky": "Bluesky",
    "mastodon": "Mastodon",
    "facebook": "Facebook",
    "instagram": "Instagram",
}


def network_name(network: str) -> str:
    """How people write a network's name ("x" -> "X")."""
    return NETWORK_NAMES.get(network, network)


# Networks whose author "handle" is an opaque id nobody would recognise (Facebook gives
# apps a page-scoped user id, no username): cards show the name alone.
NETWORKS_WITHOUT_HANDLES = frozenset({"facebook"})
# The label a source gives a person the network does not name (Facebook without `from`):
# shown on cards, never used as their name in a reply.
UNNAMED_FACEBOOK_AUTHOR = "Facebook user"


def shows_handle(network: str) -> bool:
    return network not in NETWORKS_WITHOUT_HANDLES


def utcnow() -> datetime:
    return datetime.now(UTC)


def text_hash(text: str) -> str:
    """The hash of the exact bytes of a reply text (what the audit log records)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Prefixed to a private reply's text before hashing: the same words approved as a public
# reply hash differently, so an approval of one kind can never send the other.
PRIVATE_HASH_PREFIX = "socialcare private reply\x00"


def reply_hash(text: str, *, private: bool = False) -> str:
    """The hash an approval is bound to: the exact words and how they are sent."""
    return text_hash(PRIVATE_HASH_PREFIX + text if private else text)


def _clean_text(value: str) -> str:
    # NFC so the same text typed two ways dedupes and hashes alike; drop NULs and
    # other C0 controls that break terminals and Slack, keep newlines and tabs.
    value = unicodedata.normalize("NFC", value)
    value = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return value[:MAX_TEXT_CHARS]


class Mention(BaseModel):
    """One post addressed to the brand, as every source hands it to the pipeline."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    network: str = Field(min_length=1, max_length=32)
    id: str = Field(min_length=1, max_length=128)
    author_id: str = Field(min_length=1, max_length=128)
    # No spaces or markup characters: a handle is shown on cards and in thread notes.
    author_handle: str = Field(min_length=1, max_length=100, pattern=r"^@?[^\s<>&*`~|]+$")
    author_name: str = Field(default="", max_length=200)
    text: str = Field(min_length=1)
    created_at: datetime
    in_reply_to_id: str | None = None
    conversation_id: str | None = None
    url: str | None = None
    author_followers: int | None = Field(default=None, ge=0)
    author_verified: bool = False
    lang: str | None = None

    @field_validator("network")
    @classmethod
    def _lower_network(cls, value: str) -> str:
        return value.lower()

    @field_validator("id", "author_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: object) -> object:
        # X ids exceed 2**53; JSON producers often send them as numbers. Keep them exact.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("author_handle")
    @classmethod
    def _strip_at(cls, value: str) -> str:
        return value.lstrip("@")

    @field_validator("text")
    @classmethod
    def _clean(cls, value: str) -> str:
        cleaned = _clean_text(value)
        if not cleaned.strip():
            raise ValueError("text is empty")
        return cleaned

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at needs a timezone (e.g. 2026-11-22T09:00:00Z)")
        return value.astimezone(UTC)


@dataclass(frozen=True)
class Classification:
    """How a mention reads: what it wants, how it feels, how soon, whether to answer."""

    intent: Intent
    sentiment: Sentiment
    priority: Priority
    needs_reply: bool
    language: str
    source: str = "offline"
    summary: str = ""
    signals: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """Where a case goes and why, in words an admin can check."""

    department: str
    reason: str


@dataclass(frozen=True)
class Actor:
    """Who acts: a chat user id (never a display name), the surface and workspace."""

    user_id: str
    surface: str = "slack"
    team_id: str | None = None
    enterprise_id: str | None = None
    # What the surface calls them (Slack user name, Teams display name): only for the
    # words of a reply ({agent_first_name}), never for deciding who may do what.
    name: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.user_id


SYSTEM = Actor(user_id="socialcare", surface="system")


@dataclass(frozen=True)
class Case:
    id: int
    network: str
    mention_id: str
    author_id: str
    department: str
    state: CaseState
    intent: Intent
    sentiment: Sentiment
    priority: Priority
    needs_reply: bool
    language: str
    route_reason: str
    created_at: datetime
    updated_at: datetime
    claimed_by: str | None = None
    draft_text: str | None = None
    draft_by: str | None = None
    approved_hash: str | None = None
    approved_by: str | None = None
    note: str | None = None
    published_url: str | None = None
    first_response_at: datetime | None = None
    sla_due_at: datetime | None = None
    mention_count: int = 1
    mention_at: datetime | None = None
    # Since when a reply may be on the network unrecorded (an attempt's answer was lost).
    publish_uncertain_since: datetime | None = None
    # The case whose card shows this one (a near-duplicate), if any.
    group_id: int | None = None
    # The draft is a private reply (Messenger / Instagram Direct) to the comment.
    draft_private: bool = False
    # Hiding the case's comment on its network: None, "hiding", "hidden" or "unhiding".
    hidden_state: str | None = None
    hidden_by: str | None = None
    hidden_reason: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def draft_hash(self) -> str | None:
        """What an approval of the current draft is bound to (words and kind)."""
        if self.draft_text is None:
            return None
        return reply_hash(self.draft_text, private=self.draft_private)

    @property
    def publish_uncertain(self) -> bool:
        return self.publish_uncertain_since is not None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES
