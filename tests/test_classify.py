"""The offline classifier on small hand-written mentions (no network, no data files)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.classify import Classifier, OfflineClassifier, detect_language, vader_compound
from bot.models import Classification, Intent, Mention, Priority, Sentiment


def mention(text: str, **extra: object) -> Mention:
    fields: dict[str, object] = {
        "network": "x",
        "id": "1",
        "author_id": "a1",
        "author_handle": "someone",
        "text": text,
        "created_at": datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    }
    fields.update(extra)
    return Mention.model_validate(fields)


@pytest.fixture(scope="module")
def classifier() -> OfflineClassifier:
    return OfflineClassifier()


def read(classifier: OfflineClassifier, text: str, **extra: object) -> Classification:
    return classifier.classify(mention(text, **extra))


COMPLAINTS = [
    "@shopco my order still hasn't arrived after 2 weeks and nobody answers the phone",
    "@netfast internet has been down since Monday, third call and still no fix",
    "@homegoods the sofa was delivered damaged and the refund never came",
    "@paybank I was charged twice for the same order, fix this please",
    "@skyline my flight was cancelled and I've been stuck at the gate for 5 hours",
    "@parcelnow you lost my package and the agent was rude to me",
    "@mobileco been on hold for 40 minutes just to cancel a contract",
]


@pytest.mark.parametrize("text", COMPLAINTS)
def test_trouble_reads_as_negative_complaint_needing_a_reply(
    classifier: OfflineClassifier, text: str
) -> None:
    reading = read(classifier, text)
    assert reading.sentiment is Sentiment.NEGATIVE
    assert reading.intent is Intent.COMPLAINT
    assert reading.needs_reply is True
    assert reading.priority in {Priority.NORMAL, Priority.HIGH, Priority.URGENT}
    assert any(s.startswith("trouble words") for s in reading.signals)


SARCASM = [
    "Great, another 3 hour delay. Thanks a lot",
    "@acme love being on hold for 45 minutes, really great service",
    "@acme thanks for nothing, my parcel is lost again",
    "@acme wow, thank you so much for cancelling my order without telling me",
    "@acme oh great, the app crashed again right at checkout. Awesome job",
    "@acme just what I needed today, a delayed delivery and no updates",
]


@pytest.mark.parametrize("text", SARCASM)
def test_praise_around_trouble_is_sarcasm(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert reading.sentiment is Sentiment.NEGATIVE, reading.signals
    assert reading.intent is Intent.COMPLAINT
    assert reading.needs_reply is True


@pytest.mark.parametrize(
    "text",
    [
        "@acme Thank you so much, the team was amazing and the delivery came early!",
        "@acme you guys rock, best customer service I've had all year",
        "@acme Loved the new store, the staff were so friendly and helpful. Kudos!",
        "@acme thanks for rebooking me so fast after the delay, great crew!",
    ],
)
def test_praise_is_positive_and_needs_no_reply(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert reading.sentiment is Sentiment.POSITIVE, reading.signals
    assert reading.intent is Intent.PRAISE
    assert reading.needs_reply is False
    assert reading.priority is Priority.LOW


@pytest.mark.parametrize(
    "text",
    [
        "@acme Hi, I'm a journalist at the Daily Courier writing a story on deliveries, "
        "could your press office comment?",
        "@acme reporter here, request for comment on today's outage before our 5pm deadline",
    ],
)
def test_press_request_is_high_priority(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert reading.intent is Intent.PRESS
    assert reading.priority is Priority.HIGH
    assert reading.needs_reply is True


@pytest.mark.parametrize(
    "text",
    [
        "@acme What is your pricing for a group of 40 people? We'd like a quote for our trip",
        "@acme do you have group booking rates? Our company wants to book a team offsite",
    ],
)
def test_group_pricing_question_is_a_lead(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert reading.intent is Intent.LEAD
    assert reading.needs_reply is True


@pytest.mark.parametrize(
    "text",
    [
        "@acme you should add a dark mode to the app",
        "@acme it would be great if you could offer weekend opening hours",
        "@acme feature request: let us save more than one delivery address",
    ],
)
def test_suggestion(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert reading.intent is Intent.SUGGESTION
    assert reading.needs_reply is True


@pytest.mark.parametrize(
    "text",
    [
        "@acme Free crypto giveaway!!! follow me and click here to earn $500 a day",
        "@acme check out my profile for bitcoin tips, follow back",
    ],
)
def test_spam_needs_no_reply_and_is_low(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert reading.intent is Intent.SPAM
    assert reading.needs_reply is False
    assert reading.priority is Priority.LOW


def test_follow_me_to_dm_is_not_spam(classifier: OfflineClassifier) -> None:
    reading = read(classifier, "@acme could you follow me so I can DM you my order number?")
    assert reading.intent is not Intent.SPAM
    assert reading.needs_reply is True


@pytest.mark.parametrize(
    "text",
    [
        "@acme my wheelchair was damaged during the flight and nobody helps",
        "@acme medical emergency on board, we need help now",
        "@acme the heater you sold me caught fire, this is a safety issue",
    ],
)
def test_urgent_cues(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert reading.priority is Priority.URGENT
    assert reading.needs_reply is True
    assert any(s.startswith("urgent cue") for s in reading.signals)


@pytest.mark.parametrize(
    "extra",
    [{"author_verified": True}, {"author_followers": 250_000}],
)
def test_influential_complaint_is_high_priority(
    classifier: OfflineClassifier, extra: dict[str, object]
) -> None:
    text = "@acme my order is two weeks late and still no tracking"
    assert read(classifier, text).priority is Priority.NORMAL
    reading = read(classifier, text, **extra)
    assert reading.intent is Intent.COMPLAINT
    assert reading.priority is Priority.HIGH
    assert "influential author" in reading.signals


def test_follower_threshold_is_configurable() -> None:
    text = "@acme my order is two weeks late and still no tracking"
    strict = OfflineClassifier(high_followers=1_000)
    assert strict.classify(mention(text, author_followers=1_500)).priority is Priority.HIGH
    assert OfflineClassifier().classify(mention(text, author_followers=1_500)).priority is (
        Priority.NORMAL
    )


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Mi pedido no ha llegado todavía y nadie responde al teléfono, estoy muy molesto", "es"),
        ("Ma commande n'est jamais arrivée et personne ne répond au service client", "fr"),
        ("My order never arrived and nobody answers the phone at customer service", "en"),
    ],
)
def test_language_detected(classifier: OfflineClassifier, text: str, language: str) -> None:
    assert read(classifier, text).language == language
    assert detect_language(text) == language


def test_short_text_falls_back_to_default_language() -> None:
    assert detect_language("@acme ok", fallback="de") == "de"
    assert OfflineClassifier(default_language="nl").classify(mention("@acme ok")).language == "nl"


@pytest.mark.parametrize("lang", ["de", "pt"])
def test_explicit_mention_lang_is_respected(classifier: OfflineClassifier, lang: str) -> None:
    text = "My order never arrived and nobody answers the phone at customer service"
    assert read(classifier, text, lang=lang).language == lang


def test_undetermined_lang_is_detected(classifier: OfflineClassifier) -> None:
    text = "Ma commande n'est jamais arrivée et personne ne répond au service client"
    assert read(classifier, text, lang="und").language == "fr"


@pytest.mark.parametrize(
    ("text", "needs_reply"),
    [
        ("@acme how do I change the delivery address on my order?", True),
        ("@acme can you tell me when the Leeds store opens on Sunday?", True),
        ("Watching the match tonight with @acme snacks", False),
    ],
)
def test_questions_need_replies_and_chatter_does_not(
    classifier: OfflineClassifier, text: str, needs_reply: bool
) -> None:
    reading = read(classifier, text)
    assert reading.needs_reply is needs_reply
    if needs_reply:
        assert reading.intent in {Intent.QUESTION, Intent.COMPLAINT}
    else:
        assert reading.intent in {Intent.OTHER, Intent.PRAISE}


def test_brand_handle_does_not_colour_sentiment(classifier: OfflineClassifier) -> None:
    # A brand whose handle is a happy word must not make a flat message sound positive.
    reading = read(classifier, "@LoveCo @GreatStore the new catalogue arrives Monday")
    assert reading.sentiment is Sentiment.NEUTRAL


@pytest.mark.parametrize(
    "text",
    COMPLAINTS[:2] + SARCASM[:2] + ["@acme you should add a dark mode to the app"],
)
def test_signals_explain_the_reading(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert reading.signals
    assert all(isinstance(s, str) and s for s in reading.signals)
    assert reading.source == "offline"


def test_plain_text_without_cues_is_neutral_other(classifier: OfflineClassifier) -> None:
    reading = read(classifier, "@acme the spring catalogue is out today")
    assert reading.sentiment is Sentiment.NEUTRAL
    assert reading.intent is Intent.OTHER
    assert reading.needs_reply is False
    assert reading.priority is Priority.LOW


def test_offline_classifier_satisfies_the_protocol() -> None:
    instance: Classifier = OfflineClassifier()
    assert isinstance(instance.classify(mention("@acme hello there")), Classification)


def test_vader_compound_is_plain_vader() -> None:
    assert vader_compound("I love this, it is great") > 0.5
    assert vader_compound("this is terrible and awful") < -0.5
    assert vader_compound("the shop opens at nine") == 0.0


@pytest.mark.parametrize(
    "text",
    ["!!!", "🙂", "@acme", "http://example.com/x", "#", "a" * 5000, "?" * 50],
)
def test_odd_text_does_not_raise(classifier: OfflineClassifier, text: str) -> None:
    reading = read(classifier, text)
    assert isinstance(reading.intent, Intent)
    assert reading.language
