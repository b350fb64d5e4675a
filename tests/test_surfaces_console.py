"""The console demo shows and accepts the Facebook/Instagram actions and the care desk."""

from __future__ import annotations

from tests.test_demo import _demo


def test_the_demo_has_a_facebook_comment_to_hide_and_answer_privately() -> None:
    lines = [
        "/care queue care",
        "as U0LEAD",
        "/care hide 13 personal data: phone number",
        "as U0AGENT1",
        "/care reply-private 13 Hi Amara, please send us your booking reference here. - Jo",
        "/care tag 13 +billing",
        "/care saved",
        "/care next",
    ]
    result = _demo(stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[ Reply privately ]" in out and "[ Hide comment ]" in out
    assert "Comment hidden on Facebook (by Morgan: personal data: phone number)" in out
    assert "Private reply (Messenger) for case #13 submitted for approval" in out
    assert "Tags: #billing" in out
    assert "Saved replies (" in out and "You claimed case #" in out
