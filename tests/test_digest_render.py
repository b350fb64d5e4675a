"""Digest renderings: the Slack message, the plain text and the PNG chart."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from typing import Any

import pytest

from bot.audit import Head
from bot.digest import CaseLink, DepartmentFigures, Digest
from handlers.slack_cards import MAX_TOTAL_TEXT, ZWJ, total_text, validate_blocks
from handlers.slack_digest import (
    age,
    audit_entries,
    digest_message,
    digest_text,
    percent,
    period,
)
from integrations.charts import HEIGHT_PX, WIDTH_PX, digest_chart, hour_labels

HOSTILE = "<!channel> *x* <@U0BOSS> <https://evil.example|click> @here `code` _it_ ~s~ &amp;"
SINCE = "2026-11-02T09:00:00+00:00"
UNTIL = "2026-11-03T09:00:00+00:00"
HEAD = Head(1234, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")


def figures(department: str = "care", name: str = "Customer Care", **kw: Any) -> DepartmentFigures:
    data: dict[str, Any] = {
        "department": department,
        "name": name,
        "received": 0,
        "needs_reply": 0,
        "replied": 0,
        "dismissed": 0,
        "open": 0,
        "response_rate": None,
        "median_first_response_s": None,
        "p90_first_response_s": None,
        "median_first_response_business_s": None,
        "sla_breaches": 0,
        "by_intent": {},
        "by_sentiment": {},
    }
    data.update(kw)
    return DepartmentFigures(**data)


def case(case_id: int, text: str, *, url: str | None = None, **kw: Any) -> CaseLink:
    data: dict[str, Any] = {
        "case_id": case_id,
        "department": "care",
        "state": "new",
        "intent": "complaint",
        "mention_at": "2026-11-02T10:00:00+00:00",
        "text": text,
        "url": url,
    }
    data.update(kw)
    return CaseLink(**data)


def empty_day(**kw: Any) -> Digest:
    data: dict[str, Any] = {
        "brand": "Acme Air",
        "scope": "care",
        "title": "Daily digest: Customer Care",
        "since": SINCE,
        "until": UNTIL,
        "timezone": "Europe/London",
        "totals": figures(),
        "volume_by_hour": [0] * 24,
        "first_response_by_hour": [None] * 24,
    }
    data.update(kw)
    return Digest(**data)


BUSY_TOTALS = figures(
    received=12,
    needs_reply=9,
    replied=6,
    dismissed=2,
    open=4,
    response_rate=6 / 9,
    median_first_response_s=3900,  # 1 h 05 min
    p90_first_response_s=11_400,  # 3 h 10 min
    median_first_response_business_s=1500,  # 25 min
    sla_breaches=3,
    by_intent={"question": 3, "complaint": 7, "praise": 2},
    by_sentiment={"negative": 8, "neutral": 3, "positive": 1},
)


def busy_day(**kw: Any) -> Digest:
    volume = [0, 1, 0, 2, 3, 0, 0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    responses: list[float | None] = [None] * 24
    responses[1], responses[3], responses[4], responses[14] = 12.0, 65.0, 190.0, 30.5
    data: dict[str, Any] = {
        "totals": BUSY_TOTALS,
        "departments": [BUSY_TOTALS],
        "oldest_open": [
            case(41, "My flight was cancelled and nobody answers", url="https://x.com/a/status/41"),
            case(
                42,
                "Where is my refund?",
                intent="question",
                mention_at="2026-11-01T08:55:00+00:00",
                url="https://x.com/b/status/42?s=20&t=abc",
            ),
        ],
        "topics": [("refund", 5), ("#acmefail", 3), ("delay", 2)],
        "suggestions": [
            case(50, "Please add seat selection in the app", intent="suggestion", url=None),
            case(51, "Wifi on short flights", intent="suggestion", url="https://x.com/c/1"),
        ],
        "volume_by_hour": volume,
        "first_response_by_hour": responses,
    }
    data.update(kw)
    return empty_day(**data)


def all_departments(**kw: Any) -> Digest:
    depts = [
        figures("care", "Customer Care", received=8, needs_reply=6, replied=4, response_rate=4 / 6),
        figures(
            "marketing",
            "Marketing",
            received=3,
            needs_reply=2,
            replied=2,
            response_rate=1.0,
            median_first_response_s=600,
            sla_breaches=1,
        ),
        figures("press", "Press Office", received=1, needs_reply=1, response_rate=0.0, open=1),
    ]
    data: dict[str, Any] = {
        "scope": "all",
        "title": "Daily digest: All departments",
        "totals": figures(
            "all",
            "All departments",
            received=12,
            needs_reply=9,
            replied=6,
            response_rate=6 / 9,
            median_first_response_s=3900,
            by_intent={"complaint": 7, "question": 5},
            by_sentiment={"negative": 12},
        ),
        "departments": depts,
        "oldest_open": [
            case(7, "Lost bag", department="press", mention_at="2026-10-30T09:00:00+00:00")
        ],
        "audit_head": HEAD,
    }
    data.update(kw)
    return busy_day(**data)


def hostile_day(length: int = 60) -> Digest:
    text = (HOSTILE + " ") * (length // (len(HOSTILE) + 1) + 1)
    text = text[:length]
    return busy_day(
        title="Daily digest: <!channel> *x*",
        oldest_open=[case(n, text, url=f"https://x.com/s/{n}") for n in range(1, 6)],
        topics=[(HOSTILE, 4), ("<!here>", 3), ("*bold*", 2)],
        suggestions=[case(100 + n, text, intent="suggestion") for n in range(10)],
        totals=figures(
            received=3, by_intent={HOSTILE: 2, "complaint": 1}, by_sentiment={"<!here>": 3}
        ),
    )


def message_text(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def all_block_text(
    message: dict[str, Any], kinds: tuple[str, ...] = ("mrkdwn", "plain_text")
) -> str:
    """The fallback text and every text object's text, one per line."""
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") in kinds:
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message["blocks"])
    return "\n".join([message["text"], *out])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --------------------------------------------------------------------------- message


ALL_SHAPES = {
    "empty": empty_day,
    "busy": busy_day,
    "all": all_departments,
    "hostile": hostile_day,
    "hostile_long": lambda: hostile_day(10_000),
    "hostile_long_managers": lambda: replace(hostile_day(10_000), scope="all", audit_head=HEAD),
}


@pytest.mark.parametrize("shape", sorted(ALL_SHAPES))
def test_every_shape_meets_block_kit_limits(shape: str) -> None:
    message = digest_message(ALL_SHAPES[shape]())
    assert validate_blocks(message["blocks"]) == []
    assert total_text(message["blocks"]) <= MAX_TOTAL_TEXT
    assert message["text"]
    assert message["blocks"][0]["type"] == "header"
    json.dumps(message)  # serialisable as is


def test_empty_day() -> None:
    message = digest_message(empty_day())
    text = all_block_text(message)
    assert "Daily digest: Customer Care" in text
    assert "No mentions arrived" in text
    assert "*Response rate*\nn/a" in text
    assert "*First response (median / p90)*\nn/a / n/a" in text
    assert "None: every case is handled." in text
    assert not any(
        b["block_id"] in ("topics", "suggestions", "departments") for b in message["blocks"]
    )


def test_header_and_period_in_digest_timezone() -> None:
    digest = busy_day(timezone="America/New_York")
    message = digest_message(digest)
    assert message["blocks"][0]["text"]["text"] == "Daily digest: Customer Care"
    # 09:00 UTC is 04:00 in New York on 2 Nov 2026 (EST).
    assert period(digest) == "Mon 02 Nov 2026 04:00 – Tue 03 Nov 2026 04:00 (America/New_York)"
    # "_" is wrapped in zero-width joiners by the escaping; it reads the same.
    assert period(digest) in all_block_text(message).replace(ZWJ, "")
    assert period(busy_day(timezone="Not/AZone")).endswith("(UTC)")


def test_busy_day_figures() -> None:
    message = digest_message(busy_day())
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in message["blocks"][2]["fields"]
    }
    assert fields == {
        "*Received*": "12",
        "*Needs reply*": "9",
        "*Replied*": "6 of 9",
        "*Response rate*": "67%",
        "*Dismissed*": "2",
        "*Open*": "4",
        "*First response (median / p90)*": "1 h 05 min / 3 h 10 min",
        "*Median in business time*": "25 min",
        "*SLA breaches*": "3",
    }
    text = all_block_text(message)
    # sorted by count, highest first
    assert "*By intent:* complaint 7 · question 3 · praise 2" in text
    assert "*By sentiment:* negative 8 · neutral 3 · positive 1" in text
    assert "refund (5) · #acmefail (3) · delay (2)" in text
    assert "67%" in message["text"] and "1 h 05 min" in message["text"]
    # a single-department digest has no department lines
    assert not any(b["block_id"] == "departments" for b in message["blocks"])


def test_oldest_open_and_suggestions_with_links() -> None:
    message = digest_message(busy_day())
    blocks = {b["block_id"]: b for b in message["blocks"]}
    oldest = blocks["oldest_open"]["text"]["text"]
    assert "*#41* · 23 h 00 min old · complaint" in oldest
    assert "*#42* · 2 d 0 h old · question" in oldest
    assert "<https://x.com/a/status/41|view post>" in oldest
    assert "<https://x.com/b/status/42?s=20&amp;t=abc|view post>" in oldest
    assert "“Where is my refund?”" in oldest
    suggestions = blocks["suggestions"]["text"]["text"]
    assert "*#50*" in suggestions and "seat selection" in suggestions
    assert "#50" in suggestions.split("\n")[1] and "view post" not in suggestions.split("\n")[1]
    assert "<https://x.com/c/1|view post>" in suggestions


def test_unsafe_urls_are_not_linked() -> None:
    digest = busy_day(
        oldest_open=[
            case(1, "a", url="javascript:alert(1)"),
            case(2, "b", url="https://x.com/a|<!channel>"),
            case(3, "c", url="https://x.com/" + "a" * 2000),
        ]
    )
    oldest = {b["block_id"]: b for b in digest_message(digest)["blocks"]}["oldest_open"]
    assert "view post" not in oldest["text"]["text"]
    assert "<!channel>" not in oldest["text"]["text"]


def test_scope_all_has_one_line_per_department() -> None:
    message = digest_message(all_departments())
    blocks = {b["block_id"]: b for b in message["blocks"]}
    lines = blocks["departments"]["text"]["text"].split("\n")
    assert lines[0] == "*By department*"
    assert len(lines) == 4
    assert lines[1].startswith("• *Customer Care*: 8 received · 4 of 6 replied (67%)")
    assert "*Marketing*: 3 received · 2 of 2 replied (100%) · median 10 min" in lines[2]
    assert "· 1 SLA breach ·" in lines[2]
    assert "· 0 SLA breaches ·" in lines[1]
    assert "*Press Office*: 1 received · 0 of 1 replied (0%) · median n/a" in lines[3]
    # oldest open cases name their department in a cross-department digest
    assert "*#7* · 4 d 0 h old · complaint · Press Office" in blocks["oldest_open"]["text"]["text"]


def test_many_departments_are_cut_with_a_count() -> None:
    depts = [figures(f"d{n}", f"Department number {n}", received=n) for n in range(60)]
    message = digest_message(all_departments(departments=depts))
    assert validate_blocks(message["blocks"]) == []
    text = {b["block_id"]: b for b in message["blocks"]}["departments"]["text"]["text"]
    assert "more departments_" in text


@pytest.mark.parametrize("length", [60, 10_000])
def test_hostile_text_never_pings_or_formats(length: int) -> None:
    message = digest_message(hostile_day(length))
    raw = message_text(message)
    blob = all_block_text(message)
    assert validate_blocks(message["blocks"]) == []
    for live in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example|click>"):
        assert live not in raw
        assert live not in blob
    assert "&lt;!channel&gt;" in blob
    # markers in mrkdwn are wrapped in zero-width joiners (plain_text never formats)
    assert "*x*" not in all_block_text(message, ("mrkdwn",))
    assert "@here" not in blob
    if length > len(HOSTILE):
        assert "&amp;amp;" in blob  # an entity in the text shows as typed
    # Our own links are still there.
    assert "<https://x.com/s/1|view post>" in blob


def test_long_texts_are_truncated() -> None:
    message = digest_message(hostile_day(10_000))
    blocks = {b["block_id"]: b for b in message["blocks"]}
    oldest = blocks["oldest_open"]["text"]["text"]
    assert "…”" in oldest
    assert len(oldest) < 3000
    for line in oldest.split("\n")[1:]:
        assert len(line) < 400


def test_many_long_suggestions_are_counted() -> None:
    text = "x" * 10_000
    digest = busy_day(
        suggestions=[
            case(n, text, intent="suggestion", url=f"https://x.com/{'a' * 480}/{n}")
            for n in range(40)
        ]
    )
    message = digest_message(digest)
    assert validate_blocks(message["blocks"]) == []
    suggestions = {b["block_id"]: b for b in message["blocks"]}["suggestions"]["text"]["text"]
    shown = suggestions.count("view post")
    assert 1 <= shown <= 10
    assert f"_…and {40 - shown} more_" in suggestions


def test_fallback_text_is_escaped() -> None:
    message = digest_message(hostile_day())
    assert "<!channel>" not in message["text"]
    assert message["text"].startswith("Daily digest: &lt;!channel&gt;")


# --------------------------------------------------------------------------- plain text


def test_digest_text_has_the_key_figures() -> None:
    text = digest_text(busy_day())
    assert text.startswith("Daily digest: Customer Care\n")
    assert "Mon 02 Nov 2026 09:00 – Tue 03 Nov 2026 09:00 (Europe/London)" in text
    assert "Received                 12" in text
    assert "Replied                  6 of 9" in text
    assert "Response rate            67%" in text
    assert "First response, median   1 h 05 min" in text
    assert "First response, p90      3 h 10 min" in text
    assert "Median in business time  25 min" in text
    assert "SLA breaches             3" in text
    assert "By intent: complaint 7, question 3, praise 2" in text
    assert "#41 · 23 h 00 min old · complaint" in text
    assert "https://x.com/a/status/41" in text
    assert "Most frequent topics: refund (5), #acmefail (3), delay (2)" in text
    assert "#50 · suggestion" in text
    assert "*" not in text and "<" not in text and "&lt;" not in text


def test_digest_text_for_all_departments_and_empty_days() -> None:
    text = digest_text(all_departments())
    assert "  - Marketing: 3 received, 2 of 2 replied (100%), median 10 min" in text
    assert "Press Office" in text
    empty = digest_text(empty_day())
    assert "Response rate            n/a" in empty
    assert "Oldest open cases:\n  none" in empty


def test_digest_text_is_clean_for_terminals() -> None:
    digest = hostile_day(10_000)
    digest = busy_day(
        oldest_open=[case(1, "\x1b[31mred\x1b[0m\nsecond line " + HOSTILE)],
        suggestions=digest.suggestions,
    )
    text = digest_text(digest)
    assert "\x1b" not in text
    assert "<!channel>" not in text
    assert "@here" not in text
    line = next(li for li in text.splitlines() if li.startswith("  - #1 "))
    assert "red" in line and "m second line" in line  # ESC dropped, one line
    assert max(len(li) for li in text.splitlines()) < 400


def test_the_managers_digest_shows_the_whole_audit_head_to_copy() -> None:
    message = digest_message(all_departments())
    block = next(b for b in message["blocks"] if b["block_id"] == "audit_head")
    assert f"Audit log: 1,234 entries, head `{HEAD}`" in block["elements"][0]["text"]
    assert str(HEAD) == f"1234:{HEAD.hash}" and len(HEAD.hash) == 64
    text = digest_text(all_departments())
    assert f"Audit log: 1,234 entries, head {HEAD}\n" in text
    assert "socialcare audit verify --expect-head" in text
    # Never among the sections dropped to fit a crowded message.
    crowded = digest_message(ALL_SHAPES["hostile_long_managers"]())
    assert str(HEAD) in all_block_text(crowded)


def test_a_department_digest_has_no_audit_head() -> None:
    assert "Audit log" not in all_block_text(digest_message(busy_day()))
    assert "Audit log" not in digest_text(busy_day())


def test_the_audit_head_survives_the_outbox_round_trip() -> None:
    digest = all_departments()
    assert Digest.from_json(json.loads(json.dumps(digest.to_json()))) == digest
    queued_before = {k: v for k, v in digest.to_json().items() if k != "audit_head"}
    assert Digest.from_json(queued_before).audit_head is None


def test_helpers() -> None:
    assert percent(None) == "n/a"
    assert percent(2 / 3) == "67%"
    assert percent(1.0) == "100%"
    assert age("2026-11-03T08:30:00+00:00", UNTIL) == "30 min"
    assert age("2026-11-03T07:55:00+00:00", UNTIL) == "1 h 05 min"
    assert age("garbage", UNTIL) == "age unknown"
    assert audit_entries(HEAD) == "1,234 entries"
    assert audit_entries(Head(1, HEAD.hash)) == "1 entry"


# --------------------------------------------------------------------------- chart


@pytest.mark.parametrize("shape", sorted(ALL_SHAPES))
def test_chart_is_a_png_of_the_expected_size(shape: str) -> None:
    data = digest_chart(ALL_SHAPES[shape]())
    assert data.startswith(b"\x89PNG")
    assert png_size(data) == (WIDTH_PX, HEIGHT_PX) == (1000, 500)
    assert len(data) < 150_000


def test_chart_handles_missing_and_odd_data() -> None:
    for digest in (
        empty_day(volume_by_hour=[], first_response_by_hour=[]),
        empty_day(volume_by_hour=[5] * 30, first_response_by_hour=[1.0] * 3),
        empty_day(title="$x^$ \\frac{ <!channel>", since="not a date", timezone="Nowhere/Zone"),
        busy_day(first_response_by_hour=[float("nan"), float("inf")] + [None] * 22),
    ):
        assert png_size(digest_chart(digest)) == (1000, 500)


def test_chart_hour_labels_follow_the_digest_timezone() -> None:
    assert hour_labels(busy_day())[:3] == ["09", "10", "11"]
    assert hour_labels(busy_day(timezone="Asia/Kolkata"))[:2] == ["14", "15"]
    # Europe/London leaves summer time at 02:00 BST on 25 Oct 2026: 01:00 happens twice.
    dst = busy_day(since="2026-10-24T23:00:00+00:00", until="2026-10-25T23:00:00+00:00")
    assert hour_labels(dst)[:4] == ["00", "01", "01", "02"]
