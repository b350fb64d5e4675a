"""The small exception hierarchy every layer translates to and from."""

from __future__ import annotations


class SocialcareError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(SocialcareError):
    """The config file is missing or invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class CredentialRejected(ConfigError):
    """A service refused one of our credentials at start-up: the message names the
    environment variable. Exit 2, like any other configuration problem."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])


class AlreadyRunning(ConfigError):
    """Another `socialcare run` holds this SQLite database (exit 2)."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])


class AlreadyDelivered(SocialcareError):
    """The action's delivery id was handled before (a chat platform retrying): nothing
    was done again. Not a refusal: nobody is told, nothing is audited."""


class DependencyUnreachable(SocialcareError):
    """A service could not be reached (or answered oddly) at start-up: the bot starts
    degraded and keeps retrying."""


class Refusal(SocialcareError):
    """An action a user asked for that is not allowed now; the message is shown to them."""

    def __init__(self, message: str, *, code: str = "refused") -> None:
        self.code = code
        super().__init__(message)


class NotAllowed(Refusal):
    """The acting user lacks the role this action needs."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_allowed")


class InvalidTransition(Refusal):
    """The case is in a state where this action does not apply."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="wrong_state")


class UnknownCase(Refusal):
    """No case has the number given."""

    def __init__(self, case_id: object) -> None:
        super().__init__(f"There is no case #{case_id}.", code="unknown_case")


class InvalidMention(SocialcareError):
    """A mention record failed validation (bad JSON, missing or malformed fields)."""


class PublishError(SocialcareError):
    """Publishing a reply failed; `permanent` says whether retrying can help.

    `maybe_posted`: the network may have taken the post although we got no answer (a
    timeout, a 5xx, a lost response), so nothing new may be posted before a check.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        maybe_posted: bool = False,
        outage: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.permanent = permanent
        self.maybe_posted = maybe_posted
        # The network said when to come back (a rate limit): nothing is wrong with the
        # reply, so waiting costs it none of its attempts.
        self.retry_after = retry_after
        # The network is not working for us (unreachable, or our credential refused), as
        # opposed to refusing this one reply; by default, any transient error.
        self.outage = (not permanent) if outage is None else outage
        super().__init__(message)


class DeliveryError(SocialcareError):
    """A chat post failed; `retry_after` (seconds) when the surface said when to retry.

    `outage`: the surface itself is not working (unreachable, or our token refused), as
    opposed to one message it would not take; by default, any transient error.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        outage: bool | None = None,
    ) -> None:
        self.permanent = permanent
        self.retry_after = retry_after
        self.outage = (not permanent) if outage is None else outage
        super().__init__(message)
