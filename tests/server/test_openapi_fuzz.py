"""schemathesis generates requests from /api/openapi.json, in-process against the WSGI app: no 5xx,
and no answer the document does not describe.

Every operation of the document is exercised with a valid device token and without one, with
requests that fit the document and requests that break it. Each answer is checked against the
document: never a server error, a status the operation lists, its content type, a body that
matches the schema for that status, and the headers it declares. Each operation gets
KERBSIDE_SCHEMATHESIS_CASES cases of each kind for each caller (more than 2,000 in all).

schemathesis's own pytest plugin (`schema.parametrize()` on a fixture) does not run under
pytest 9.2 (it sets a node attribute pytest renamed), so the cases come from each
operation's Hypothesis strategy (`APIOperation.as_strategy`).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server import operations
from server.extensions import db
from tests.conftest import ServerErrorWatch

CASES = int(os.environ.get("KERBSIDE_SCHEMATHESIS_CASES", "140"))
# What the document promises, checked on every answer.
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
               response_headers_conformance]
SIGN_OUT = "POST /api/sync/v1/device/sign-out"
OPERATIONS = {"POST /api/sync/v1", "POST /api/sync/v1/enrol", "PUT /api/sync/v1/blobs/{sha256}",
              "HEAD /api/sync/v1/blobs/{sha256}", SIGN_OUT}


@pytest.fixture
def api(app, make_area, make_site, publish_forms):
    """The app's own OpenAPI document, loaded from the app, and an area a device can push to."""
    app.config["SYNC_RATE_PER_MINUTE"] = 1_000_000  # schemathesis sends far more than a phone
    area = make_area()
    make_site(area)
    publish_forms()
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@pytest.fixture
def device_token(client, make_area):
    """A street rep's device, enrolled through the API."""
    code = operations.issue_invite(make_area(), "street_rep")
    db.session.commit()
    response = client.post("/api/sync/v1/enrol", json={"protocol": 1, "code": code, "device_name": "Fuzzed phone"})
    assert response.status_code == 201
    return response.get_json()["token"]


def _fuzz(app, api, headers: dict, cases: int = CASES, phases=tuple(Phase), checks=CONFORMANCE) -> dict[str, int]:
    """Every operation's generated cases, called with `headers`; how many ran per operation and mode."""
    ran: dict[str, int] = {}
    # Schemathesis calls the app in-process, where nothing decodes a compressed answer, and it
    # asks for gzip and br like any HTTP library: read answers as sent (test_compression.py
    # checks the compressed ones decode to the same JSON).
    headers = {"Accept-Encoding": "identity", **headers}
    found = [result.ok() for result in api.get_all_operations()]
    assert {operation.label for operation in found} == OPERATIONS
    # Signing out ends the token: fuzzed last, so the other operations are fuzzed signed in.
    found.sort(key=lambda operation: operation.label == SIGN_OUT)
    with ServerErrorWatch(app) as watch:
        for operation in found:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                key = f"{operation.label} {mode.value}"

                @settings(max_examples=cases, deadline=None, database=None, phases=phases,
                          suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(mode))
                def call(case):
                    case.call_and_validate(headers=headers, checks=checks)
                    ran[key] = ran.get(key, 0) + 1

                call()
    assert watch.seen == [], watch.seen
    return ran


def test_every_generated_request_with_a_device_token_gets_an_answer_the_document_describes(app, api, device_token):
    ran = _fuzz(app, api, {"Authorization": f"Bearer {device_token}"})
    assert len(ran) == 2 * len(OPERATIONS), ran
    assert sum(ran.values()) >= 1000, ran


def test_every_generated_request_without_a_token_gets_an_answer_the_document_describes(app, api):
    ran = _fuzz(app, api, {})
    assert len(ran) == 2 * len(OPERATIONS), ran
    assert sum(ran.values()) >= 1000, ran


def test_the_fuzzing_fails_when_a_request_meets_a_server_error(app, api, device_token, monkeypatch):
    """Negative control: a pull that fails (a bug planted for this test) is found within a few cases."""
    from server import pull

    def broken(**_kwargs):
        raise RuntimeError("a planted bug")

    monkeypatch.setattr(pull, "pull", broken)
    with pytest.raises(Exception) as found:
        _fuzz(app, api, {"Authorization": f"Bearer {device_token}"}, cases=25, phases=(Phase.generate,))
    # schemathesis hears the app's got_request_exception and raises the app's own error.
    assert "a planted bug" in str(found.value) or "Server error" in str(found.value), found.value


def test_the_fuzzing_fails_when_an_answer_is_not_in_the_document(app, api, device_token, monkeypatch):
    """Negative control: a status the document does not list (a 409 planted for this test) is found."""
    from server.api import sync as sync_api
    from server.errors import ApiError

    def conflicted(sha256):
        raise ApiError(409, "planted", "A status the document does not list.")

    monkeypatch.setattr(sync_api, "_blob_exists", conflicted)
    # schemathesis reports what it found as a group of failures (a BaseExceptionGroup).
    with pytest.raises(FailureGroup) as found:
        _fuzz(app, api, {"Authorization": f"Bearer {device_token}"}, cases=25, phases=(Phase.generate,))
    assert "409" in str(found.value), found.value


def test_a_method_the_document_does_not_list_is_405_with_allow(app, client):
    """Every API path answers another method with 405 and the methods it does take."""
    document = client.get("/api/openapi.json").get_json()
    for path, methods in document["paths"].items():
        listed = {method.upper() for method in methods if method != "parameters"}
        address = path.replace("{sha256}", "0" * 64)
        response = client.open(address, method="DELETE")
        assert response.status_code == 405, path
        assert response.get_json()["code"] == "method_not_allowed"
        assert listed <= set(response.headers["Allow"].split(", ")), (path, response.headers["Allow"])
    page = client.delete("/login")
    assert page.status_code == 405 and "POST" in page.headers["Allow"]
