"""The client duties of sync protocol v1, written once as data.

Each case in `cases/*.json` is a starting client state (`given`), then one or more sync
calls (`steps`). A step lists every request the client must make, in order, with the
server's answer to each (an HTTP status, headers and body, or a cut connection, or a
timeout), the outcome the sync must report, and the client state expected afterwards
(`then`: outbox, sent archive, attention list, cursor, epoch, replica, when each item is due,
whether the device is blocked). The same cases run against the Python reference client
(`tests/sync/test_contract.py`) and against the field app's own code in Chromium
(`e2e/test_pwa_contract.py`): each adapter writes `given` into its own storage, plays the
answers, and reads its storage back into the plain state that `differences` compares.

The abstract state both adapters produce:

    {"outbox": [{"mid", "attempts", "failures", "alone_failures", "alone_way", "batch_limit",
                 "due_in_s", "last_error"}, ...],    # in seq order; due_in_s None = due now
     "sent": [{"mid", "status"}], "attention": [{"mid", "status", "code"}],
     "cursor", "epoch", "replica": {"<collection>/<id>": data},
     "blocked": None | "needs_enrolment" | "update_required",
     "retry_in_s": None | seconds until the server's Retry-After ends,
     "photos_checked": {"<sha256>": bool}}
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import os

from sync.protocol import payload_hash

CASES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")
DEFAULT_NOW = 1_800_000_000.0  # 2027-01-15, a fixed clock: cases say "ago" and "in", never dates
SYNC_PATH = "/api/sync/v1"
OUTCOMES = ("ok", "busy", "not_enrolled", "needs_enrolment", "update_required", "waiting", "offline",
            "failed", "server_busy")


def case_names() -> list[str]:
    """The cases' file names without `.json`, in order."""
    return sorted(name[:-5] for name in os.listdir(CASES_DIR) if name.endswith(".json"))


def load_case(name: str) -> dict:
    """One case with its defaults filled in: every outbox item has its seq, data and hash."""
    with open(os.path.join(CASES_DIR, name + ".json"), encoding="utf-8") as handle:
        case = json.load(handle)
    given = case.setdefault("given", {})
    given.setdefault("now", DEFAULT_NOW)
    given.setdefault("epoch", "ep_1")
    given.setdefault("cursor", None)
    given.setdefault("blocked", None)
    given.setdefault("retry_in_s", None)
    given.setdefault("replica", {})
    given.setdefault("photos", [])
    for photo in given["photos"]:
        photo["sha256"] = hashlib.sha256(base64.b64decode(photo["bytes_b64"])).hexdigest()
    photo_shas = {photo["name"]: photo["sha256"] for photo in given["photos"]}
    seq = 0
    for store in ("outbox", "sent", "attention"):
        for item in given.setdefault(store, []):
            seq += 1
            item.setdefault("seq", seq)
            item.setdefault("type", "submission.create")
            item.setdefault("data", standard_visit(item["mid"], [photo_shas[name] for name in item.get("photos", [])]))
            item["payload_hash"] = payload_hash(item["data"])
            item.setdefault("created_ago_s", 600)
    for step in case["steps"]:
        step.setdefault("sync", {})
        step["sync"].setdefault("force", True)
        step["sync"].setdefault("after_s", 0)
        for exchange in step["exchanges"]:
            request = exchange["request"]
            if "photo" in request:
                request["path"] = f"{SYNC_PATH}/blobs/{photo_shas[request.pop('photo')]}"
            if "body" in exchange["answer"]:
                exchange["answer"]["body"] = _with_photos(exchange["answer"]["body"], photo_shas)
        then = step.get("then", {})
        if "photos_checked" in then:
            then["photos_checked"] = {photo_shas[name]: checked for name, checked in then["photos_checked"].items()}
    case["name"] = name
    return case


def _with_photos(value, photo_shas: dict):
    """A body with each "$photo:<name>" replaced by that photo's sha256."""
    if isinstance(value, str) and value.startswith("$photo:"):
        return photo_shas[value[len("$photo:"):]]
    if isinstance(value, list):
        return [_with_photos(v, photo_shas) for v in value]
    if isinstance(value, dict):
        return {k: _with_photos(v, photo_shas) for k, v in value.items()}
    return value


def standard_visit(mid: str, photos: list[str] = ()) -> dict:
    """A visit's data for an item whose case does not spell it out (clients never read it)."""
    answer = {"grade": "B"}
    if photos:
        answer["photos"] = list(photos)
    return {"id": "visit-" + mid, "form": {"id": "street", "version": 1}, "site_id": "site-1",
            "observed_at": "2027-01-15T09:00:00+00:00", "answers": {"litter": answer}}


def answer_body(answer: dict, request_mids: list[str], epoch: str) -> dict | None:
    """The JSON a scripted answer carries, with what every sync response has filled in.

    An answer with `body_text` instead (a page cut short, an HTML error page) has no JSON.
    """
    if "body" not in answer:
        return None
    body = copy.deepcopy(answer["body"])
    if not isinstance(body, dict):
        return body
    body.setdefault("protocol", 1)
    body.setdefault("server_epoch", epoch)
    body.setdefault("server_time", "2027-01-15T08:00:00+00:00")
    if body.get("results") == "applied":
        body["results"] = [{"mid": mid, "status": "applied", "change_seq": 100 + i} for i, mid in enumerate(request_mids)]
    return body


class ScriptedServer:
    """The server of a case: answers each request with the step's next answer and notes every mismatch.

    Both runners use it, so a case is played the same way to either client. `answer()` gives
    a plain description: `{"cut": True}`, `{"timeout": True}`, or `{"status", "headers", "json",
    "text"}` (`text` is the raw body; `json` is None when the body is not JSON).
    """

    def __init__(self, case: dict):
        self.epoch = case["given"]["epoch"]
        self.now = case["given"]["now"]
        self.exchanges: list = []
        self.problems: list[str] = []

    def start_step(self, step: dict):
        """Move the clock on and expect the step's requests."""
        self.now += step["sync"]["after_s"]
        self.exchanges = list(step["exchanges"])

    def answer(self, method: str, path: str, body, authorization: str | None) -> dict:
        """The answer to one request (`body`: the parsed JSON of a POST, or None)."""
        if not (authorization or "").startswith("Bearer "):
            self.problems.append(f"{method} {path} carried no bearer token")
        if not self.exchanges:
            self.problems.append(f"unexpected request {method} {path} {body!r}")
            return {"cut": True}
        exchange = self.exchanges.pop(0)
        problem = request_problem(exchange["request"], method, path, body)
        if problem:
            self.problems.append(problem)
        answer = exchange["answer"]
        if answer.get("cut") or answer.get("timeout"):
            return dict(answer)
        mids = [m.get("mid") for m in (body or {}).get("mutations", []) if isinstance(m, dict)]
        json_body = answer_body(answer, mids, self.epoch)
        text = answer.get("body_text") if "body_text" in answer else (
            json.dumps(json_body) if json_body is not None else "")
        return {"status": answer["status"], "headers": dict(answer.get("headers") or {}), "json": json_body,
                "text": text}

    def step_problems(self) -> list[str]:
        """What went wrong in the step just played: mismatched, unexpected and missing requests."""
        return self.problems + [f"request not made: {e['request']}" for e in self.exchanges]


def request_problem(expected: dict, method: str, path: str, body) -> str | None:
    """Why a request is not the one the case expects next, or None."""
    if method != expected.get("method", "POST") or path != expected.get("path", SYNC_PATH):
        return f"expected {expected.get('method', 'POST')} {expected.get('path', SYNC_PATH)}, got {method} {path}"
    if method == "POST" and path == SYNC_PATH:
        mids = [m.get("mid") for m in (body or {}).get("mutations", [])]
        if "mutations" in expected and mids != expected["mutations"]:
            return f"expected mutations {expected['mutations']}, got {mids}"
        if "cursor" in expected and (body or {}).get("cursor") != expected["cursor"]:
            return f"expected cursor {expected['cursor']!r}, got {(body or {}).get('cursor')!r}"
        if (body or {}).get("protocol") != 1:
            return "every request body carries protocol 1"
    return None


def _value_matches(want, got) -> bool:
    if isinstance(want, list) and len(want) == 2 and all(isinstance(x, (int, float)) for x in want) \
            and isinstance(got, (int, float)):
        return want[0] - 1e-6 <= got <= want[1] + 1e-6
    if isinstance(want, (int, float)) and not isinstance(want, bool) and isinstance(got, (int, float)):
        return math.isclose(want, got, abs_tol=1e-6)
    return want == got


def differences(expected: dict, state: dict) -> list[str]:
    """Where `state` differs from what a step's `then` expects (keys it leaves out are not checked)."""
    problems = []
    for key, want in expected.items():
        got = state.get(key)
        if key in ("outbox", "sent", "attention"):
            got = got or []
            if [item["mid"] for item in want] != [item["mid"] for item in got]:
                problems.append(f"{key}: expected {[i['mid'] for i in want]}, got {[i['mid'] for i in got]}")
                continue
            for wanted, item in zip(want, got):
                for field, value in wanted.items():
                    if not _value_matches(value, item.get(field)):
                        problems.append(f"{key}[{item['mid']}].{field}: expected {value!r}, got {item.get(field)!r}")
        elif not _value_matches(want, got):
            problems.append(f"{key}: expected {want!r}, got {got!r}")
    return problems
