"""Redaction of personal data before any text leaves the machine (for the LLM).

Emails, phone numbers, payment card numbers and booking/order references become
placeholders like [email]. Nothing is ever restored: suggestions refer to such things
generically ("your booking"), and staff see the original text on the card.
"""

from __future__ import annotations

import re

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)),
    # References first, so "order 123456789" is a reference, not a phone number.
    (
        "reference",
        re.compile(
            r"(?i)\b(?:booking|order|confirmation|reservation|ticket|ref(?:erence)?|pnr|case)"
            r"(?:\s+(?:no|number|num|code|id|ref))?\.?\s*(?:is\s*)?[:#]?\s*([A-Z0-9-]{4,20})\b"
        ),
    ),
    ("reference", re.compile(r"#\d{4,}\b")),
    ("card number", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    (
        "phone",
        re.compile(
            r"(?<![\w@\[])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}\b"
        ),
    ),
    # Airline-style record locators: 6 capitals and digits mixed, e.g. K7X2QP.
    ("reference", re.compile(r"\b(?=[A-Z0-9]{6}\b)(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6}\b")),
]


def redact(text: str) -> str:
    """Replace personal data with [email], [phone], [card number] or [reference]."""
    for label, pattern in _PATTERNS:
        if label == "reference" and pattern.groups:
            # Keep the word ("booking ref"), replace only the code after it.
            text = pattern.sub(lambda m: m.group(0).replace(m.group(1), "[reference]"), text)
        else:
            text = pattern.sub(f"[{label}]", text)
    return text
