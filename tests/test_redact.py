"""Personal data is redacted before text is sent to an LLM."""

from __future__ import annotations

import pytest

from bot.redact import redact


@pytest.mark.parametrize(
    ("text", "secret", "label"),
    [
        ("mail me at jane.doe+air@example.co.uk please", "jane.doe+air@example.co.uk", "[email]"),
        ("call +44 20 7946 0958 now", "7946 0958", "[phone]"),
        ("my number is (555) 123-4567", "123-4567", "[phone]"),
        ("ring 07700 900123", "900123", "[phone]"),
        ("booking ref K7X2QP was cancelled", "K7X2QP", "[reference]"),
        ("Booking number: ABC12345 still nothing", "ABC12345", "[reference]"),
        ("order #4815162342 never arrived", "4815162342", "[reference]"),
        ("my PNR is Q1W2E3", "Q1W2E3", "[reference]"),
        ("card 4111 1111 1111 1111 charged twice", "4111 1111 1111 1111", "[card number]"),
    ],
)
def test_personal_data_is_replaced(text: str, secret: str, label: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert label in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "Flight delayed 3 hours at gate 12",
        "@AcmeAir thanks for the upgrade!",
        "See you in 2026, LONDON bound",
        "I waited 45 minutes on hold",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text
