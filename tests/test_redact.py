"""Personal data is redacted before text is sent to an LLM."""

from __future__ import annotations

import time
from typing import NamedTuple

import pytest

from bot.redact import normalise, redact


class Phrasing(NamedTuple):
    """A way customers write personal data, what must go and what must stay."""

    text: str
    secrets: tuple[str, ...]  # none of these may survive redaction
    kept: str  # the phrase, still there (in its NFKC spelling) so the model knows
    label: str = "[reference]"


# Real phrasings from customers' posts. Shared with tests/test_redact_llm.py, which sends
# each through the real AI path to the fake LLM.
PHRASINGS: list[Phrasing] = [
    # The review's finding: "booking ref" matched inside "booking reference".
    Phrasing("booking reference: ab12cd", ("ab12cd",), "booking reference:"),
    Phrasing("Booking ref ABC123", ("ABC123",), "Booking ref"),
    Phrasing("my booking ref is xk9p2q", ("xk9p2q",), "my booking ref is"),
    Phrasing("booking ref. no. 77AB12", ("77AB12",), "booking ref. no."),
    Phrasing("Booking Reference Number: 8xk2pl", ("8xk2pl",), "Booking Reference Number:"),
    Phrasing("booking reference — ab34cd thanks", ("ab34cd",), "booking reference —"),
    Phrasing("booking ref (plmokn) cancelled", ("plmokn",), "booking ref ("),
    Phrasing("booking code QWZXRT please", ("QWZXRT",), "booking code"),
    Phrasing("my booking number is zxcvbn", ("zxcvbn",), "booking number is"),
    Phrasing("booking refs: abc123, def456 and 77xy99", ("abc123", "def456", "77xy99"), "refs:"),
    Phrasing("my booking KJHGFD got lost", ("KJHGFD",), "my booking"),
    Phrasing("conf code K7X2QP", ("K7X2QP",), "conf code"),
    Phrasing("conf. no. is AB90CD", ("AB90CD",), "conf. no. is"),
    Phrasing("confirmation # 4RT6YU", ("4RT6YU",), "confirmation #"),
    Phrasing("Confirmation number is 1234567890", ("1234567890", "567890"), "Confirmation"),
    Phrasing("PNR: abcdef", ("abcdef",), "PNR:"),
    Phrasing("pnr ghijkl", ("ghijkl",), "pnr"),
    Phrasing("my PNR is Q1W2E3", ("Q1W2E3",), "my PNR is"),
    Phrasing("record locator KXQPZM", ("KXQPZM",), "record locator"),
    Phrasing("Ref: mnbvcx", ("mnbvcx",), "Ref:"),
    Phrasing("order number 123-4567", ("123-4567", "4567"), "order number"),
    Phrasing("order no. 998877", ("998877",), "order no."),
    Phrasing("order #A1B2C3", ("A1B2C3",), "order #"),
    Phrasing("order ID 1234-5678-90", ("1234-5678-90", "5678"), "order ID"),
    Phrasing("order 123456789 still not here", ("123456789",), "order"),
    Phrasing("ticket number 0012345678901", ("0012345678901", "12345678901"), "ticket number"),
    Phrasing("ticket number 016 2345678901", ("2345678901",), "ticket number"),
    Phrasing("e-ticket 016-2345678901", ("2345678901",), "e-ticket"),
    Phrasing("e-ticket number: 1252345678901", ("1252345678901",), "e-ticket number:"),
    Phrasing("reservation code: QWE123", ("QWE123",), "reservation code:"),
    Phrasing("Reservation number - xyz789", ("xyz789",), "Reservation number -"),
    Phrasing("case number CAS-12345", ("CAS-12345", "12345"), "case number"),
    Phrasing("bag tag BA123456 missing", ("BA123456",), "bag tag"),
    Phrasing("file reference LHRBA12345", ("LHRBA12345",), "file reference"),
    Phrasing("frequent flyer number 987654321", ("987654321",), "frequent flyer number"),
    # Look-alikes: NFKC turns them into the ASCII the patterns know.
    Phrasing(
        "full-width: ｂｏｏｋｉｎｇ ｒｅｆｅｒｅｎｃｅ ＡＢ１２ＣＤ",
        ("ＡＢ１２ＣＤ", "AB12CD"),
        "booking reference",
    ),
    Phrasing("ＰＮＲ：ｑｗｅｒｔｙ", ("ｑｗｅｒｔｙ", "qwerty"), "PNR:"),
    Phrasing("booking reference №ab56cd", ("ab56cd",), "booking reference"),
    Phrasing("booking ref AB\u200b78CD", ("AB\u200b78CD", "AB78CD", "78CD"), "booking ref"),
    Phrasing(
        "mail ana＠example.com",
        ("ana＠example.com", "ana@example.com", "example.com"),
        "mail",
        "[email]",
    ),
    Phrasing(
        "ａｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ is me",
        ("ａｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ana@example.com", "example.com"),
        "is me",
        "[email]",
    ),
    Phrasing("call me on +44 7700 900123", ("7700 900123", "900123"), "call me on", "[phone]"),
    Phrasing("ring ０７７００ ９００４５６", ("９００４５６", "900456"), "ring", "[phone]"),
]


@pytest.mark.parametrize("case", PHRASINGS, ids=[p.text for p in PHRASINGS])
def test_customer_phrasings_lose_the_data_and_keep_the_phrase(case: Phrasing) -> None:
    cleaned = redact(case.text)
    for secret in case.secrets:
        assert secret not in cleaned, cleaned
    assert case.label in cleaned
    assert case.kept in cleaned


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
        ("DM'd you, it's K7X2QP", "K7X2QP", "[reference]"),  # a locator with no phrase
        ("see #48151623 on your side", "48151623", "[reference]"),
    ],
)
def test_personal_data_is_replaced(text: str, secret: str, label: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert label in cleaned


def test_only_the_code_goes_and_the_whole_phrase_stays() -> None:
    # The bug from the security review: "booking ref[reference]: ab12cd".
    assert redact("booking reference: ab12cd") == "booking reference: [reference]"
    assert redact("Booking ref. no. 77AB12, help!") == "Booking ref. no. [reference], help!"
    assert redact("card 4111 1111 1111 1111 charged twice") == "card [card number] charged twice"


def test_the_nfkc_text_is_what_is_sent() -> None:
    assert redact("ｆｕｌｌ ｗｉｄｔｈ ｔｅｘｔ １２") == "full width text 12"
    assert normalise("zero\u200bwidth\ufeff") == "zerowidth"


@pytest.mark.parametrize(
    "text",
    [
        "Flight delayed 3 hours at gate 12",
        "@AcmeAir thanks for the upgrade!",
        "See you in 2026, LONDON bound",
        "I waited 45 minutes on hold",
        "I will book a flight",
        "great reference for others",
        "the order of events",
        "my booking was cancelled",
        "Where is my order?",
        "In case you missed it",
        "the ticket machine is broken",
        "the customer service was rude today",
        "MY ORDER NEVER ARRIVED",
        "booking online was painful, 2 hours of my life",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_pasted_blob_does_not_take_quadratic_time() -> None:
    blob = "a" * 200_000 + " booking ref " + " " * 50_000 + "." * 50_000
    started = time.perf_counter()
    redact(blob)
    assert time.perf_counter() - started < 2
