"""FakeX, exercised through the real tweepy.Client (v2) redirected by redirect_session()."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import tweepy

from tests.fakes import x as fakes
from tests.fakes.x import FakeX, FakeXTimeout, redirect_session, start_fake_x

BRAND = "100"
CUSTOMER = "200"
OTHER = "300"
OAUTH1 = {
    "consumer_key": "test-consumer-key",
    "consumer_secret": "test-consumer-secret",
    "access_token": "100-test-access-token",
    "access_token_secret": "test-access-token-secret",
}

# The shareable fixture, exposed here the way a conftest would.
fake_x = fakes.fake_x


@pytest.fixture
def fake() -> Iterator[FakeX]:
    with start_fake_x() as server:
        server.add_user(CUSTOMER, "jane", "Jane Doe", followers=42)
        server.add_user(OTHER, "bob", "Bob", followers=5000, verified=True)
        yield server


def make_client(fake: FakeX, *, user: bool = True, timeout: float = 5.0) -> tweepy.Client:
    creds: dict[str, Any] = OAUTH1 if user else {}
    client = tweepy.Client(bearer_token="test-bearer", return_type=requests.Response, **creds)
    client.session = redirect_session(fake.url, timeout=timeout)
    return client


@pytest.fixture
def client(fake: FakeX) -> tweepy.Client:
    return make_client(fake)


def ids(response: requests.Response) -> list[str]:
    return [t["id"] for t in response.json().get("data", [])]


def mention(fake: FakeX, n: int, author: str = CUSTOMER) -> list[str]:
    return [fake.add_tweet(author, f"@AcmeAir help #{i}", mentions_user=BRAND) for i in range(n)]


def test_url_and_fixture(fake_x: FakeX) -> None:
    assert fake_x.url == f"http://127.0.0.1:{fake_x.port}"
    assert not fake_x.url.endswith("/")
    response = make_client(fake_x).get_me(user_auth=True)
    assert response.json()["data"] == {"id": BRAND, "name": "Acme Air", "username": "AcmeAir"}


def test_mentions_shape_expansions_and_rate_limit_headers(
    fake: FakeX, client: tweepy.Client
) -> None:
    fake.add_tweet(CUSTOMER, "unrelated chatter")
    tid = fake.add_tweet(CUSTOMER, "@AcmeAir my bag is lost", mentions_user=BRAND)

    response = client.get_users_mentions(
        BRAND,
        expansions=["author_id"],
        tweet_fields=["created_at", "conversation_id", "lang", "referenced_tweets"],
        user_fields=["public_metrics", "verified"],
    )

    body = response.json()
    [tweet] = body["data"]
    assert tweet["id"] == tid
    assert tweet["text"] == "@AcmeAir my bag is lost"
    assert tweet["author_id"] == CUSTOMER
    assert tweet["created_at"].endswith(".000Z")
    assert tweet["conversation_id"] == tid
    assert tweet["lang"] == "en"
    assert tweet["entities"]["mentions"] == [
        {"start": 0, "end": 8, "username": "AcmeAir", "id": BRAND}
    ]
    assert body["includes"]["users"] == [
        {
            "id": CUSTOMER,
            "name": "Jane Doe",
            "username": "jane",
            "public_metrics": {
                "followers_count": 42,
                "following_count": 0,
                "tweet_count": 2,
                "listed_count": 0,
            },
            "verified": False,
        }
    ]
    assert body["meta"] == {"newest_id": tid, "oldest_id": tid, "result_count": 1}
    assert response.headers["x-rate-limit-limit"] == "450"
    assert response.headers["x-rate-limit-remaining"] == "449"
    assert int(response.headers["x-rate-limit-reset"]) > time.time()

    [call] = fake.calls_to("GET", f"/2/users/{BRAND}/mentions")
    assert call.query["expansions"] == "author_id"
    assert call.headers["authorization"] == "Bearer test-bearer"

    # tweepy's default Response type parses the same JSON.
    parsed = tweepy.Client(bearer_token="test-bearer")
    parsed.session = redirect_session(fake.url)
    result = parsed.get_users_mentions(BRAND, expansions="author_id")
    assert [t.id for t in result.data] == [int(tid)]
    assert result.includes["users"][0].username == "jane"


def test_mentions_since_id_and_pagination(fake: FakeX, client: tweepy.Client) -> None:
    old = mention(fake, 3)
    new = mention(fake, 7)
    assert [int(i) for i in old + new] == sorted(int(i) for i in old + new)

    first = client.get_users_mentions(BRAND, since_id=old[-1], max_results=5)
    assert ids(first) == list(reversed(new))[:5]
    token = first.json()["meta"]["next_token"]

    second = client.get_users_mentions(
        BRAND, since_id=old[-1], max_results=5, pagination_token=token
    )
    assert ids(second) == list(reversed(new))[5:]
    assert "next_token" not in second.json()["meta"]
    assert second.json()["meta"]["result_count"] == 2

    caught_up = client.get_users_mentions(BRAND, since_id=new[-1])
    assert caught_up.json() == {"meta": {"result_count": 0}}

    # X validates max_results (5..100) and rejects params the route doesn't know.
    with pytest.raises(tweepy.BadRequest, match="not between 5 and 100"):
        client.get_users_mentions(BRAND, max_results=3)
    with pytest.raises(tweepy.BadRequest, match="next_token"):
        client.request("GET", f"/2/users/{BRAND}/mentions", params={"next_token": "x"})


def test_replies_and_retweets_land_in_mentions(fake: FakeX, client: tweepy.Client) -> None:
    brand_tweet = fake.add_tweet(BRAND, "Our winter sale starts now")
    reply = fake.add_tweet(CUSTOMER, "@AcmeAir is it for flights too?", in_reply_to=brand_tweet)
    rt = fake.add_tweet(OTHER, "", retweet_of=brand_tweet)

    body = client.get_users_mentions(BRAND, expansions="referenced_tweets.id").json()
    assert [t["id"] for t in body["data"]] == [rt, reply]
    retweet, customer_reply = body["data"]
    assert retweet["text"] == "RT @AcmeAir: Our winter sale starts now"
    assert retweet["referenced_tweets"] == [{"type": "retweeted", "id": brand_tweet}]
    assert customer_reply["in_reply_to_user_id"] == BRAND
    assert customer_reply["conversation_id"] == brand_tweet
    assert [t["id"] for t in body["includes"]["tweets"]] == [brand_tweet]


def test_search_recent_matcher_and_next_token(fake: FakeX, client: tweepy.Client) -> None:
    hits = [
        fake.add_tweet(CUSTOMER, f"Acme Air LOST BAG again ({i})", lang="en") for i in range(12)
    ]
    fake.add_tweet(CUSTOMER, "acme air lost my patience")  # phrase "lost bag" missing
    fake.add_tweet(OTHER, "", retweet_of=hits[0])  # a retweet: excluded by -is:retweet
    query = '"acme air" "lost bag" -is:retweet'

    first = client.search_recent_tweets(query, max_results=10, expansions="author_id")
    assert ids(first) == list(reversed(hits))[:10]
    assert first.json()["includes"]["users"] == [
        {"id": CUSTOMER, "name": "Jane Doe", "username": "jane"}
    ]
    token = first.json()["meta"]["next_token"]
    second = client.search_recent_tweets(query, max_results=10, next_token=token)
    assert ids(second) == list(reversed(hits))[10:]
    assert "next_token" not in second.json()["meta"]

    assert len(ids(client.search_recent_tweets('"lost bag"', max_results=100))) == 13
    assert ids(client.search_recent_tweets("bag from:bob", max_results=10)) == [
        fake.tweets_by(OTHER)[0]["id"]
    ]
    newest = client.search_recent_tweets("bag -is:retweet", since_id=hits[-1])
    assert newest.json() == {"meta": {"result_count": 0}}
    with pytest.raises(tweepy.BadRequest, match="not between 10 and 100"):
        client.search_recent_tweets("bag", max_results=5)


def test_users_tweets_with_referenced_tweets(fake: FakeX, client: tweepy.Client) -> None:
    parent = fake.add_tweet(CUSTOMER, "@AcmeAir where is my refund?", mentions_user=BRAND)
    own = [fake.add_tweet(BRAND, f"update {i}") for i in range(5)]
    reply = fake.add_tweet(BRAND, "@jane sorry, DM us", in_reply_to=parent)

    response = client.get_users_tweets(BRAND, max_results=5, tweet_fields=["referenced_tweets"])
    assert ids(response) == [reply, *reversed(own)][:5]
    assert response.json()["data"][0]["referenced_tweets"] == [{"type": "replied_to", "id": parent}]
    assert "x-rate-limit-remaining" in response.headers
    older = client.get_users_tweets(
        BRAND, max_results=5, pagination_token=response.json()["meta"]["next_token"]
    )
    assert ids(older) == [own[0]]
    no_replies = client.get_users_tweets(BRAND, exclude=["replies"], since_id=own[-1])
    assert no_replies.json() == {"meta": {"result_count": 0}}

    user = client.get_user(id=OTHER, user_fields=["verified", "public_metrics"]).json()["data"]
    assert user["verified"] is True
    assert user["public_metrics"]["followers_count"] == 5000
    assert client.get_user(username="JANE").json()["data"]["id"] == CUSTOMER
    assert client.get_user(id="999").json()["errors"][0]["title"] == "Not Found Error"


def test_rate_limit_exhausted_raises_too_many_requests(fake: FakeX, client: tweepy.Client) -> None:
    reset = int(time.time()) + 600
    fake.set_rate_limit(f"/2/users/{BRAND}/mentions", remaining=1, reset=reset, limit=75)

    ok = client.get_users_mentions(BRAND)
    assert ok.headers["x-rate-limit-limit"] == "75"
    assert ok.headers["x-rate-limit-remaining"] == "0"
    assert ok.headers["x-rate-limit-reset"] == str(reset)

    with pytest.raises(tweepy.TooManyRequests) as info:
        client.get_users_mentions(BRAND)
    assert info.value.reset_time == reset
    assert info.value.response.headers["x-rate-limit-reset"] == str(reset)
    assert info.value.response.headers["x-rate-limit-remaining"] == "0"
    assert info.value.response.json()["title"] == "Too Many Requests"

    # Other endpoints have their own windows.
    assert client.search_recent_tweets("bag").status_code == 200
    # An elapsed window refills.
    fake.set_rate_limit(f"/2/users/{BRAND}/mentions", remaining=0, reset=time.time() - 1)
    assert client.get_users_mentions(BRAND).status_code == 200


def test_create_reply_with_oauth1(fake: FakeX, client: tweepy.Client) -> None:
    parent = fake.add_tweet(CUSTOMER, "@AcmeAir my flight is delayed", mentions_user=BRAND)

    response = client.create_tweet(text="@jane Sorry! DM us.", in_reply_to_tweet_id=parent)

    assert response.status_code == 201
    data = response.json()["data"]
    assert data["text"] == "@jane Sorry! DM us."
    [posted] = fake.posted()
    assert posted["id"] == data["id"]
    assert posted["author_id"] == BRAND
    assert posted["in_reply_to_user_id"] == CUSTOMER
    assert posted["conversation_id"] == parent
    assert posted["referenced_tweets"] == [{"type": "replied_to", "id": parent}]
    assert fake.replies_to(parent) == [posted]
    assert fake.tweets_by(BRAND) == [posted]

    [call] = fake.calls_to("POST", "/2/tweets")
    assert call.json == {"text": "@jane Sorry! DM us.", "reply": {"in_reply_to_tweet_id": parent}}
    assert call.headers["authorization"].startswith("OAuth ")
    assert 'oauth_consumer_key="test-consumer-key"' in call.headers["authorization"]


def test_duplicate_content_is_forbidden(fake: FakeX, client: tweepy.Client) -> None:
    parent = fake.add_tweet(CUSTOMER, "@AcmeAir hello", mentions_user=BRAND)
    client.create_tweet(text="Thanks for reaching out!", in_reply_to_tweet_id=parent)

    with pytest.raises(tweepy.Forbidden, match="duplicate content") as info:
        client.create_tweet(text="Thanks for reaching out!", in_reply_to_tweet_id=parent)
    assert info.value.response.json() == {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }
    assert info.value.api_messages == [
        "You are not allowed to create a Tweet with duplicate content."
    ]
    assert len(fake.posted()) == 1

    with pytest.raises(tweepy.Forbidden, match="deleted or not visible"):
        client.create_tweet(text="new text", in_reply_to_tweet_id="1")


def test_bearer_only_create_is_forbidden(fake: FakeX) -> None:
    client = make_client(fake, user=False)
    with pytest.raises(tweepy.Forbidden) as info:
        client.create_tweet(text="hello", user_auth=False)
    assert info.value.response.json()["title"] == "Unsupported Authentication"
    assert fake.posted() == []

    anonymous = tweepy.Client(return_type=requests.Response)
    anonymous.session = redirect_session(fake.url)
    with pytest.raises(tweepy.Unauthorized):  # tweepy sends "Bearer None"
        anonymous.get_users_mentions(BRAND)


def test_queued_responses_are_one_shot_fifo(fake: FakeX, client: tweepy.Client) -> None:
    fake.queue("POST", "/2/tweets", 503)
    fake.queue(
        "POST",
        "/2/tweets",
        401,
        {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
    )

    with pytest.raises(tweepy.TwitterServerError) as server_error:
        client.create_tweet(text="first")
    assert server_error.value.response.status_code == 503
    with pytest.raises(tweepy.Unauthorized, match="Unauthorized"):
        client.create_tweet(text="second")
    assert client.create_tweet(text="third").status_code == 201
    assert [t["text"] for t in fake.posted()] == ["third"]

    fake.queue("GET", "/2/tweets/search", 200, {"meta": {"result_count": 0}, "x": 1})
    response = client.search_recent_tweets("anything")
    assert response.json()["x"] == 1
    assert "x-rate-limit-reset" in response.headers


def test_hang_next_times_out_and_stop_is_prompt(fake: FakeX) -> None:
    client = make_client(fake, timeout=0.3)
    fake.hang_next("GET", f"/2/users/{BRAND}/mentions")

    with pytest.raises(requests.exceptions.Timeout):
        client.get_users_mentions(BRAND)
    assert client.get_users_mentions(BRAND).status_code == 200  # only the next one hangs

    # after_processing: X accepted the tweet but the answer never came.
    fake.hang_next("POST", "/2/tweets", after_processing=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.create_tweet(text="did it go out?")
    assert [t["text"] for t in fake.posted()] == ["did it go out?"]

    fake.hang_next("GET", "/2/users/me")
    errors: list[BaseException] = []

    def call_me() -> None:
        try:
            make_client(fake, timeout=30).get_me(user_auth=True)
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=call_me)
    waiter.start()
    fake.wait_for("GET", "/2/users/me")
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    [error] = errors  # the connection closed unanswered
    assert isinstance(error, requests.exceptions.ConnectionError)


def test_post_hooks(fake: FakeX, client: tweepy.Client) -> None:
    seen: list[tuple[str, Any, int]] = []
    fake.on_post_tweet(
        before=lambda body: seen.append(("before", body, len(fake.posted()))),
        after=lambda tweet: seen.append(("after", tweet["text"], len(fake.posted()))),
    )
    client.create_tweet(text="hooked")
    assert seen == [("before", {"text": "hooked"}, 0), ("after", "hooked", 1)]

    def crash(_: dict[str, Any]) -> None:
        raise RuntimeError("client killed here")

    # A before-hook that "kills the client": no tweet, no answer (the client times out).
    fake.on_post_tweet(before=crash)
    with pytest.raises(requests.exceptions.ConnectionError):
        make_client(fake, timeout=2).create_tweet(text="never created")
    assert [t["text"] for t in fake.posted()] == ["hooked"]

    # An after-hook crash: the tweet exists but the client never hears about it.
    fake.on_post_tweet(after=crash)
    with pytest.raises(requests.exceptions.ConnectionError):
        make_client(fake, timeout=2).create_tweet(text="created, unanswered")
    assert [t["text"] for t in fake.posted()] == ["hooked", "created, unanswered"]

    fake.on_post_tweet()
    assert client.create_tweet(text="back to normal").status_code == 201


def test_before_hook_detects_client_disconnect(fake: FakeX) -> None:
    """A client that disconnects during before() (as a killed process would) creates nothing."""
    closed = threading.Event()

    def before(_: dict[str, Any]) -> None:
        closed.wait(timeout=5)

    fake.on_post_tweet(before=before)
    body = b'{"text": "abandoned"}'
    request = (
        b"POST /2/tweets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Authorization: OAuth oauth_consumer_key="k", oauth_token="100-t"\r\n'
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", fake.port)) as sock:
        sock.sendall(request)
        fake.wait_for("POST", "/2/tweets")
    closed.set()
    time.sleep(0.3)
    assert fake.posted() == []
    fake.on_post_tweet()
    assert make_client(fake).create_tweet(text="server still alive").status_code == 201


def test_wait_for_and_calls(fake: FakeX, client: tweepy.Client) -> None:
    threading.Timer(0.1, lambda: client.search_recent_tweets("x")).start()
    [call] = fake.wait_for("GET", "/2/tweets/search/recent", timeout=5)
    assert call.method == "GET"
    assert call.path == "/2/tweets/search/recent"
    assert call.query == {"query": "x"}
    assert call.json is None
    assert "user-agent" in call.headers
    with pytest.raises(FakeXTimeout, match="search/recent"):
        fake.wait_for("GET", "/2/tweets/search/recent", count=2, timeout=0.1)
    # Prefixes match whole segments: /2/users/1 is not a prefix of /2/users/100/...
    client.get_users_mentions(BRAND)
    assert fake.calls_to("GET", "/2/users/1") == []
    assert len(fake.calls_to("GET", "/2/users")) == 1
    fake.clear()
    assert fake.calls == []


CHILD = """
import sys, requests, tweepy
from tests.fakes.x import redirect_session
client = tweepy.Client(
    consumer_key="test-consumer-key", consumer_secret="s", access_token="100-t",
    access_token_secret="s", return_type=requests.Response,
)
client.session = redirect_session(sys.argv[1], timeout=30)
client.create_tweet(text=sys.argv[2])
"""


@pytest.mark.parametrize("stage", ["before", "after"])
def test_killing_the_client_process_in_a_hook(fake: FakeX, stage: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, fake.url, f"killed {stage}"],
        cwd=Path(__file__).resolve().parents[1],
    )

    def kill(_: dict[str, Any]) -> None:
        proc.kill()
        proc.wait(timeout=5)

    fake.on_post_tweet(**{stage: kill})
    try:
        fake.wait_for("POST", "/2/tweets", timeout=20)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 2
    expected = [] if stage == "before" else [f"killed {stage}"]
    while [t["text"] for t in fake.posted()] != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [t["text"] for t in fake.posted()] == expected
    # The server survived the vanished client.
    fake.on_post_tweet()
    assert make_client(fake).create_tweet(text="still serving").status_code == 201
