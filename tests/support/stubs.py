"""Stubbed-HTTP harness for client tests (responses): constants, a client with fake time, helpers.

Registered from conftest.py, so the ``mock`` (strict RequestsMock) and ``h`` (Harness) fixtures are
available to every test module.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from responses import matchers

from enos_pulumi.enos import auth
from enos_pulumi.enos.client import EnosClient, RequestEvent, SessionPool, StageTarget
from enos_pulumi.enos.retry import Backoff, RetryPolicy
from enos_pulumi.enos.settings import Settings
from tests.support.fakes import FakeTime

GATEWAY = "https://apim.example.com"
ACCESS_KEY = "my-app-key"
SECRET = "my-app-secret"
TOKEN = "my-access-token"
TOKEN_URL = GATEWAY + "/apim-token-service/v2.0/token/get"
STAGE_URL = GATEWAY + "/streaming/v2.0/stage-state"
PIPELINES_URL = GATEWAY + "/streaming/v2.0/streaming/pipelines"
TARGET = StageTarget("o123", "p1", "LastRecordAppender_01")
DELETE_QUERY = {"action": "delete", "orgId": "o123"}
GET_QUERY = {"action": "get", "orgId": "o123"}

# The test vectors of docs/design.md.
VECTOR_TIMESTAMP = 1700000000000
VECTOR_BODY = (
    b'{"pipelineId":"p1","stageInstanceName":"LastRecordAppender_01","assetIds":"a1,a2","pointIds":"pt1,pt2"}'
)
VECTOR_SIGNATURE = "9e7d57563fb3b4bdb2111e2c8521baeaee35ec9d41bb80434e49a5a3a4f13af9"
VECTOR_ENCRYPTION = "e6efa580db557dbce254465b1550c0b0898deb7048a398de289230d7dacbfe97"

HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    "</center><hr><center>nginx</center></body></html>"
)


# -- harness -------------------------------------------------------------------------------------------------


class Millis:
    """Signing timestamps: starts at the test vector's, advances ``step`` ms per call."""

    def __init__(self, step: int = 0) -> None:
        self.value = VECTOR_TIMESTAMP
        self.step = step
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            current = self.value
            self.value += self.step
            return current


class Harness:
    def __init__(self) -> None:
        self.fake = FakeTime()
        self.events: list[RequestEvent] = []
        self.tokens = auth.TokenCache()
        self.sessions = SessionPool()
        self.millis = Millis()

    def client(
        self,
        *,
        parallel: int = 1,
        limit: int = 100_000,
        deadline: float = 60.0,
        tokens: auth.TokenCache | None = None,
    ) -> EnosClient:
        settings = Settings(
            api_gateway=GATEWAY,
            access_key=ACCESS_KEY,
            secret_key=SECRET,
            parallel_requests=parallel,
            max_pairs_per_request=limit,
        )
        policy = RetryPolicy(
            deadline=deadline,
            backoff=Backoff(initial=0.5, multiplier=2.0, maximum=20.0),
            clock=self.fake.clock,
            sleep=self.fake.sleep,
            rng=lambda: 0.5,
        )
        return EnosClient(
            settings,
            retry=policy,
            on_event=self.events.append,
            now_ms=self.millis,
            tokens=tokens if tokens is not None else self.tokens,
            sessions=self.sessions,
        )

    def outcomes(self) -> list[str]:
        return [e.outcome for e in self.events]


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.sessions.clear()


def add_token(mock: responses.RequestsMock, token: str = TOKEN, expire: int = 7200) -> Any:
    return mock.add(
        responses.POST,
        TOKEN_URL,
        json={
            "status": 0,
            "msg": "SUCCESS",
            "business": "apim-token-service",
            "data": {"accessToken": token, "expire": expire},
        },
    )


def ok(request_id: str = "rid-1", data: Any = True) -> dict[str, Any]:
    return {"code": 0, "msg": " OK", "requestId": request_id, "data": data}


def add_stage(mock: responses.RequestsMock, query: dict[str, str] = DELETE_QUERY, **kwargs: Any) -> Any:
    return mock.add(responses.POST, STAGE_URL, match=[matchers.query_param_matcher(query)], **kwargs)


def calls_to(mock: responses.RequestsMock, url: str) -> list[Any]:
    return [c for c in mock.calls if str(c.request.url).split("?")[0] == url]


def independent_signature(request: requests.PreparedRequest, token: str) -> str:
    """The documented rule applied to the request exactly as it went out."""
    query = parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True)
    params = "".join(name + value for name, value in sorted(query, key=lambda kv: kv[0])).encode()
    body = body_bytes(request)
    timestamp = request.headers["apim-timestamp"]
    return hashlib.sha256(token.encode() + params + body + timestamp.encode() + SECRET.encode()).hexdigest()


def body_bytes(request: requests.PreparedRequest) -> bytes:
    """The body exactly as sent (the client always sends bytes; nothing for a GET)."""
    body = request.body or b""
    assert isinstance(body, bytes)
    return body


def stage_body(request: requests.PreparedRequest) -> dict[str, Any]:
    parsed = json.loads(body_bytes(request))
    assert isinstance(parsed, dict)
    return parsed


def envelope_callback(
    answer: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[requests.PreparedRequest], tuple[int, dict[str, str], str]]:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps(answer(stage_body(request)))

    return callback
