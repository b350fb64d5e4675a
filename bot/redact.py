"""Redaction of personal data before any text leaves the machine (for the LLM).

Emails, phone numbers, payment card numbers and booking/order references become
placeholders like [email]. Nothing is ever restored: suggestions refer to such things
generically ("your booking"), and staff see the original text on the card.

The text is NFKC-normalised first and the normalised, redacted text is what is sent:
full-width letters, digits and signs ("ａｎａ＠ｅｘａｍｐｌｅ.ｃｏｍ", "ＡＢ１２ＣＤ") would
otherwise slip past patterns written for ASCII. When in doubt we redact: losing one
ordinary word after "booking ref" costs the model little, leaking a code is a breach.
"""

from __future__ import annotations

import re
import unicodedata

# -- reference phrases ("booking ref", "PNR", "order #") and the code after them

# Nouns that name a booking-like thing. On their own they are ordinary words ("the order
# of events"), so a bare noun only counts when a code-shaped token follows it; with an
# id word ("order number") or a sign ("order #", "booking:") anything code-sized does.
_NOUN = (
    r"frequent[\s-]*fl[yi]er|e-?tickets?|etkt|reservation|confirmation|membership|"
    r"itinerary|reference|booking|customer|baggage|bag[\s-]*tag|account|loyalty|voucher|"
    r"record|ticket|claim|order|case|file|conf|tag|ref"
)
# Words that always introduce a code, even with no id word after them.
_STRONG_NOUN = r"record[\s-]*locator|locator|e-?tickets?|etkt|pnrs?"
# Id words after a noun ("booking reference number", "ref. no."). Longest first, and each
# must end at a word boundary: "booking ref" must never match inside "booking reference".
_ID_WORD = (
    r"references|reference|locators|locator|numbers|number|codes|code|refs|ref|nos|num|nr|no|ids|id"
)
# What may stand between the phrase and the code: punctuation, quotes, brackets and the
# little words customers put there ("is", "was", "no.", "#"). One character or word per
# step, so a long run of spaces cannot make the engine backtrack exponentially.
_SEP = r"(?:[\s:#=.,\-–—(\"'“”‘’]|(?i:is|was|no|nr|num)\b)*"
_END = r"(?![A-Za-z0-9])"
# A code: letters and digits, 4-20 characters, may contain "-" but not start or end with it;
# or digit groups split by single spaces or dashes ("016 2345678901"), just as secret.
_DIGIT_GROUPS = r"(?=(?:\d[ -]?){4})\d{1,20}(?:[ -]\d{1,20}){1,5}"
_ALNUM = r"[A-Za-z0-9][A-Za-z0-9-]{2,18}[A-Za-z0-9]"
_CODE = rf"(?:{_DIGIT_GROUPS}|{_ALNUM})"
# After a bare noun, only a token that looks like a code: it has a digit ("booking
# ab12cd", "order 123456789") or is six capitals, the shape of an airline PNR (KXQPZM).
# A lowercase word is taken for a word ("booking failed", "customer service"): redacting
# every word after "order" or "customer" would leave the model little to read.
_LIKELY_CODE = rf"(?:{_DIGIT_GROUPS}|(?=[A-Za-z0-9-]*\d){_ALNUM}|[A-Z]{{6}})"

# The code is never itself a phrase word: when nothing code-like follows "booking reference
# number?", backtracking must not settle for "booking reference" and take "number" as code.
_NOT_A_WORD = rf"(?!(?i:(?:{_ID_WORD}|{_NOUN})s?){_END})"

_PHRASE = re.compile(
    rf"(?P<keep>\b(?i:(?:{_NOUN})s?(?:[\s.\-]*(?:{_ID_WORD}){_END})+"  # booking ref, order no.
    rf"|(?:{_STRONG_NOUN})(?:[\s.\-]*(?:{_ID_WORD}){_END})*{_END}"  # PNR, record locator
    rf"|(?:{_NOUN})s?\s*[:#=])"  # booking: / order # / reference=
    rf"{_SEP}){_NOT_A_WORD}(?P<code>{_CODE}){_END}"
)
_BARE_NOUN = re.compile(
    rf"(?P<keep>\b(?i:(?:{_NOUN})s?){_END}{_SEP}){_NOT_A_WORD}(?P<code>{_LIKELY_CODE}){_END}"
)
# "booking refs ABC123, def456 and 77XY99": the second and later codes of a list.
_LIST_MORE = re.compile(
    rf"(?P<keep>\[reference\]\s*(?:[,/&+]|(?i:and|or)\b)\s*)"
    rf"{_NOT_A_WORD}(?P<code>{_LIKELY_CODE}){_END}"
)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    # Only from the start of a run of address characters: otherwise a long word is tried
    # from each of its letters in turn, quadratic time on a pasted blob.
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    # References first, so "order 123456789" is a reference, not a phone number.
    ("reference", _PHRASE),
    ("reference", _BARE_NOUN),
    ("reference", _LIST_MORE),
    ("reference", re.compile(r"#\d{4,}\b")),
    ("card number", re.compile(r"\b\d(?:[ -]?\d){12,18}\b")),
    (
        "phone",
        re.compile(
            r"(?<![\w@\[])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}\b"
        ),
    ),
    # Airline-style record locators: 6 capitals and digits mixed, e.g. K7X2QP.
    ("reference", re.compile(r"\b(?=[A-Z0-9]{6}\b)(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6}\b")),
]


def normalise(text: str) -> str:
    """NFKC, minus invisible format characters, so look-alike spellings match the patterns.

    Zero-width spaces and joiners (Unicode category Cf) would otherwise split a code
    (AB, zero-width space, 12CD) so that no pattern sees it whole; the model does not
    need them.
    """
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def redact(text: str) -> str:
    """Replace personal data with [email], [phone], [card number] or [reference].

    The result is the normalised text (see normalise()) with the data replaced.
    """
    text = normalise(text)
    for label, pattern in _PATTERNS:
        if "keep" not in pattern.groupindex:
            text = pattern.sub(f"[{label}]", text)
            continue
        # Keep the phrase ("booking ref: "): the model still needs to know a reference was
        # given, just not which one.
        text, count = pattern.subn(rf"\g<keep>[{label}]", text)
        # A list ("refs: A1B2C3, D4E5F6, ...") loses one more code per pass. Every pass
        # that matches turns a code into "[reference]", so the loop ends.
        while count and pattern is _LIST_MORE:
            text, count = pattern.subn(rf"\g<keep>[{label}]", text)
    return text
