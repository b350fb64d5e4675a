"""Reading a mention: the Classifier port and the offline classifier that always works.

The offline classifier needs no network and no key. Sentiment is VADER (a maintained,
social-media-tuned lexicon that ships in its package) adjusted for customer care:

* @handles and links are dropped before scoring (a brand called "United" or "Love"
  must not make every mention of it sound happy), hashtags count as words;
* words that are requests rather than feelings in a support queue ("help", "please",
  "hope", "care", "support") are neutral;
* trouble cues VADER does not know ("delayed", "still waiting", "on hold for 2 hours",
  "lost my bag", "hung up on me") read negative, and so does praise around trouble
  ("thanks for nothing", "great, another delay", "love being on hold") - sarcasm;
* weaker complaint context (a time span, "still", "again", "why", "can't", a service
  word like order/bag/agent/refund) tips an otherwise flat mention to negative.

Language is py3langid (its model ships in the package); intent, priority and
needs-reply are explicit rules whose matched cues are kept as `signals`, so a card
and `socialcare classify` can say why.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from bot.models import Classification, Intent, Mention, Priority, Sentiment

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


class Classifier(Protocol):
    """Anything that reads a mention. Must not raise for ordinary text."""

    def classify(self, mention: Mention) -> Classification: ...


def _cues(*phrases: str) -> re.Pattern[str]:
    # Matched against lower-cased text: re.IGNORECASE makes these alternations ~5x slower.
    return re.compile(r"\b(?:" + "|".join(phrases) + r")\b")


_NUMBER = (
    r"(?:\d+(?:\.\d+)?\+?|a few|few|several|two|three|four|five|six|seven|eight|nine|ten|"
    r"twelve|an?)"
)
_SPAN = rf"{_NUMBER}\s*(?:hours?|hrs?|h|days?|weeks?|months?|mins?|minutes?)"

# Customer-care trouble: a problem report, whatever VADER thinks of the words.
_TROUBLE = _cues(
    r"delay(?:ed|s|ing)?",
    r"cancel+(?:ed|ing|ation|ations|s)?",
    r"(?:running|arrived|arriving|still|so|very|too|hours?|days?) late",
    r"late (?:again|delivery|arrival|flight|order|package)",
    r"lost (?:my |our |the |his |her |a )?(?:bag|bags|luggage|suitcase|order|package|parcel|"
    r"booking|reservation|item|items|stuff)",
    r"(?:bag|bags|luggage|suitcase|order|package|parcel|refund|delivery|item|items)"
    r" (?:is |are |was |were |still |has been |have been )?"
    r"(?:lost|missing|late|delayed|damaged|broken)",
    r"still (?:waiting|no|nothing|haven'?t|hasn'?t|not|don'?t|didn'?t|can'?t|on hold|stuck|"
    r"sitting|no word|broken|charged|missing)",
    r"no (?:one|response|reply|answer|help|call ?back|refund|update|updates|info|information|"
    r"word|notice|explanation|apology|compensation|communication|assistance|service|way|show|"
    r"luck|idea|clue)",
    r"nobody",
    r"(?:on|placed on|put on) hold",
    r"hold (?:for|time|times|music)",
    r"hung up",
    r"hang(?:s|ing)? up",
    r"disconnected",
    r"busy signal",
    r"stuck",
    r"stranded",
    r"missed (?:my |our |the |a )?(?:connection|connecting|flight|train|appointment|delivery|"
    r"meeting|event)",
    r"miss(?:ing)? (?:my |our )(?:connection|flight|train|appointment|meeting|event)",
    r"never (?:again|arrived|received|got|showed|came|heard|responded|replied|called|"
    r"answered|fixed|delivered)",
    rf"(?:waited|waiting|wait|sat|sitting|been|over|for|another|spent|after|still)\s+(?:for\s+)?"
    rf"(?:over\s+|almost\s+|nearly\s+|about\s+|like\s+)?{_SPAN}",
    rf"{_SPAN} (?:late|delay|delayed|waiting|on hold|later|and counting|now|wait|in line|"
    r"on the phone|on the tarmac|for)",
    r"worst",
    r"rude(?:ly|ness)?",
    r"unacceptable",
    r"ridiculous",
    r"disappoint(?:ed|ing|ment)",
    r"terrible",
    r"horrible",
    r"awful",
    r"pathetic",
    r"useless",
    r"incompetent|incompetence",
    r"unprofessional",
    r"poor(?:ly)?",
    r"lousy",
    r"sucks?",
    r"broken",
    r"damaged",
    r"overbook(?:ed|ing)",
    r"oversold",
    r"charged (?:me |us )?(?:twice|double|again|extra)",
    r"double charged",
    r"overcharg(?:ed|ing|e)",
    r"hidden fees?",
    r"rip(?:ped)? ?off",
    r"scam(?:med)?",
    r"refund(?:ed)?",
    r"compensat(?:e|ion)",
    r"(?:can'?t|cannot|can not|couldn'?t|unable to|won'?t|wouldn'?t) (?:even )?(?:get|find|log|"
    r"check|rebook|reach|change|book|access|use|load|connect|talk|speak|hear|see|track|cancel|pay|"
    r"believe|understand|help|let|answer|refund|fix|tell|give|do)",
    r"(?:doesn'?t|didn'?t|don'?t|isn'?t|wasn'?t|aren'?t|weren'?t|hasn'?t|haven'?t|won'?t|not)"
    r" (?:even )?(?:work|working|load|loading|help|helping|helpful|respond|responding|answer|"
    r"answering|arrive|arrived|show up|showed up|care|fixed|accept|accepting|honou?r|receive|"
    r"received|going anywhere|allowed|available|acceptable|ok|okay|happy|impressed|good|great)",
    r"(?:site|website|app|system|page|portal|checkout|login|server)s? (?:is |are |was |keeps )?"
    r"(?:down|crash(?:ed|ing|es)?|broken|frozen|glitch(?:y|ing)?|error)",
    r"error(?: message)?",
    r"glitch(?:es|y)?",
    r"crash(?:ed|es|ing)",
    r"fail(?:ed|s|ure|ing)?",
    r"complain(?:t|ts|ed|ing)?",
    r"fix (?:this|it|your)",
    r"wtf",
    r"wth",
    r"smh",
    r"ugh+",
    r"seriously\W*\?",
    r"frustrat(?:ed|ing|ion)",
    r"annoy(?:ed|ing)",
    r"angry",
    r"upset",
    r"furious",
    r"fed up",
    r"nightmare",
    r"fiasco",
    r"disaster",
    r"joke",
    r"hate",
    r"mess(?:ed up)?",
    r"screw(?:ed)? up",
    r"lack of",
    r"lied|lying|liars?",
    r"ignor(?:ed|ing)",
    r"(?:fly|flying|shop|shopping|order|ordering|buy|buying|book|booking|use|using)"
    r" (?:with |from )?(?:you|u|them|this company) again",
    r"lost (?:a|your|another) (?:loyal )?customer",
    r"(?:switching|switch|going back|moving) to (?:another|a different|a competitor)",
    r"(?:ruined|wasted|waste of)",
    r"(?:where|wheres|where's) (?:is |are )?(?:my|our)",
    r"expired",
    r"denied",
    r"(?:lost|missing) (?:it|them)",
    r"thanks? (?:you )?(?:so much |a lot |again )?for (?:nothing|ruining|wasting|losing|leaving|"
    r"ignoring|stranding|the runaround)",
    r"disrespect(?:ful|ed)?",
    r"do something about",
    r"get (?:your|it|their) (?:act |shit |stuff )?together",
    r"do better",
    r"(?:losing|lost|lose) (?:my |our )?business",
    r"learn(?:ed|t)? (?:my|our|a) lesson",
    r"inconvenien(?:t|ce|ced)",
    r"too often",
    r"nothing (?:done|happened|changed|works)",
    r"shaking my head",
    r"(?:no|an|any|not even an?|without an?) apology",
    r"sorry (?:is|isn'?t|doesn'?t) (?:not )?(?:enough|cut it|help)",
    r"not (?:good )?enough",
    r"(?:bad|worse|awful|terrible|poor|horrible) (?:service|experience|customer service|support)",
    r"(?:safety|serious|major|big|same|ongoing) (?:issue|problem)",
    r"screw(?:ed|s|ing)?",
    r"give a (?:shit|damn|crap|toss)",
    r"treat(?:ing)? (?:your |ur )?(?:people|customers|passengers|clients|guests) (?:with|like)",
    r"lose (?:customers|business|my business)",
    r"less (?:than|then) (?:helpful|useful|great|ideal)",
    r"(?:choose|choosing|try|trying|use|using|pick|picking|go with|going with)"
    r" (?:another|a different)",
    r"(?:another|a different|other) (?:company|provider|airline|carrier|store|shop|bank|network|"
    r"brand) next time",
    r"zero (?:info|information|help|response|communication|updates?|customer service|support)",
    r"unavailable",
    r"atrocious",
    r"extra (?:days?|nights?|hours?)",
    r"(?:not|never|no longer) (?:a )?(?:loyal|happy|satisfied) customer",
)
# Thanks or praise that, next to trouble, is ironic.
_SARCASM = _cues(
    r"thanks? (?:you )?(?:so much |a lot |again )?for (?:nothing|(?:the |another |a |my |our "
    r"|your )?(?:\w+ )?(?:delay|delays|wait|hold|cancel\w*|lost|losing|leaving|making|ruining|"
    r"wasting|ignoring|stranding|nothing|charging|breaking|sending|keeping|being|not|never|no))",
    r"thanks? (?:a lot|a ton|a bunch|a million|for nothing|again)",
    r"thanks? for (?:the )?(?:nothing|no)",
    r"(?:great|awesome|wonderful|fantastic|perfect|brilliant|excellent|nice|amazing|good)"
    r" (?:job|work)\b(?!\s+(?:on|with|getting|finding|rebooking|fixing|sorting|today|team))",
    r"(?:great|awesome|wonderful|fantastic|perfect|brilliant|nice|amazing|lovely|cool)\s*[,.!]+\s*"
    r"(?:another|now|so|just|again|still|more|my|our|the|delayed|cancel\w*|stuck|no)",
    r"love (?:how|that|it when|when|being|waiting|sitting|getting|paying|the fact|spending|"
    r"having)",
    r"loving (?:the|this|how|being|waiting|sitting)",
    r"so much for",
    r"just what (?:i|we) needed",
    r"yeah right",
    r"oh (?:good|great|joy|wonderful)",
    r"way to go",
    r"(?:really|truly|sure) (?:know how to|appreciate)",
    r"sarcasm",
    r"what a (?:great|wonderful|fantastic|lovely|fun|treat)",
    r"(?:another|yet another|one more) (?:great|wonderful|fantastic|amazing|fun)",
    r"appreciate (?:the|being|you) (?:delay|wait|hold|ignoring|lack)",
)
# Irony that is negative even without a trouble word ("love being ignored").
_IRONY = _cues(
    r"thanks? (?:you )?(?:so much |a lot )?for (?:nothing|no(?:thing)? help)",
    r"love (?:how|being|waiting|sitting|spending|paying|it when)",
    r"yeah right",
    r"just what (?:i|we) needed",
    r"sarcasm",
    r"not\W*$",
)
# Praise for putting trouble right: keeps "thanks for rebooking me after the delay" positive.
_RESOLVED = _cues(
    r"thanks? (?:you )?(?:so much |very much |again )?(?:for|to) (?:the |your |all |an? |our )?"
    r"(?:help|quick|fast|prompt|speedy|great|awesome|amazing|kind|update|updates|reply|response|"
    r"getting|rebooking|sorting|fixing|taking care|finding|assist\w*|making|info|follow|reaching|"
    r"looking|responding|help\w*|handling|accommodat\w*|understanding|patience|support|refund|"
    r"resolv\w*|sending|replying|answering|the info|the heads up|letting)",
    r"(?:great|awesome|amazing|excellent|fantastic|friendly|helpful|wonderful|best|outstanding)"
    r" (?:service|customer service|crew|staff|team|agent|agents|support|experience|people|"
    r"pilot|job)",
    r"(?:problem|issue|it|everything) (?:is |was |got )?(?:solved|resolved|fixed|sorted)",
    r"got (?:me|us|it) (?:on|home|back|sorted|rebooked|fixed)",
    r"you (?:rock|rule|guys rock|are the best|re the best|'re the best)",
    r"kudos",
    r"well done",
    r"(?:you|u|guys|team|crew|staff|service) (?:rock|rocks|rocked|rule|nailed it)",
    r"props",
    r"big ups",
    r"commend",
    r"deserves? (?:a raise|a medal|praise|recognition)",
    r"made my (?:day|week|year|night|morning)",
    r"all good",
    r"(?:all )?worked out",
    r"(?:thanks|thank you) to (?:the|your|all|everyone|you)",
    r"continue to impress",
    r"above and beyond",
    r"never (?:lets?|let) (?:me|us) down",
    r"never disappoints?",
    r"thanks to \w+ (?:at|in|on|from|for)",
)
# Warmer words that mean praise when nothing went wrong (and often irony when it did).
_PRAISE = _cues(
    r"made it",
    r"finally (?:home|here|made|got|on|arrived|received)",
    r"thank (?:you|u)",
    r"much appreciated",
    r"appreciate (?:it|the|your|you|all)",
    r"shout ?out",
    r"impress(?:ed|ive)",
    r"can'?t wait",
    r"no (?:worries|biggie|problem)",
    r"(?:so|very|really) (?:excited|happy|pleased|grateful|thankful)",
)
# Context that, without any other feeling, makes a mention read as a problem report.
_COMPLAINT_CONTEXT = _cues(
    r"still",
    r"yet",
    r"why",
    r"supposed to",
    r"even",
    r"never",
    r"nothing",
    r"(?:can'?t|cannot|couldn'?t|didn'?t|doesn'?t|don'?t|isn'?t|wasn'?t|won'?t|haven'?t|"
    r"hasn'?t|aren'?t|weren'?t|not|no)(?! (?:wait|worries|biggie|problem|doubt|complaints))",
    r"tried",
    r"told",
    r"(?:i|we)(?:'ve| have) been",
    r"called|calling",
    r"waiting|waited",
    r"sitting",
    r"queue",
    r"hold",
    r"hours?|hrs?|mins?|minutes",
    r"paid|charged",
    r"lost|missing",
    r"because",
    r"(?:\?\s*){2,}",
)
# Service words: half a cue each; two of them (or one with a cue above) make a problem report.
_SERVICE_WORDS = _cues(
    r"again",
    r"another",
    r"trying",
    r"wait",
    r"line",
    r"fees?",
    r"customer service|customer care|support team",
    r"agents?|employees?|rep|reps|people",
    r"(?:bag|bags|luggage|baggage|order|package|parcel|delivery|refund|bill|account|booking|"
    r"reservation|ticket|seat|phone|website|site|app|system)",
)
# Requests in a support queue are not feelings; handles and links are not words.
_NEUTRAL_IN_CARE = (
    "help",
    "please",
    "hope",
    "hoping",
    "care",
    "support",
    "like",
    "sure",
    "ok",
    "okay",
    "yes",
    "united",
    "want",
    "chance",
    "well",
    "pretty",
    "top",
    "fine",
    "free",
    "joke",
    "lol",
    "haha",
    "hah",
    "credit",
    "fun",
    "matter",
    "save",
)
_CARE_LEXICON = {
    "delayed": -1.6,
    "delay": -1.6,
    "delays": -1.6,
    "cancelled": -1.8,
    "canceled": -1.8,
    "cancellation": -1.5,
    "stranded": -2.0,
    "stuck": -1.6,
    "rude": -2.2,
    "refund": -0.8,
    "unhelpful": -2.0,
    "worst": -3.2,
    "smh": -1.5,
    "wth": -1.8,
    "ugh": -1.5,
}
_URGENT = _cues(
    r"emergenc(?:y|ies)",
    r"safety",
    r"unsafe",
    r"danger(?:ous)?",
    r"injur(?:ed|y|ies)",
    r"hospital",
    r"medical",
    r"lawyer",
    r"lawsuit",
    r"sue",
    r"legal action",
    r"discriminat(?:ed|ion)",
    r"harass(?:ed|ment)",
    r"data breach",
    r"hacked",
    r"fraud",
    r"stranded",
    r"wheelchair",
    r"unaccompanied minor",
    r"caught fire",
    r"on fire",
    r"electric shock",
    r"food poisoning",
    r"allergic reaction",
    r"ambulance",
)
_PRESS = _cues(
    r"journalist",
    r"reporter",
    r"press (?:inquiry|enquiry|office|contact|team)",
    r"media (?:inquiry|enquiry|request|contact)",
    r"for (?:a|an|my|our) (?:story|article|piece|segment|report)",
    r"request for comment",
    r"comment for",
    r"on the record",
    r"interview (?:request|with|about)",
    r"(?:for|request|arrange|schedule|do) an interview",
    r"editor",
    r"newsroom",
    r"deadline",
)
_LEAD = _cues(
    r"pric(?:e|es|ing)",
    r"quote",
    r"how much (?:is|are|does|do|for)",
    r"group (?:booking|travel|rate|discount)s?",
    r"corporate (?:account|travel|rate|plan)s?",
    r"business account",
    r"bulk",
    r"partnership",
    r"partner with",
    r"sponsor(?:ship)?",
    r"interested in (?:buying|your|booking|a|an|the)",
    r"want to (?:buy|book|order|purchase|sign up)",
    r"(?:book|demo|trial) (?:a|for) (?:team|company|group)",
    r"sales (?:team|rep|contact)",
    r"enterprise",
    r"wholesale",
    r"reseller",
)
_SUGGESTION = _cues(
    r"you should",
    r"you guys should",
    r"should (?:really )?(?:add|offer|have|bring|make|consider|let)",
    r"would be (?:great|nice|awesome|cool|helpful) if",
    r"would love (?:it if|to see|if)",
    r"please (?:add|bring back|consider|offer)",
    r"suggest(?:ion)?",
    r"feature request",
    r"(?<!any )(?<!no )idea",
    r"why not",
    r"wish (?:you|there|they)",
    r"how about",
    r"consider adding",
)
_SPAM = _cues(
    r"follow (?:me|back|4 ?follow)",
    r"check (?:out )?my (?:page|profile|channel|bio|link)",
    r"(?:free|cheap) (?:followers|likes|iphone|giveaway|crypto)",
    r"crypto",
    r"bitcoin",
    r"nft",
    r"dm (?:me )?for (?:promo|collab|rates)",
    r"earn \$?\d+",
    r"click (?:here|the link)",
    r"onlyfans",
    r"promo code",
    r"giveaway",
    r"make money",
)
# "Follow me so I can DM you" is a customer reaching out, not spam.
_NOT_SPAM = _cues(
    r"(?:so|to|and) (?:i|we) (?:can|could) (?:dm|message|send)",
    r"to dm",
    r"(?:n'?t|not|never|you) follow (?:me|back)",
)
_ABUSE = _cues(r"idiots?", r"morons?", r"stupid", r"scum", r"trash", r"garbage", r"clowns?")
_THANKS = _cues(
    r"thanks?",
    r"thank(?:s| you)",
    r"thx",
    r"ty",
    r"love",
    r"loved",
    r"great",
    r"awesome",
    r"amazing",
    r"best",
    r"kudos",
    r"shout ?out",
    r"excellent",
    r"fantastic",
    r"appreciate",
    r"wonderful",
    r"impressed",
)
_QUESTION_WORDS = re.compile(
    r"(?:^|[.!?]\s+|\s)(?:who|what|when|where|why|how|which|is|are|can|could|do|does|did|will|"
    r"would|should|has|have|any(?:one|body)?)\b[^.!?]*\?",
    re.IGNORECASE,
)
_ASKING = _cues(
    r"can (?:you|i|we|someone)",
    r"could (?:you|i|we|someone)",
    r"how (?:do|can|long|much|many)",
    r"is (?:there|it possible)",
    r"do you (?:have|know|offer|allow)",
    r"please (?:help|advise|let me know|tell|dm|check|respond|reply|call|fix|look)",
    r"need help",
    r"help me",
    r"help us",
    r"anyone know",
    r"wondering",
    r"(?:i|we) need",
    r"need (?:assistance|help|someone|somebody|an? answer|to (?:speak|talk|know|change))",
    r"please do",
    r"(?:i|we)(?:'d| would) like to (?:know|change|cancel|speak|talk|get)",
    r"dm (?:me|us)",
    r"contact (?:me|us)",
    r"call (?:me|us)",
)
_URL = re.compile(r"https?://\S+|\bwww\.\S+")
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_HASHTAG = re.compile(r"#(\w+)")
_NOISE = re.compile(r"https?://\S+|[@#](\w+)")


@lru_cache(maxsize=1)
def _vader() -> SentimentIntensityAnalyzer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _care_vader() -> SentimentIntensityAnalyzer:
    """VADER with the customer-care adjustments above (its own lexicon copy)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    lexicon = dict(analyzer.lexicon)
    for word in _NEUTRAL_IN_CARE:
        lexicon.pop(word, None)
    lexicon.update(_CARE_LEXICON)
    analyzer.lexicon = lexicon
    return analyzer


@lru_cache(maxsize=1)
def _language_identifier() -> object:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str, *, fallback: str = "en", min_confidence: float = 0.5) -> str:
    """ISO 639-1 code of the text's language; `fallback` when too short or unsure."""
    plain = _NOISE.sub(" ", text).strip()
    if len(plain) < 12:
        return fallback
    label, confidence = _language_identifier().classify(plain)  # type: ignore[attr-defined]
    return str(label) if confidence >= min_confidence else fallback


def vader_compound(text: str) -> float:
    """VADER's compound score in [-1, 1]."""
    return float(_vader().polarity_scores(text)["compound"])


def _readable(text: str) -> str:
    """The words a reader judges: no links, no @handles, hashtags as words, entities decoded."""
    text = _URL.sub(" ", html.unescape(text))
    text = _HANDLE.sub(" ", text)
    text = _HASHTAG.sub(r"\1", text)
    return " ".join(text.split())


def _short(matches: list[str], limit: int = 3) -> str:
    seen: list[str] = []
    for match in matches:
        word = " ".join(match.lower().split())
        if word not in seen:
            seen.append(word)
    return ", ".join(repr(word) for word in seen[:limit])


# Thresholds on the adjusted VADER compound, tuned on half of a public labelled set.
_POSITIVE_AT = 0.45
_NEGATIVE_AT = -0.2
_TROUBLE_POSITIVE_AT = 0.3
_CONTEXT_NEGATIVE_BELOW = 0.5
_PRAISE_POSITIVE_AT = -0.1
_CONTEXT_CUES = 1.0
_SERVICE_WORD_WEIGHT = 0.5


class OfflineClassifier:
    """Rules over VADER and py3langid. Deterministic, fast, no network."""

    name = "offline"

    def __init__(self, *, default_language: str = "en", high_followers: int = 10_000) -> None:
        self.default_language = default_language
        self.high_followers = high_followers

    def classify(self, mention: Mention) -> Classification:
        text = mention.text
        signals: list[str] = []
        readable = _readable(text)
        # VADER reads case ("SO late" is stronger); the cue patterns read lower case.
        compound = float(_care_vader().polarity_scores(readable)["compound"]) if readable else 0.0
        plain = readable.lower()
        trouble = _TROUBLE.findall(plain)
        context = _COMPLAINT_CONTEXT.findall(plain)
        service = _SERVICE_WORDS.findall(plain)
        sentiment = self._sentiment(plain, compound, trouble, context, service, signals)

        asks = bool(_QUESTION_WORDS.search(plain) or _ASKING.search(plain) or "?" in plain)
        intent = self._intent(plain, text, sentiment, trouble, context, asks, signals)
        priority = self._priority(mention, intent, sentiment, compound, plain, signals)
        needs_reply = intent in {
            Intent.COMPLAINT,
            Intent.QUESTION,
            Intent.LEAD,
            Intent.PRESS,
            Intent.SUGGESTION,
        } or (intent is Intent.OTHER and (asks or priority is Priority.URGENT))
        language = mention.lang if mention.lang and mention.lang != "und" else None
        return Classification(
            intent=intent,
            sentiment=sentiment,
            priority=priority,
            needs_reply=needs_reply,
            language=language or detect_language(text, fallback=self.default_language),
            source=self.name,
            signals=tuple(signals),
        )

    @staticmethod
    def _sentiment(
        plain: str,
        compound: float,
        trouble: list[str],
        context: list[str],
        service: list[str],
        signals: list[str],
    ) -> Sentiment:
        if trouble:
            signals.append(f"trouble words: {_short(trouble)}")
            sarcasm = _SARCASM.search(plain)
            if sarcasm:
                signals.append(f"praise around trouble (sarcasm): {sarcasm.group(0).lower()!r}")
                return Sentiment.NEGATIVE
            resolved = _RESOLVED.search(plain)
            # A problem report stays negative unless it thanks for putting it right
            # ("thanks for rebooking me so fast after the delay!").
            if resolved and compound >= _TROUBLE_POSITIVE_AT:
                signals.append(f"thanks for a fix: {resolved.group(0).lower()!r}")
                return Sentiment.POSITIVE
            return Sentiment.NEGATIVE
        irony = _IRONY.search(plain)
        if irony:
            signals.append(f"irony: {irony.group(0).lower()!r}")
            return Sentiment.NEGATIVE
        praise = _RESOLVED.search(plain) or _PRAISE.search(plain)
        if compound >= _POSITIVE_AT or (praise and compound >= _PRAISE_POSITIVE_AT):
            if praise:
                signals.append(f"praise: {praise.group(0).lower()!r}")
            return Sentiment.POSITIVE
        if compound <= _NEGATIVE_AT:
            signals.append(f"negative tone ({compound:+.2f})")
            return Sentiment.NEGATIVE
        if (
            len(context) + _SERVICE_WORD_WEIGHT * len(service) >= _CONTEXT_CUES
            and compound < _CONTEXT_NEGATIVE_BELOW
        ):
            signals.append(f"complaint context: {_short(context + service)}")
            return Sentiment.NEGATIVE
        return Sentiment.NEUTRAL

    @staticmethod
    def _intent(
        plain: str,
        raw: str,
        sentiment: Sentiment,
        trouble: list[str],
        context: list[str],
        asks: bool,
        signals: list[str],
    ) -> Intent:
        def hit(pattern: re.Pattern[str], label: str) -> bool:
            match = pattern.search(plain)
            if match:
                signals.append(f"{label}: {match.group(0).lower()!r}")
            return match is not None

        links = len(re.findall(r"https?://", raw))
        handles = len(re.findall(r"@\w+", raw))
        if (hit(_SPAM, "spam cue") and not _NOT_SPAM.search(plain)) or links >= 3 or handles >= 6:
            if links >= 3 or handles >= 6:
                signals.append("many links or handles")
            return Intent.SPAM
        if hit(_PRESS, "press cue"):
            return Intent.PRESS
        if hit(_LEAD, "sales cue") and sentiment is not Sentiment.NEGATIVE:
            return Intent.LEAD
        if hit(_SUGGESTION, "suggestion cue") and not trouble:
            return Intent.SUGGESTION
        if sentiment is Sentiment.NEGATIVE:
            if hit(_ABUSE, "abuse") and not trouble and not asks and not context:
                return Intent.SPAM
            return Intent.COMPLAINT
        if asks:
            signals.append("asks a question")
            return Intent.QUESTION
        if sentiment is Sentiment.POSITIVE or hit(_THANKS, "thanks cue"):
            return Intent.PRAISE
        return Intent.OTHER

    def _priority(
        self,
        mention: Mention,
        intent: Intent,
        sentiment: Sentiment,
        compound: float,
        plain: str,
        signals: list[str],
    ) -> Priority:
        urgent = _URGENT.search(plain)
        if urgent and intent not in {Intent.SPAM, Intent.PRAISE}:
            signals.append(f"urgent cue: {urgent.group(0).lower()!r}")
            return Priority.URGENT
        influential = (
            mention.author_verified or (mention.author_followers or 0) >= self.high_followers
        )
        if intent in {Intent.SPAM, Intent.OTHER}:
            return Priority.LOW
        if intent is Intent.PRESS or (influential and intent is not Intent.PRAISE):
            if influential:
                signals.append("influential author")
            return Priority.HIGH
        if sentiment is Sentiment.NEGATIVE and compound <= -0.6:
            signals.append("strongly negative")
            return Priority.HIGH
        if intent is Intent.PRAISE:
            return Priority.LOW
        return Priority.NORMAL
