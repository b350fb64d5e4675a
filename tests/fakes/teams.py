"""Loopback fakes of the services a Microsoft Teams bot talks to, plus activity builders.

Three fakes, each a ThreadingHTTPServer on 127.0.0.1 with an ephemeral port (see base.py), each
recording every call and scriptable with ``queue`` / ``fail_all`` / ``restore`` / ``wait_for``:

``FakeEntraLogin`` (HTTPS) - the Microsoft identity platform, outbound auth.
    The Agents SDK's ``MsalAuth`` asks MSAL (``ConfidentialClientApplication``) for a
    client-credentials token with scope ``https://api.botframework.com/.default``. MSAL, on its
    first use, GETs ``{authority}/v2.0/.well-known/openid-configuration`` (tenant discovery; every
    endpoint in it points back here) and then POSTs the form ``grant_type=client_credentials``,
    ``client_id``, ``client_secret``, ``scope`` to ``/{tenant}/oauth2/v2.0/token``; the answer is
    ``{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": ...}``.
    A wrong secret gets Entra's ``401 invalid_client`` (AADSTS7000215), an unknown app
    ``400 unauthorized_client`` (AADSTS700016), a scope without ``/.default`` ``400 invalid_scope``.
    MSAL returns those as ``{"error": ...}`` dicts but *raises* ``MsalServiceError`` on a 5xx or
    429, and then replays that failure from memory for its Retry-After (5 s when absent).
    Access tokens are RS256 JWTs shaped like Entra's v1 tokens (``aud`` = the resource,
    ``iss`` = ``https://sts.windows.net/{tenant}/``, ``appid``, ``tid``).

    How MSAL must be configured (MSAL 1.39, checked against msal/authority.py and application.py):

    * MSAL refuses an ``http://`` authority (``ValueError`` "should consist of an https url"), so
      this fake serves TLS, with a throwaway CA (one per test process, shared by the TLS fakes).
      MSAL uses ``requests``, which honours ``REQUESTS_CA_BUNDLE`` at request time: set it (and
      ``SSL_CERT_FILE``) to ``fake.ca_file``. aiohttp builds its default SSL context when it is
      *imported*, so ``SSL_CERT_FILE`` set later does not reach it - which is why the connector
      and the issuer fakes stay plain HTTP unless asked (``tls=True``; then pass aiohttp
      ``ssl=fake.ssl_context()``).
    * For an authority host MSAL does not know (anything but login.microsoftonline.com and its
      siblings) MSAL runs *instance discovery* against
      ``https://login.microsoftonline.com/common/discovery/instance`` - a real network call - before
      anything else. Pass ``instance_discovery=False`` (or ``validate_authority=False``) to skip it.
      ``instance_discovery=fake.instance_discovery_url`` also works for the first token (this fake
      answers that endpoint too), but when a token request *fails* MSAL looks up authority aliases
      at login.microsoftonline.com regardless of that URL, so ``False`` is the setting to use.
      The SDK's ``MsalAuth._create_client_application`` passes neither, hence the PITFALLS advice
      to subclass it (tests/test_fake_teams.py shows the few lines that takes).

``FakeBotConnector`` (HTTP) - the Bot Framework Connector REST API at a Teams ``serviceUrl``.
    The SDK's ``ConnectorClient`` (aiohttp, ``base_url`` = the serviceUrl, which may carry a path
    such as ``/amer/``) sends every call with ``Authorization: Bearer <token from the login>``;
    anything else gets ``401 {"message": "Authorization has been denied for this request."}``.

    * ``POST /v3/conversations`` with ``isGroup``, ``channelData.channel.id``, ``activity`` and
      ``tenantId`` starts a new thread in a channel: ``201 {"id": "<channel>;messageid=<n>",
      "activityId": "<n>"}``; the activity is recorded as the thread's root message. With
      ``members: [{"id": ...}]`` and no channel it opens (or re-opens: the id is stable per user)
      a 1:1 chat ``{"id": "a:..."}``; 403 ``ForbiddenOperationException`` when the app is not
      installed for that user (see ``personal_installs``).
    * ``POST /v3/conversations/{id}/activities`` sends: to a bare channel id it starts a new thread,
      to ``<channel>;messageid=<root>`` it replies in that thread. ``POST
      /v3/conversations/{id}/activities/{activityId}`` replies in the thread of ``activityId``.
      Both answer ``201 {"id": "<n>"}``.
    * ``PUT /v3/conversations/{id}/activities/{activityId}`` replaces a message the bot sent
      (``200 {"id": activityId}``); an unknown one is ``404 ActivityNotFoundInConversation``.
      ``DELETE`` of the same path deletes it.
    * Error bodies are ``{"error": {"code": ..., "message": ...}}`` with the codes Teams documents
      (https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/
      conversation-messages#status-codes-from-bot-conversational-apis): 412 PreconditionFailed,
      413 MessageSizeTooBig (bodies over 100 KB), 429 Throttled, 502 ServiceError...
    * Message ids are 13-digit numbers like Teams' (milliseconds), conversation ids are kept as
      sent. Channel conversations are any id starting ``19:``; group chats are not modelled.

``FakeBotIssuer`` (HTTP) - the inbound side, like ``https://login.botframework.com``.
    ``GET /v1/.well-known/openidconfiguration`` (``issuer``, ``jwks_uri``,
    ``id_token_signing_alg_values_supported``) and ``GET /v1/.well-known/keys`` (an RSA JWK with
    ``kid``, ``x5t``, ``x5c`` and ``endorsements``), as documented in
    https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication
    ``token()`` signs what Teams puts in ``Authorization`` when it POSTs an activity to the bot:
    RS256, ``iss`` ``https://api.botframework.com``, ``aud`` the bot's app id, ``serviceurl``.
    A second, unpublished key (``unpublished_key``) makes tokens that must not verify.

The builders (``channel_message``, ``personal_message``, ``card_action``, ``press``,
``conversation_update``, ``installation_update``) return activities shaped like the JSON Teams
sends; each cites the Microsoft page its shape was checked against.

    login = FakeEntraLogin().start()
    connector = FakeBotConnector(login).start()
    issuer = FakeBotIssuer().start()
    ... bot env: TEAMS_LOGIN_URL=login.url, TEAMS_SERVICE_URL=connector.service_url,
        TEAMS_OPENID_METADATA_URL=issuer.metadata_url, REQUESTS_CA_BUNDLE=login.ca_file ...
    post_activity(bot_url, channel_message("care queue", service_url=connector.service_url),
                  token=issuer.token(BOT_APP_ID, connector.service_url))
    [card] = connector.cards_in(CHANNEL_ID)
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import html
import ipaddress
import itertools
import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fakes.base import LoopbackFake, QuietHandler

__all__ = [
    "ADAPTIVE_CARD",
    "BOTFRAMEWORK_AUDIENCE",
    "BOTFRAMEWORK_ISSUER",
    "BOTFRAMEWORK_SCOPE",
    "BOT_APP_ID",
    "BOT_NAME",
    "CHANNEL_ID",
    "CLIENT_SECRET",
    "SERVICE_URL",
    "TEAM_AAD_GROUP_ID",
    "TEAM_ID",
    "TENANT_ID",
    "USER_AAD_ID",
    "USER_ID",
    "Call",
    "FakeBotConnector",
    "FakeBotIssuer",
    "FakeEntraLogin",
    "FakeTeamsTimeout",
    "Message",
    "Reply",
    "card_action",
    "channel_message",
    "conversation_update",
    "fake_bot_connector",
    "fake_bot_issuer",
    "fake_entra_login",
    "find_action",
    "installation_update",
    "personal_conversation_id",
    "personal_message",
    "post_activity",
    "press",
]

# ------------------------------------------------------------------------------ identities

TENANT_ID = "6b1e0f4a-3c2d-4e5f-8a9b-0c1d2e3f4a5b"
BOT_APP_ID = "0c5a1e7d-2b3f-4a6c-9d8e-50c1a1ca4e00"
BOT_NAME = "socialcare"
CLIENT_SECRET = "fake-teams-client-secret"
TEAM_ID = "19:9f8e7d6c5b4a3928@thread.tacv2"  # a team's id is its General channel's thread id
TEAM_AAD_GROUP_ID = "d1b4c2a3-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
CHANNEL_ID = "19:0a1b2c3d4e5f@thread.tacv2"
USER_AAD_ID = "6b1a2c3d-0000-4000-8000-00000000a001"
USER_ID = "29:1AnaAgentTeamsUserMri-0000000000000000000000000000000000000000000000a001"
SERVICE_URL = "https://smba.trafficmanager.net/teams/"

BOTFRAMEWORK_AUDIENCE = "https://api.botframework.com"
BOTFRAMEWORK_SCOPE = f"{BOTFRAMEWORK_AUDIENCE}/.default"
BOTFRAMEWORK_ISSUER = "https://api.botframework.com"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"

#: Teams refuses a message over about 100 KB (PITFALLS: stay under 80 KB).
MAX_ACTIVITY_BYTES = 100 * 1024

Body = dict[str, Any] | list[Any] | str | bytes | None


class FakeTeamsTimeout(AssertionError):
    """wait_for() gave up before enough calls arrived."""


@dataclass(frozen=True)
class Call:
    """One request a fake received, recorded with the status it was answered with.

    ``path`` is the route, percent-decoded; for the connector it starts at ``/v3/`` whatever
    path the serviceUrl carries (``raw_path`` has it all, query included). ``headers`` has
    lower-cased keys. ``json`` is the parsed JSON body (None otherwise), ``form`` the parsed
    form body, ``query`` the query string.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    raw_path: str = ""
    status: int = 0

    @property
    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ keys and TLS


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _self_signed(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    """The certificate a JWK's ``x5c`` carries (Bot Framework and Entra keys have one)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class _SigningKey:
    key: rsa.RSAPrivateKey
    kid: str
    x5c: str  # base64 DER, as in a JWKS

    @classmethod
    def create(cls, common_name: str) -> _SigningKey:
        key = _rsa_key()
        der = _self_signed(key, common_name).public_bytes(serialization.Encoding.DER)
        # Microsoft's kids equal the x5t thumbprint (base64url SHA-1 of the certificate).
        return cls(key, _b64url(hashlib.sha1(der).digest()), base64.b64encode(der).decode())

    def jwk(self, **extra: Any) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes(3, "big")),
            "x5c": [self.x5c],
            **extra,
        }

    def sign(self, claims: Mapping[str, Any], kid: str | None = None) -> str:
        headers = {"typ": "JWT", "kid": kid or self.kid, "x5t": kid or self.kid}
        return jwt.encode(dict(claims), self.key, algorithm="RS256", headers=headers)


class _ThrowawayTls:
    """A throwaway CA, and a certificate it signed for 127.0.0.1 and localhost.

    One per test process (``shared()``), made the first time a TLS fake is built, so every TLS
    fake is trusted through the same ``ca_file``: point ``REQUESTS_CA_BUNDLE`` /
    ``SSL_CERT_FILE`` at it. The files live in a temp directory removed at exit.
    """

    _shared: _ThrowawayTls | None = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> _ThrowawayTls:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="fake-teams-tls-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.directory, True)
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "socialcare throwaway test CA")]
        )
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_file = str(self.directory / "ca.pem")
        cert_file = self.directory / "server.pem"
        key_file = self.directory / "server-key.pem"
        Path(self.ca_file).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            leaf_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.load_cert_chain(cert_file, key_file)

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only this CA (for urllib/aiohttp callers in tests)."""
        return ssl.create_default_context(cafile=self.ca_file)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# ------------------------------------------------------------------------------ serving


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    fake: _ScriptedFake

    def finish_request(self, request: Any, client_address: Any) -> None:
        tls = self.fake._tls
        if tls is None:
            super().finish_request(request, client_address)
            return
        # The handshake runs here, in the request's own thread, not in the accept loop.
        request.settimeout(10)
        try:
            wrapped = tls.server_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust the CA, or that went away
        try:
            self.RequestHandlerClass(wrapped, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                wrapped.shutdown(socket.SHUT_WR)
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client hanging up mid-response is not the test's business


class _Handler(QuietHandler):
    server: _Server

    def do_PUT(self) -> None:
        self.handle_request("PUT")

    def do_DELETE(self) -> None:
        self.handle_request("DELETE")

    def do_PATCH(self) -> None:
        self.handle_request("PATCH")

    def handle_request(self, method: str) -> None:
        raw = self.read_body()
        reply = self.server.fake._dispatch(method, self.path, self.lower_headers(), raw)
        self.send_body(reply.status, reply.body, reply.headers)


class _ScriptedFake(LoopbackFake):
    """Recording and scripting shared by the three fakes."""

    server_class = _Server
    handler_class = _Handler

    def _init_scripted(self, *, tls: bool) -> None:
        # Re-entrant: handlers run under the lock and may call public, locking accessors.
        self._init_serving(threading.RLock())
        self._tls = _ThrowawayTls.shared() if tls else None
        self._calls: list[Call] = []
        self._queued: list[tuple[str, str, Reply]] = []
        self._outage: Reply | None = None

    # ----------------------------------------------------------------- addresses

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT``, no trailing slash."""
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str | None:
        """PEM of the throwaway CA that signed this fake's certificate (None without TLS)."""
        return self._tls.ca_file if self._tls else None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client SSL context trusting this fake (for aiohttp ``ssl=``/urllib ``context=``)."""
        return self._tls.client_context() if self._tls else None

    # ----------------------------------------------------------------- recording

    @property
    def calls(self) -> list[Call]:
        """Every call so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, path_prefix: str = "") -> list[Call]:
        """Calls with this HTTP method whose path starts with ``path_prefix``."""
        with self._lock:
            return [c for c in self._calls if _matches(c, method, path_prefix)]

    def wait_for(
        self, method: str, path_prefix: str = "", count: int = 1, timeout: float = 5.0
    ) -> list[Call]:
        """Block until ``count`` matching calls have been answered; return calls_to(...)."""

        def arrived() -> bool:
            return sum(_matches(c, method, path_prefix) for c in self._calls) >= count

        with self._changed:
            if not self._changed.wait_for(arrived, timeout=timeout):
                seen = [f"{c.method} {c.path} -> {c.status}" for c in self._calls]
                raise FakeTeamsTimeout(
                    f"timed out after {timeout}s waiting for {count} {method} {path_prefix!r} "
                    f"call(s); received: {seen}"
                )
        return self.calls_to(method, path_prefix)

    def clear(self) -> None:
        """Forget recorded calls (state, queued responses and outages stay)."""
        with self._lock:
            self._calls.clear()

    # ----------------------------------------------------------------- scripting

    def queue(
        self,
        method: str,
        path_prefix: str,
        status: int,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next matching call with this response, once (FIFO among matches).

        Checked after authentication. ``body=None`` gives the service's usual error body for the
        status (e.g. ``{"error": {"code": "Throttled", ...}}`` for 429 on the connector).
        Headers are sent as given: for a rate limit pass ``{"Retry-After": "0"}``. (On the login
        that matters: MSAL replays a 429/5xx token answer from memory for Retry-After seconds,
        5 when absent, without asking again.)
        """
        reply = Reply(
            status, self._error_body(status) if body is None else body, dict(headers or {})
        )
        with self._lock:
            self._queued.append((method.upper(), path_prefix, reply))

    def fail_all(
        self, status: int = 503, body: Body = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Until restore(), answer every call with ``status`` (before auth; queue untouched)."""
        reply = Reply(
            status, self._error_body(status) if body is None else body, dict(headers or {})
        )
        with self._lock:
            self._outage = reply

    def restore(self) -> None:
        """End the outage started by fail_all()."""
        with self._lock:
            self._outage = None

    # ----------------------------------------------------------------- serving

    def _route(self, path: str) -> str:
        return "/".join(unquote(part) for part in path.split("/"))

    def _dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        parts = urlsplit(target)
        call = Call(
            method=method,
            path=self._route(parts.path),
            headers=headers,
            body=raw,
            json=_parse_json(headers, raw),
            form=_parse_form(headers, raw),
            query=_flatten(parse_qs(parts.query, keep_blank_values=True)),
            raw_path=target,
        )
        with self._changed:
            try:
                reply = self._answer(call)
            except Exception as exc:  # a bug in the fake: make it loud, not a hang
                reply = Reply(500, {"error": {"code": "FakeError", "message": repr(exc)}})
            self._calls.append(replace(call, status=reply.status))
            self._changed.notify_all()
        return reply

    def _answer(self, call: Call) -> Reply:
        if self._outage is not None:
            return self._outage
        refusal = self._refuse(call)
        if refusal is not None:
            return refusal
        for index, (method, prefix, reply) in enumerate(self._queued):
            if _matches(call, method, prefix):
                del self._queued[index]
                return reply
        return self._handle(call)

    def _refuse(self, call: Call) -> Reply | None:
        return None

    def _handle(self, call: Call) -> Reply:
        raise NotImplementedError

    def _error_body(self, status: int) -> Body:
        return {"error": {"code": f"Http{status}", "message": f"HTTP {status}"}}


def _matches(call: Call, method: str, path_prefix: str) -> bool:
    return call.method == method.upper() and call.path.startswith(path_prefix)


def _flatten(query: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[-1] for key, values in query.items()}


def _parse_json(headers: Mapping[str, str], raw: bytes) -> Any:
    if not raw or "json" not in headers.get("content-type", "").lower():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _parse_form(headers: Mapping[str, str], raw: bytes) -> dict[str, str]:
    ctype = headers.get("content-type", "").lower()
    if not raw or not ctype.startswith("application/x-www-form-urlencoded"):
        return {}
    return _flatten(parse_qs(raw.decode(), keep_blank_values=True))


# ------------------------------------------------------------------------------ Entra login


class FakeEntraLogin(_ScriptedFake):
    """Fake Microsoft identity platform (client credentials only), served over HTTPS.

    One app registration: ``client_id`` / ``client_secret`` in ``tenant_id``. Authority for MSAL:
    ``fake.authority`` (``https://127.0.0.1:PORT/<tenant>``), with ``instance_discovery=False``.
    """

    def __init__(
        self,
        *,
        tenant_id: str = TENANT_ID,
        client_id: str = BOT_APP_ID,
        client_secret: str = CLIENT_SECRET,
        expires_in: int = 3599,
    ) -> None:
        self._init_scripted(tls=True)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self._signing = _SigningKey.create("login.microsoftonline.com")
        self._issued: dict[str, dict[str, Any]] = {}
        self._revoked: set[str] = set()

    # ----------------------------------------------------------------- addresses

    @property
    def authority(self) -> str:
        """``https://127.0.0.1:PORT/<tenant>``: MSAL's authority (TEAMS_LOGIN_URL is ``url``)."""
        return f"{self.url}/{self.tenant_id}"

    @property
    def token_url(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def openid_configuration_url(self) -> str:
        return f"{self.authority}/v2.0/.well-known/openid-configuration"

    @property
    def instance_discovery_url(self) -> str:
        """Usable as MSAL's ``instance_discovery=`` (but see the module docstring)."""
        return f"{self.url}/common/discovery/instance"

    # ----------------------------------------------------------------- tokens

    def issue_token(
        self,
        *,
        client_id: str | None = None,
        scope: str = BOTFRAMEWORK_SCOPE,
        expires_in: int | None = None,
    ) -> str:
        """Mint an access token as the token endpoint would, without HTTP (for connector tests)."""
        resource = scope.removesuffix("/.default")
        now = int(time.time())
        lifetime = self.expires_in if expires_in is None else expires_in
        sts = f"https://sts.windows.net/{self.tenant_id}/"
        claims = {
            "aud": resource,
            "iss": sts,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": client_id or self.client_id,
            "appidacr": "1",
            "idp": sts,
            "tid": self.tenant_id,
            "ver": "1.0",
            "uti": _b64url(uuid.uuid4().bytes),
        }
        token = self._signing.sign(claims)
        with self._lock:
            self._issued[token] = claims
        return token

    def token_claims(self, token: str) -> dict[str, Any] | None:
        """Claims of a token this fake issued and has not revoked; None otherwise."""
        with self._lock:
            if token in self._revoked:
                return None
            claims = self._issued.get(token)
            return dict(claims) if claims is not None else None

    def is_valid(self, token: str, *, audience: str = BOTFRAMEWORK_AUDIENCE) -> bool:
        """Issued here, not revoked, not expired, and for ``audience``."""
        claims = self.token_claims(token)
        return bool(claims) and claims["aud"] == audience and claims["exp"] > time.time()

    def revoke_all(self) -> None:
        """Every token issued so far stops being accepted (the connector answers 401)."""
        with self._lock:
            self._revoked.update(self._issued)

    @property
    def tokens(self) -> list[str]:
        """Every access token issued, oldest first."""
        with self._lock:
            return list(self._issued)

    def token_requests(self) -> list[Call]:
        """POSTs to the token endpoint (any tenant), oldest first."""
        with self._lock:
            return [c for c in self._calls if c.method == "POST" and c.path.endswith("/token")]

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [self._signing.jwk(issuer="https://login.microsoftonline.com/{tenantid}/v2.0")]
        }

    # ----------------------------------------------------------------- serving

    def _handle(self, call: Call) -> Reply:
        parts = call.path.strip("/").split("/")
        if call.method == "GET" and parts == ["common", "discovery", "instance"]:
            return self._instance_discovery(call)
        tenant, rest = parts[0], parts[1:]
        if call.method == "GET" and rest == ["v2.0", ".well-known", "openid-configuration"]:
            if tenant != self.tenant_id:
                return self._aad_error(
                    400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. " + _TENANT_HINT
                )
            return Reply(200, self._openid_configuration())
        if call.method == "GET" and rest == ["discovery", "v2.0", "keys"]:
            return Reply(200, self.jwks())
        if call.method == "POST" and rest == ["oauth2", "v2.0", "token"]:
            return self._token(tenant, call)
        return Reply(404, {"error": "not_found", "error_description": f"no route {call.path}"})

    def _instance_discovery(self, call: Call) -> Reply:
        # MSAL asks about https://<host, its port dropped>/<tenant>/oauth2/v2.0/authorize
        endpoint = urlsplit(call.query.get("authorization_endpoint", ""))
        if endpoint.hostname not in ("127.0.0.1", "localhost"):
            return self._aad_error(400, "invalid_instance", 50049, "Unknown or invalid instance.")
        tenant = (endpoint.path.strip("/").split("/") or [""])[0] or "common"
        return Reply(
            200,
            {
                "tenant_discovery_endpoint": (
                    f"{self.url}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {
                        "preferred_network": "127.0.0.1",
                        "preferred_cache": "127.0.0.1",
                        "aliases": ["127.0.0.1", "localhost"],
                    }
                ],
            },
        )

    def _openid_configuration(self) -> dict[str, Any]:
        # Same keys as https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration
        base = self.authority
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "tid", "ver"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def _token(self, tenant: str, call: Call) -> Reply:
        form = call.form
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, basic = call.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and basic:  # client_secret_basic
            user, _, password = base64.b64decode(basic).decode().partition(":")
            client_id, secret = client_id or unquote(user), secret or unquote(password)
        if tenant != self.tenant_id:
            return self._aad_error(
                400, "invalid_request", 90002, f"Tenant '{tenant}' not found. " + _TENANT_HINT
            )
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            return self._aad_error(
                400, "unsupported_grant_type", 70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )  # fmt: skip
        if not client_id:
            return self._aad_error(
                400, "invalid_request", 900144,
                "The request body must contain the following parameter: 'client_id'.",
            )  # fmt: skip
        if client_id != self.client_id:
            return self._aad_error(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )  # fmt: skip
        if not secret:
            return self._aad_error(
                401, "invalid_client", 7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )  # fmt: skip
        if secret != self.client_secret:
            return self._aad_error(
                401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )  # fmt: skip
        scope = form.get("scope", "")
        if len(scope.split()) != 1 or not scope.endswith("/.default"):
            return self._aad_error(
                400, "invalid_scope", 1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )  # fmt: skip
        token = self.issue_token(client_id=client_id, scope=scope)
        return Reply(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in,
                "access_token": token,
            },
            {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _aad_error(self, status: int, error: str, code: int, message: str) -> Reply:
        """Entra's error shape: error, error_description (AADSTSnnn...), error_codes, ids."""
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return Reply(
            status,
            {
                "error": error,
                "error_description": (
                    f"AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} "
                    f"Timestamp: {stamp}"
                ),
                "error_codes": [code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{self.url}/error?code={code}",
            },
        )

    def _error_body(self, status: int) -> Body:
        if status == 429 or status >= 500:
            return self._aad_error(status, "temporarily_unavailable", 50196, "Try again.").body
        return self._aad_error(status, "invalid_request", 90000 + status, f"HTTP {status}").body


_TENANT_HINT = (
    "Check to make sure you have the correct tenant ID and are signing into the correct cloud."
)


# ------------------------------------------------------------------------------ connector


@dataclass(frozen=True)
class Message:
    """A message the bot posted, as the fake keeps it (a snapshot; later changes don't show).

    ``conversation_id`` is where it lives: ``<channel>;messageid=<root>`` for a channel thread
    (the root post included), ``a:...`` for a 1:1 chat. ``reply_to_id`` is the thread root for a
    reply in a channel (the ``replyToId`` for a 1:1 reply). ``activity`` is the latest version as
    sent, ``versions`` every version (original first).
    """

    id: str
    conversation_id: str
    channel_id: str | None
    reply_to_id: str | None
    activity: dict[str, Any]
    versions: tuple[dict[str, Any], ...]
    deleted: bool = False

    @property
    def text(self) -> str:
        return str(self.activity.get("text") or "")

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return list(self.activity.get("attachments") or [])

    @property
    def cards(self) -> list[dict[str, Any]]:
        """Contents of the Adaptive Card attachments."""
        return [a.get("content") for a in self.attachments if a.get("contentType") == ADAPTIVE_CARD]

    @property
    def card(self) -> dict[str, Any] | None:
        cards = self.cards
        return cards[0] if cards else None

    @property
    def updates(self) -> int:
        return len(self.versions) - 1

    @property
    def is_root(self) -> bool:
        return self.channel_id is not None and self.reply_to_id is None


@dataclass
class _Stored:
    id: str
    conversation_id: str
    channel_id: str | None
    reply_to_id: str | None
    versions: list[dict[str, Any]]
    deleted: bool = False

    def snapshot(self) -> Message:
        versions = tuple(copy.deepcopy(v) for v in self.versions)
        return Message(
            self.id,
            self.conversation_id,
            self.channel_id,
            self.reply_to_id,
            versions[-1],
            versions,
            self.deleted,
        )


class FakeBotConnector(_ScriptedFake):
    """Fake Bot Framework Connector (the Teams ``serviceUrl``), plain HTTP unless ``tls=True``.

    ``login``: tokens it issued (unrevoked, unexpired, ``aud`` = https://api.botframework.com)
    are accepted; ``accept_token()`` adds others. ``personal_installs``: the users (Teams ids or
    Entra object ids) who have the app installed personally; None means everybody.
    """

    def __init__(
        self,
        login: FakeEntraLogin | None = None,
        *,
        tls: bool = False,
        path: str = "/amer/",
        personal_installs: Iterable[str] | None = None,
    ) -> None:
        self._init_scripted(tls=tls)
        self.login = login
        self._path = "/" + path.strip("/") + "/" if path.strip("/") else "/"
        self._accepted: set[str] = set()
        self._installs = None if personal_installs is None else set(personal_installs)
        self._messages: dict[str, _Stored] = {}  # by id, in posting order
        self._personal: dict[str, str] = {}  # user id -> 1:1 conversation id
        self._ids = itertools.count(1_700_000_000_001)

    @property
    def service_url(self) -> str:
        """The serviceUrl to put in activities and TEAMS_SERVICE_URL (ends with ``/``)."""
        return f"{self.url}{self._path}"

    # ----------------------------------------------------------------- set-up

    def accept_token(self, token: str) -> None:
        """Accept this bearer token too (for tests without a FakeEntraLogin)."""
        with self._lock:
            self._accepted.add(token)

    def install_for(self, *user_ids: str) -> None:
        """The app is now installed personally for these users."""
        with self._lock:
            self._installs = (self._installs or set()) | set(user_ids)

    def uninstall_for(self, *user_ids: str) -> None:
        """The app is no longer installed for these users (others stay as they were)."""
        with self._lock:
            self._installs = (self._installs or set()) - set(user_ids)

    # ----------------------------------------------------------------- state

    def message(self, activity_id: str) -> Message:
        """The message with this id (KeyError if the bot never posted it)."""
        with self._lock:
            return self._messages[activity_id].snapshot()

    def messages(self, conversation_id: str, *, include_deleted: bool = False) -> list[Message]:
        """Messages in a conversation, in posting order.

        A bare channel id gives the thread roots posted in that channel; ``<channel>;messageid=N``
        gives thread N (its root, when the bot posted it, then the replies); a 1:1 id its messages.
        """
        base, root = _split_conversation(conversation_id)
        with self._lock:
            stored = list(self._messages.values())
            if root is not None:
                found = [
                    m for m in stored if m.channel_id == base and root in (m.id, m.reply_to_id)
                ]
            elif _is_channel(base):
                found = [m for m in stored if m.channel_id == base and m.reply_to_id is None]
            else:
                found = [m for m in stored if m.conversation_id == conversation_id]
            return [m.snapshot() for m in found if include_deleted or not m.deleted]

    def replies(self, conversation_id: str) -> list[Message]:
        """The replies in thread ``<channel>;messageid=<root>`` (root excluded)."""
        _, root = _split_conversation(conversation_id)
        return [m for m in self.messages(conversation_id) if m.id != root]

    def cards_in(self, channel_id: str) -> list[dict[str, Any]]:
        """The Adaptive Card (latest version) of each thread root in the channel, oldest first."""
        return [m.card for m in self.messages(channel_id) if m.card is not None]

    def card_messages(self, channel_id: str) -> list[Message]:
        """The thread roots in the channel that carry an Adaptive Card, oldest first."""
        return [m for m in self.messages(channel_id) if m.card is not None]

    def conversation_for(self, user_id: str) -> str | None:
        """The 1:1 conversation id opened with this user (None if the bot never opened one)."""
        with self._lock:
            return self._personal.get(user_id)

    def personal_messages(self, user_id: str) -> list[Message]:
        """Messages in the 1:1 chat with this user ([] if none was opened)."""
        conversation = self.conversation_for(user_id)
        return self.messages(conversation) if conversation else []

    # ----------------------------------------------------------------- serving

    def _route(self, path: str) -> str:
        at = path.find("/v3/")
        return super()._route(path[at:] if at >= 0 else path)

    def _refuse(self, call: Call) -> Reply | None:
        token = call.bearer
        if token and (token in self._accepted or (self.login and self.login.is_valid(token))):
            return None
        return Reply(401, {"message": "Authorization has been denied for this request."})

    def _handle(self, call: Call) -> Reply:
        parts = call.path.strip("/").split("/")
        if parts[:2] != ["v3", "conversations"]:
            return _teams_error(404, "NotFound", f"No route for {call.method} {call.path}.")
        if call.method in ("POST", "PUT") and len(call.body) > MAX_ACTIVITY_BYTES:
            return _teams_error(413, "MessageSizeTooBig", "Message size too large.")
        body = call.json if isinstance(call.json, dict) else None
        if call.method in ("POST", "PUT") and body is None:
            return _teams_error(400, "BadArgument", "A JSON object body is required.")
        if len(parts) == 2 and call.method == "POST":
            return self._create(body or {})
        if len(parts) >= 4 and parts[3] == "activities":
            conversation = parts[2]
            if len(parts) == 4 and call.method == "POST":
                return self._post(conversation, None, body or {})
            if len(parts) == 5 and call.method == "POST":
                return self._post(conversation, parts[4], body or {})
            if len(parts) == 5 and call.method == "PUT":
                return self._update(conversation, parts[4], body or {})
            if len(parts) == 5 and call.method == "DELETE":
                return self._delete(conversation, parts[4])
        return _teams_error(
            501, "NotImplemented", f"FakeBotConnector does not implement {call.method} {call.path}"
        )

    def _create(self, body: dict[str, Any]) -> Reply:
        channel_data = body.get("channelData") or {}
        tenant = body.get("tenantId") or (channel_data.get("tenant") or {}).get("id")
        if not tenant:
            return _teams_error(400, "BadArgument", "A tenant id is required (tenantId).")
        activity = body.get("activity")
        channel = (channel_data.get("channel") or {}).get("id") or channel_data.get(
            "teamsChannelId"
        )
        if channel:
            if not isinstance(activity, dict):
                return _teams_error(400, "BadArgument", "An activity is required in a channel.")
            stored = self._store(channel, None, activity)
            return Reply(201, {"id": stored.conversation_id, "activityId": stored.id})
        members = body.get("members") or []
        if len(members) != 1 or not isinstance(members[0], dict) or not members[0].get("id"):
            return _teams_error(400, "BadArgument", "Exactly one member is required for a 1:1.")
        member = members[0]
        user = str(member["id"])
        if self._installs is not None and not ({user, member.get("aadObjectId")} & self._installs):
            return _teams_error(
                403, "ForbiddenOperationException", "Bot is not installed in user's personal scope"
            )
        conversation = self._personal.setdefault(user, personal_conversation_id(user))
        if isinstance(activity, dict):
            stored = self._store(conversation, None, activity)
            return Reply(201, {"id": conversation, "activityId": stored.id})
        return Reply(201, {"id": conversation})

    def _post(self, conversation: str, reply_to: str | None, activity: dict[str, Any]) -> Reply:
        if not activity.get("type"):
            return _teams_error(400, "BadArgument", "Activity type is required.")
        stored = self._store(conversation, reply_to, activity)
        return Reply(201, {"id": stored.id})

    def _store(self, conversation: str, reply_to: str | None, activity: dict[str, Any]) -> _Stored:
        message_id = str(next(self._ids))
        base, root = _split_conversation(conversation)
        if _is_channel(base):
            root = root or (self._root_of(base, reply_to) if reply_to else None)
            if root is None:  # a new thread in the channel
                stored = _Stored(message_id, f"{base};messageid={message_id}", base, None, [])
            else:  # a reply in thread `root` (whoever posted the root)
                stored = _Stored(message_id, f"{base};messageid={root}", base, root, [])
        else:
            stored = _Stored(message_id, conversation, None, reply_to, [])
        stored.versions.append(copy.deepcopy(activity))
        self._messages[message_id] = stored
        return stored

    def _root_of(self, channel: str, activity_id: str) -> str:
        known = self._messages.get(activity_id)
        if known is not None and known.channel_id == channel and known.reply_to_id:
            return known.reply_to_id
        return activity_id

    def _find(self, conversation: str, activity_id: str) -> _Stored | None:
        base, _ = _split_conversation(conversation)
        stored = self._messages.get(activity_id)
        if stored is None or stored.deleted:
            return None
        same_place = (
            stored.channel_id == base if _is_channel(base) else stored.conversation_id == base
        )
        return stored if same_place else None

    def _update(self, conversation: str, activity_id: str, activity: dict[str, Any]) -> Reply:
        stored = self._find(conversation, activity_id)
        if stored is None:
            return _teams_error(
                404, "ActivityNotFoundInConversation", "Message does not exist in the thread."
            )
        stored.versions.append(copy.deepcopy(activity))
        return Reply(200, {"id": activity_id})

    def _delete(self, conversation: str, activity_id: str) -> Reply:
        stored = self._find(conversation, activity_id)
        if stored is None:
            return _teams_error(
                404, "ActivityNotFoundInConversation", "Message does not exist in the thread."
            )
        stored.deleted = True
        return Reply(200, None)

    def _error_body(self, status: int) -> Body:
        return _teams_error(status, *_TEAMS_ERRORS.get(status, (f"Http{status}", "Unknown"))).body


# Status -> (code, message), from the Teams "status codes from bot conversational APIs" table.
_TEAMS_ERRORS = {
    400: ("BadArgument", "Invalid request payload."),
    401: ("BotNotRegistered", "No registration found for this bot."),
    403: ("BotNotInConversationRoster", "The bot isn't part of the conversation roster."),
    404: ("ConversationNotFound", "Conversation not found."),
    412: ("PreconditionFailed", "Precondition failed, please try again."),
    413: ("MessageSizeTooBig", "Message size too large."),
    429: ("Throttled", "Too many requests."),
    500: ("ServiceError", "Unknown"),
    502: ("ServiceError", "Unknown"),
    503: ("ServiceUnavailable", "Service is unavailable."),
    504: ("GatewayTimeout", "Gateway Timeout."),
}


def _teams_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def _split_conversation(conversation_id: str) -> tuple[str, str | None]:
    base, sep, root = conversation_id.partition(";messageid=")
    return base, (root or None) if sep else None


def _is_channel(conversation_id: str) -> bool:
    return conversation_id.startswith("19:")


def personal_conversation_id(user_id: str) -> str:
    """The 1:1 conversation id for a user: stable, ``a:1...`` like Teams'."""
    return "a:1" + _b64url(hashlib.sha256(user_id.encode()).digest())


# ------------------------------------------------------------------------------ issuer


class FakeBotIssuer(_ScriptedFake):
    """Fake Bot Framework token issuer: OpenID metadata, JWKS, and signed inbound tokens."""

    def __init__(
        self,
        *,
        tls: bool = False,
        endorsements: Iterable[str] = ("msteams",),
        issuer: str = BOTFRAMEWORK_ISSUER,
    ) -> None:
        self._init_scripted(tls=tls)
        self.issuer = issuer
        self.endorsements = list(endorsements)
        self._signing = _SigningKey.create("login.botframework.com")
        self._unpublished = _SigningKey.create("not.botframework.com")

    @property
    def metadata_url(self) -> str:
        """Like https://login.botframework.com/v1/.well-known/openidconfiguration."""
        return f"{self.url}/v1/.well-known/openidconfiguration"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/v1/.well-known/keys"

    @property
    def kid(self) -> str:
        """The published signing key's id."""
        return self._signing.kid

    @property
    def unpublished_key(self) -> rsa.RSAPrivateKey:
        """A key absent from the JWKS: ``token(key=fake.unpublished_key)`` must not verify."""
        return self._unpublished.key

    @property
    def unpublished_kid(self) -> str:
        return self._unpublished.kid

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._signing.jwk(endorsements=list(self.endorsements))]}

    def token(
        self,
        app_id: str = BOT_APP_ID,
        service_url: str = SERVICE_URL,
        *,
        expires_in: int = 3600,
        issuer: str = BOTFRAMEWORK_ISSUER,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """The bearer token Teams sends with an activity for bot ``app_id`` (RS256).

        ``key`` defaults to the published key; with ``key=unpublished_key`` the header still
        names the published ``kid`` (a forgery) unless ``kid`` says otherwise. A negative
        ``expires_in`` makes an expired token. Extra ``claims`` are added; a claim set to None is
        removed (``serviceurl=None`` drops the service URL).
        """
        now = int(time.time())
        body: dict[str, Any] = {
            "serviceurl": service_url,
            "nbf": now - 300,
            "exp": now + expires_in,
            "iss": issuer,
            "aud": app_id,
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        if key is None or key is self._signing.key:
            return self._signing.sign(body, kid)
        if key is self._unpublished.key:
            return self._unpublished.sign(body, kid or self._signing.kid)
        signer = _SigningKey(key, kid or self._signing.kid, "")
        return signer.sign(body)

    def authorization(
        self, app_id: str = BOT_APP_ID, service_url: str = SERVICE_URL, **kw: Any
    ) -> str:
        """``Bearer <token()>``, for an ``Authorization`` header."""
        return f"Bearer {self.token(app_id, service_url, **kw)}"

    def _handle(self, call: Call) -> Reply:
        if call.method == "GET" and call.path == "/v1/.well-known/openidconfiguration":
            return Reply(200, self.metadata())
        if call.method == "GET" and call.path == "/v1/.well-known/keys":
            return Reply(200, self.jwks())
        return Reply(404, {"error": "not_found"})


# ------------------------------------------------------------------------------ activities
#
# Shapes checked against Microsoft's pages and captured payloads:
#   mentions, channel messages: learn.microsoft.com/microsoftteams/platform/bots/how-to/
#     conversations/channel-and-group-conversations#work-with-mentions, and a captured channel
#     message (text "<at>bot</at> ...", text/html attachment, clientInfo entity, channelData with
#     teamsChannelId/teamsTeamId/channel/team/tenant, conversation "19:...;messageid=...").
#   adaptiveCard/action: learn.microsoft.com/microsoftteams/platform/bots/universal-bot-action-model
#     ("Request format": value.action {type "Action.Execute", id, verb, data}, value.trigger).
#   conversationUpdate / installationUpdate: learn.microsoft.com/microsoftteams/platform/bots/
#     how-to/conversations/subscribe-to-conversation-events (team members added, installation).

_activity_ids = itertools.count(1)


def _new_message_id() -> str:
    return str(1_760_000_000_000 + next(_activity_ids))


def _new_event_id() -> str:
    return f"f:{uuid.uuid4()}"


def _timestamps() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "localTimestamp": now.isoformat(timespec="milliseconds"),
    }


def _bot(bot_app_id: str, bot_name: str) -> dict[str, str]:
    return {"id": f"28:{bot_app_id}", "name": bot_name}


def _client_info() -> dict[str, str]:
    return {
        "type": "clientInfo",
        "locale": "en-GB",
        "country": "GB",
        "platform": "Web",
        "timezone": "Europe/London",
    }


def channel_message(
    text: str,
    *,
    from_id: str = USER_ID,
    aad_object_id: str = USER_AAD_ID,
    from_name: str = "Ana Agent",
    channel_id: str = CHANNEL_ID,
    team_id: str = TEAM_ID,
    tenant_id: str = TENANT_ID,
    service_url: str = SERVICE_URL,
    mention_bot: bool = True,
    thread_root_id: str | None = None,
    activity_id: str | None = None,
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
) -> dict[str, Any]:
    """A message in a Teams channel; with ``mention_bot`` it reads ``<at>socialcare</at> text``.

    A new post starts its own thread (``conversation.id`` = ``<channel>;messageid=<its id>``);
    with ``thread_root_id`` it is a reply in that thread. Teams only delivers channel messages
    that @mention the bot, so ``mention_bot=False`` models what the bot should never see.
    """
    message_id = activity_id or _new_message_id()
    root = thread_root_id or message_id
    bot = _bot(bot_app_id, bot_name)
    at = f"<at>{bot_name}</at>"
    span = (
        f'<span itemtype="http://schema.skype.com/Mention" itemscope="" itemid="0">'
        f"{html.escape(bot_name)}</span>&nbsp;"
    )
    entities: list[dict[str, Any]] = [_client_info()]
    if mention_bot:
        entities.insert(0, {"type": "mention", "mentioned": dict(bot), "text": at})
    activity: dict[str, Any] = {
        "type": "message",
        "id": message_id,
        **_timestamps(),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": from_id, "name": from_name, "aadObjectId": aad_object_id},
        "conversation": {
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": tenant_id,
            "id": f"{channel_id};messageid={root}",
        },
        "recipient": bot,
        "textFormat": "plain",
        "text": f"{at} {text}" if mention_bot else text,
        "attachments": [
            {
                "contentType": "text/html",
                "content": f"<p>{span if mention_bot else ''}{html.escape(text)}</p>",
            }
        ],
        "entities": entities,
        "channelData": {
            "teamsChannelId": channel_id,
            "teamsTeamId": team_id,
            "channel": {"id": channel_id},
            "team": {"id": team_id},
            "tenant": {"id": tenant_id},
        },
        "locale": "en-GB",
        "localTimezone": "Europe/London",
    }
    if thread_root_id:
        activity["replyToId"] = thread_root_id
    return activity


def personal_message(
    text: str,
    *,
    from_id: str = USER_ID,
    aad_object_id: str = USER_AAD_ID,
    from_name: str = "Ana Agent",
    tenant_id: str = TENANT_ID,
    service_url: str = SERVICE_URL,
    conversation_id: str | None = None,
    activity_id: str | None = None,
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
) -> dict[str, Any]:
    """A message in the user's 1:1 chat with the bot (no mention; conversationType personal).

    ``conversation_id`` defaults to ``personal_conversation_id(from_id)``, the id
    FakeBotConnector gives a 1:1 the bot opens with ``from_id``.
    """
    return {
        "type": "message",
        "id": activity_id or _new_message_id(),
        **_timestamps(),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": from_id, "name": from_name, "aadObjectId": aad_object_id},
        "conversation": {
            "conversationType": "personal",
            "tenantId": tenant_id,
            "id": conversation_id or personal_conversation_id(from_id),
        },
        "recipient": _bot(bot_app_id, bot_name),
        "textFormat": "plain",
        "text": text,
        "entities": [_client_info()],
        "channelData": {"tenant": {"id": tenant_id}},
        "locale": "en-GB",
        "localTimezone": "Europe/London",
    }


def card_action(
    verb: str,
    data: Mapping[str, Any] | None = None,
    *,
    from_id: str = USER_ID,
    aad_object_id: str = USER_AAD_ID,
    from_name: str = "Ana Agent",
    conversation_id: str,
    reply_to_id: str,
    service_url: str = SERVICE_URL,
    tenant_id: str = TENANT_ID,
    team_id: str | None = TEAM_ID,
    action_id: str | None = None,
    title: str | None = None,
    trigger: str = "manual",
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
) -> dict[str, Any]:
    """The ``invoke`` Teams sends when someone presses an ``Action.Execute`` button.

    ``conversation_id`` / ``reply_to_id``: the card's conversation and message id (for a card
    that is a thread root in a channel: ``<channel>;messageid=<id>`` and ``<id>``). ``data`` is
    the action's data, merged with the card's input values as Teams does. The bot must answer in
    the HTTP response (``{"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive",
    "value": card}``).
    """
    base, _ = _split_conversation(conversation_id)
    action: dict[str, Any] = {"type": "Action.Execute"}
    if action_id is not None:
        action["id"] = action_id
    if title is not None:
        action["title"] = title
    action["verb"] = verb
    action["data"] = dict(data or {})
    channel_data: dict[str, Any] = {"tenant": {"id": tenant_id}, "source": {"name": "message"}}
    conversation: dict[str, Any] = {"tenantId": tenant_id, "id": conversation_id}
    if _is_channel(base):
        conversation.update(isGroup=True, conversationType="channel")
        channel_data.update(channel={"id": base})
        if team_id:
            channel_data.update(team={"id": team_id})
    else:
        conversation.update(conversationType="personal")
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": _new_event_id(),
        **_timestamps(),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": from_id, "name": from_name, "aadObjectId": aad_object_id},
        "conversation": conversation,
        "recipient": _bot(bot_app_id, bot_name),
        "replyToId": reply_to_id,
        "entities": [_client_info()],
        "channelData": channel_data,
        "value": {"action": action, "trigger": trigger},
        "locale": "en-GB",
        "localTimezone": "Europe/London",
    }


def find_action(
    card: Mapping[str, Any], verb: str, match: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``Action.Execute`` with this verb anywhere in the card (``actions``, ActionSets,
    ``selectAction``...); ``match`` picks among several by their data (``{"n": 2}``).
    Raises LookupError listing the verbs present when there is none."""
    found: list[dict[str, Any]] = []
    verbs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute":
                verbs.append(str(node.get("verb")))
                data = node.get("data") if isinstance(node.get("data"), dict) else {}
                if node.get("verb") == verb and all(
                    data.get(k) == v for k, v in (match or {}).items()
                ):
                    found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    if not found:
        raise LookupError(f"no Action.Execute {verb!r} matching {match!r}; card has {verbs}")
    return dict(found[0])


def press(
    message: Message,
    verb: str,
    *,
    match: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    **identity: Any,
) -> dict[str, Any]:
    """The invoke for pressing the ``verb`` button on a card the connector recorded.

    The action's data comes from the card (latest version), with ``inputs`` (Input.* values)
    merged in; ``identity`` is passed to card_action (``from_id``, ``aad_object_id``,
    ``service_url``...).
    """
    card = message.card
    if card is None:
        raise LookupError(f"message {message.id} carries no Adaptive Card")
    action = find_action(card, verb, match)
    data = {**(action.get("data") or {}), **(inputs or {})}
    return card_action(
        verb,
        data,
        conversation_id=message.conversation_id,
        reply_to_id=message.id,
        action_id=action.get("id"),
        title=action.get("title"),
        **identity,
    )


def conversation_update(
    *,
    members_added: list[dict[str, Any]] | None = None,
    event_type: str = "teamMemberAdded",
    channel_id: str = CHANNEL_ID,
    channel_name: str = "Customer Care",
    team_id: str = TEAM_ID,
    team_name: str = "Acme Air Social",
    aad_group_id: str = TEAM_AAD_GROUP_ID,
    tenant_id: str = TENANT_ID,
    service_url: str = SERVICE_URL,
    from_id: str = USER_ID,
    aad_object_id: str = USER_AAD_ID,
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
) -> dict[str, Any]:
    """``conversationUpdate`` for the bot being added to a team (``membersAdded`` = the bot)."""
    return {
        "type": "conversationUpdate",
        "membersAdded": members_added
        if members_added is not None
        else [{"id": f"28:{bot_app_id}"}],
        **_timestamps(),
        "id": _new_event_id(),
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": from_id, "aadObjectId": aad_object_id},
        "conversation": {
            "isGroup": True,
            "conversationType": "channel",
            "tenantId": tenant_id,
            "id": channel_id,
            "name": channel_name,
        },
        "recipient": _bot(bot_app_id, bot_name),
        "channelData": {
            "settings": {"selectedChannel": {"id": channel_id}},
            "team": {"aadGroupId": aad_group_id, "name": team_name, "id": team_id},
            "eventType": event_type,
            "tenant": {"id": tenant_id},
        },
    }


def installation_update(
    *,
    action: str = "add",
    personal: bool = False,
    channel_id: str = CHANNEL_ID,
    channel_name: str = "Customer Care",
    team_id: str = TEAM_ID,
    team_name: str = "Acme Air Social",
    aad_group_id: str = TEAM_AAD_GROUP_ID,
    tenant_id: str = TENANT_ID,
    service_url: str = SERVICE_URL,
    from_id: str = USER_ID,
    aad_object_id: str = USER_AAD_ID,
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
) -> dict[str, Any]:
    """``installationUpdate`` (``action`` add / remove / add-upgrade / remove-upgrade) for a
    team, or with ``personal=True`` for the installing user's 1:1 chat."""
    if personal:
        conversation: dict[str, Any] = {
            "conversationType": "personal",
            "tenantId": tenant_id,
            "id": personal_conversation_id(from_id),
        }
        channel_data: dict[str, Any] = {"tenant": {"id": tenant_id}, "source": {"name": "message"}}
    else:
        conversation = {
            "isGroup": True,
            "id": channel_id,
            "name": channel_name,
            "conversationType": "channel",
            "tenantId": tenant_id,
        }
        channel_data = {
            "settings": {"selectedChannel": {"id": channel_id}},
            "channel": {"id": channel_id},
            "team": {"aadGroupId": aad_group_id, "name": team_name, "id": team_id},
            "tenant": {"id": tenant_id},
            "source": {"name": "message"},
        }
    return {
        "type": "installationUpdate",
        "id": _new_event_id(),
        **_timestamps(),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": from_id, "aadObjectId": aad_object_id},
        "recipient": _bot(bot_app_id, bot_name),
        "locale": "en-GB",
        "entities": [{"type": "clientInfo", "locale": "en-GB"}],
        "conversation": conversation,
        "channelData": channel_data,
        "action": action,
    }


def post_activity(
    endpoint: str,
    activity: Mapping[str, Any],
    *,
    token: str | None = None,
    timeout: float = 10.0,
    context: ssl.SSLContext | None = None,
) -> tuple[int, Any]:
    """POST an activity to a bot the way Teams does; returns (status, parsed JSON body or text)."""
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        endpoint, data=json.dumps(activity).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def fake_entra_login() -> Iterator[FakeEntraLogin]:
    """A running FakeEntraLogin, stopped after the test. Import into a conftest to share it."""
    with FakeEntraLogin() as fake:
        yield fake


@pytest.fixture
def fake_bot_connector(fake_entra_login: FakeEntraLogin) -> Iterator[FakeBotConnector]:
    """A running FakeBotConnector accepting the fake_entra_login's tokens."""
    with FakeBotConnector(fake_entra_login) as fake:
        yield fake


@pytest.fixture
def fake_bot_issuer() -> Iterator[FakeBotIssuer]:
    """A running FakeBotIssuer, stopped after the test."""
    with FakeBotIssuer() as fake:
        yield fake
