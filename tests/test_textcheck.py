"""Outgoing reply checks: X's weighted length, the author's handle, other handles, phrases."""

from __future__ import annotations

import pytest

from bot.errors import Refusal
from bot.service import CareService
from bot.textcheck import check_reply, weighted_length
from tests.conftest import AGENT, new_case


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("hello", 5),
        ("https://example.com/a/very/long/path/that/goes/on/and/on", 23),
        ("see https://example.com", 27),
        ("日本語", 6),  # CJK counts 2
        ("👍", 2),  # emoji count 2
    ],
)
def test_weighted_length_counts_as_x_does(text: str, length: int) -> None:
    assert weighted_length(text) == length


def test_a_reply_over_280_says_by_how_much() -> None:
    text = "@maya " + "a" * 280
    [problem] = check_reply(text, author_handle="maya")
    assert "286 characters" in problem and "6 over the limit of 280" in problem


def test_cjk_counts_double_toward_the_limit() -> None:
    assert check_reply("@maya " + "日" * 137, author_handle="maya") == []
    assert "over the limit" in check_reply("@maya " + "日" * 138, author_handle="maya")[0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("@maya", "empty"),
        ("thanks!", "does not address @maya"),
        ("@maya ask @competitor instead", "other accounts (@competitor)"),
        ("@maya we GUARANTEE a refund", "forbidden phrase"),
    ],
)
def test_reply_problems(text: str, problem: str) -> None:
    problems = check_reply(text, author_handle="maya", forbidden=["guarantee"])
    assert any(problem in p for p in problems), problems


def test_an_email_address_is_not_a_handle() -> None:
    assert check_reply("@maya write to help@acme.example", author_handle="maya") == []


def test_drafts_get_the_handle_and_too_long_drafts_are_refused(service: CareService) -> None:
    case_id = new_case(service)
    assert service.set_draft(AGENT, case_id, "On it!").draft_text == "@maya On it!"
    with pytest.raises(Refusal, match="over the limit"):
        service.set_draft(AGENT, case_id, "x" * 300)
    assert service.get_case(case_id).draft_text == "@maya On it!"


@pytest.mark.parametrize(
    ("text", "link"),
    [
        ("see https://evil.example/refund", True),
        ("claim at acme-refunds.info now", True),
        ("go to acmeair.support/claim", True),
        ("visit www.phish.example", True),
        ("hello world. Thanks", False),
        ("DM us your details", False),
    ],
)
def test_links_are_found_as_x_would_find_them(text: str, link: bool) -> None:
    from bot.textcheck import has_link

    assert has_link(text) is link


def test_a_full_width_at_sign_is_a_handle_too() -> None:
    assert "other accounts" in check_reply("@maya ask ＠AcmeRefundDesk", author_handle="maya")[0]
