"""Schema-driven fuzzing: schemathesis drives every served operation and never gets a 500.

Event batches are signed with a real enrolled key (and their device ids set to it), so generated
data gets past authentication into validation and storage instead of stopping at the 401.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from starlette.routing import Route

from guard.collector.app import Settings, create_app
from guard.delivery.protocol import signed_headers
from tests.support.servers import CollectorProcess, run_collector

from ._helpers import Terminal

MAX_EXAMPLES = {"/api/v1/events": 60, "/api/v1/enroll": 40}


class SignedBatches(requests.auth.AuthBase):
    """Signs POST /api/v1/events as an enrolled device would, whatever body was generated."""

    def __init__(self, device_id: str, key: bytes) -> None:
        self.device_id = device_id
        self.key = key
        self.signed = 0

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if r.method == "GET" and (r.path_url or "").startswith("/api/v1/policy"):
            # a signed GET: over the path, so the fuzzed headers reach the policy code
            r.headers.update(signed_headers(self.device_id, self.key, b"/api/v1/policy",
                                            int(time.time())))
            return r
        if r.method != "POST" or not (r.path_url or "").startswith("/api/v1/events"):
            return r
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):
            return r  # a streamed body: left unsigned, the collector answers 401
        if "gzip" not in r.headers.get("Content-Encoding", ""):
            body = self._own(body)
        r.body = body
        r.headers["Content-Length"] = str(len(body))
        r.headers.update(signed_headers(self.device_id, self.key, body, int(time.time())))
        self.signed += 1
        return r

    def _own(self, body: bytes) -> bytes:
        try:
            data = json.loads(body)
        except ValueError:
            return body
        if isinstance(data, dict) and isinstance(data.get("events"), list):
            for ev in data["events"]:
                if isinstance(ev, dict) and isinstance(ev.get("device"), dict):
                    ev["device"]["id"] = self.device_id
            return json.dumps(data).encode()
        return body


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def fuzz_target(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'c.db'}"
    else:
        from tests.support.servers import create_database

        url = create_database(request.getfixturevalue("pg_server"), "fuzz")
    with run_collector(url) as proc:
        yield proc


@pytest.fixture(scope="module")
def signer(fuzz_target: CollectorProcess) -> SignedBatches:
    t = Terminal(fuzz_target, fuzz_target.enroll_token, "dev-fuzz")
    return SignedBatches(t.device.id, t.key)


# every operation but /openapi.json itself, which schemathesis leaves out
OPERATIONS = [
    ("GET", "/api/v1/health"), ("POST", "/api/v1/enroll"), ("POST", "/api/v1/events"),
    ("GET", "/api/v1/events"), ("GET", "/api/v1/devices"), ("GET", "/api/v1/policy"),
    ("GET", "/"), ("POST", "/login"), ("GET", "/events"), ("GET", "/events.csv"),
    ("GET", "/events/{seq}"), ("POST", "/api/v1/approval-codes"),
    ("GET", "/api/v1/approval-codes"), ("GET", "/codes"),
]
FUZZ_CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
               checks.content_type_conformance, checks.response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(fuzz_target: CollectorProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_target}/openapi.json")


def test_spec_describes_exactly_the_served_routes(fuzz_target: CollectorProcess,
                                                 tmp_path: Path) -> None:
    served = httpx.get(f"{fuzz_target}/openapi.json").json()
    described = {(m.upper(), p) for p, ops in served["paths"].items() for m in ops}
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'c.db'}", enroll_token="e",
                              admin_token="a", key_file=tmp_path / "c.key"))
    routes = {(m, r.path) for r in app.routes if isinstance(r, Route)
              for m in (r.methods or ()) if m != "HEAD"}
    assert described == routes
    assert set(OPERATIONS) | {("GET", "/openapi.json")} == routes


# negative data only where the schema has something to violate
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    ("POST", "/api/v1/enroll", GenerationMode.NEGATIVE),
    ("POST", "/api/v1/events", GenerationMode.NEGATIVE),
    ("GET", "/api/v1/events", GenerationMode.NEGATIVE),
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_server_errors(api_schema: schemathesis.BaseSchema, fuzz_target: CollectorProcess,
                          signer: SignedBatches, method: str, path: str,
                          mode: GenerationMode) -> None:
    operation = api_schema[path][method]
    session = requests.Session()
    session.auth = signer
    headers = {}
    if ((method == "GET" and path in ("/api/v1/events", "/api/v1/devices"))
            or path == "/api/v1/approval-codes"):
        headers["Authorization"] = f"Bearer {fuzz_target.admin_token}"
    statuses: list[int] = []

    @settings(max_examples=MAX_EXAMPLES.get(path, 25), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=fuzz_target, session=session,
                                          headers=headers, checks=FUZZ_CHECKS)
        statuses.append(response.status_code)

    run()
    assert statuses, "schemathesis generated no request"
    assert all(s < 500 for s in statuses)
    print(method, path, mode.value, sorted(Counter(statuses).items()))
