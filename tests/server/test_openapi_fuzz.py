"""schemathesis generates requests from /api/openapi.json, in-process against the WSGI app: no 5xx, ever.

Every operation of the document is exercised with a valid device token and without one, with
requests that fit the document and requests that break it. Only the "not a server error"
check is made: the document is known to be wrong in places (another issue puts it right),
and a 4xx that it does not list is that issue's business. Each operation gets
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
from schemathesis.checks import not_a_server_error

from server import operations
from server.extensions import db
from tests.conftest import ServerErrorWatch

CASES = int(os.environ.get("KERBSIDE_SCHEMATHESIS_CASES", "140"))
OPERATIONS = {"POST /api/sync/v1", "POST /api/sync/v1/enrol", "PUT /api/sync/v1/blobs/{sha256}",
              "HEAD /api/sync/v1/blobs/{sha256}"}


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


def _fuzz(app, api, headers: dict, cases: int = CASES, phases=tuple(Phase)) -> dict[str, int]:
    """Every operation's generated cases, called with `headers`; how many ran per operation and mode."""
    ran: dict[str, int] = {}
    found = [result.ok() for result in api.get_all_operations()]
    assert {operation.label for operation in found} == OPERATIONS
    with ServerErrorWatch(app) as watch:
        for operation in found:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                key = f"{operation.label} {mode.value}"

                @settings(max_examples=cases, deadline=None, database=None, phases=phases,
                          suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(mode))
                def call(case):
                    case.call_and_validate(headers=headers, checks=[not_a_server_error])
                    ran[key] = ran.get(key, 0) + 1

                call()
    assert watch.seen == [], watch.seen
    return ran


def test_no_generated_request_with_a_device_token_is_a_server_error(app, api, device_token):
    ran = _fuzz(app, api, {"Authorization": f"Bearer {device_token}"})
    assert len(ran) == 2 * len(OPERATIONS), ran
    assert sum(ran.values()) >= 1000, ran


def test_no_generated_request_without_a_token_is_a_server_error(app, api):
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
