"""The interfaces the outside world implements. `bot` depends on these, never on SDKs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.models import Mention


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock tests and the scripted demo move by hand."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self._now += timedelta(seconds=seconds)


class MentionSource(Protocol):
    """A network watched for brand mentions.

    `poll_due()` fetches whatever is due now, hands each batch to `ingest` (which stores
    it durably), and only then moves its cursor forward, so a crash re-fetches rather
    than loses. It returns False when nothing was due, so the caller can idle.
    """

    name: str

    def poll_due(self, ingest: Callable[[list[Mention]], object]) -> bool: ...


@dataclass(frozen=True)
class PublishRequest:
    """One reply to post. `attempt_key` is stable across retries of the same approval."""

    attempt_key: str
    network: str
    in_reply_to_id: str
    author_handle: str
    text: str
    # A private reply (Facebook Messenger / Instagram Direct) to the comment
    # `in_reply_to_id`, instead of a public reply under it. Only Meta networks take it.
    private: bool = False


@dataclass(frozen=True)
class PublishedReply:
    post_id: str
    url: str


class ReplyPublisher(Protocol):
    """Posts approved replies. Raise bot.errors.PublishError on failure."""

    def publish(self, request: PublishRequest) -> PublishedReply: ...

    def find_existing(self, request: PublishRequest) -> PublishedReply | None:
        """After a crash mid-publish: was this attempt already posted? None if not."""
        ...


class CommentModerator(Protocol):
    """Hides (or shows again) a comment on the network it was made on, through the
    network's one service credential. Raise bot.errors.PublishError on failure;
    hiding an already hidden comment succeeds."""

    def set_hidden(self, network: str, comment_id: str, hidden: bool) -> None: ...


@dataclass(frozen=True)
class MessageRef:
    """Where a card lives on a chat surface."""

    channel: str
    message_id: str


class ChatSurface(Protocol):
    """A chat surface cards are posted to. Raise bot.errors.DeliveryError on failure."""

    name: str

    def channel_for(self, department_id: str) -> str | None: ...

    def post_card(self, channel: str, view: object) -> MessageRef: ...

    def update_card(self, ref: MessageRef, view: object) -> None: ...

    def post_note(self, ref: MessageRef, text: str) -> None: ...

    def target(self, to: str) -> str | None:
        """Where a notice goes: a department id, "managers", or "user:<id>"; None: nowhere."""
        ...

    def notify(self, channel: str, text: str) -> None: ...

    def send_digest(self, channel: str, digest: object) -> None: ...
