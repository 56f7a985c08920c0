"""Every case of the client contract (sync/contract/cases) against the Python reference client.

The adapter writes a case's starting state straight into the client's SQLite file, plays
the case's answers through a scripted transport, and reads the file back into the plain
state the contract compares. e2e/test_pwa_contract.py runs the same cases in the field app.
"""

from __future__ import annotations

import base64
import json
import random

import pytest

from sync import contract
from sync.client import Client
from sync.protocol import PROTOCOL_VERSION
from sync.transport import Response, TransportError


class Script:
    """A transport that answers each request with the case's next answer, and notes any mismatch."""

    def __init__(self, case: dict):
        self.case = case
        self.epoch = case["given"]["epoch"]
        self.now = case["given"]["now"]
        self.exchanges: list = []
        self.problems: list[str] = []

    def expect(self, exchanges: list):
        self.exchanges = list(exchanges)

    def __call__(self, method, path, *, json=None, body=None, headers=None):
        if not (headers or {}).get("Authorization", "").startswith("Bearer "):
            self.problems.append(f"{method} {path} carried no bearer token")
        if not self.exchanges:
            self.problems.append(f"unexpected request {method} {path} {json!r}")
            raise TransportError("unexpected request")
        exchange = self.exchanges.pop(0)
        problem = contract.request_problem(exchange["request"], method, path, json)
        if problem:
            self.problems.append(problem)
        answer = exchange["answer"]
        if answer.get("cut"):
            raise TransportError("connection reset")
        if answer.get("timeout"):
            raise TransportError("timed out", timed_out=True)
        mids = [m["mid"] for m in (json or {}).get("mutations", [])]
        return Response(answer["status"], dict(answer.get("headers") or {}),
                        contract.answer_body(answer, mids, self.epoch))


def set_up(path: str, case: dict, script: Script) -> Client:
    """A reference client whose file holds the case's `given` state."""
    given = case["given"]
    client = Client(path, script, clock=lambda: script.now, rng=random.Random(1))
    now = given["now"]
    with client._transaction() as db:
        meta = {"token": "kbt_contract", "device_id": "device-1", "person_id": "person-1",
                "server_epoch": given["epoch"], "cursor": given["cursor"], "next_seq": 1000}
        if given["blocked"] == "needs_enrolment":
            meta["needs_enrolment"] = "token_revoked"
        elif given["blocked"] == "update_required":
            meta["update_required"] = PROTOCOL_VERSION
        if given["retry_in_s"] is not None:
            meta["server_retry_at"] = now + given["retry_in_s"]
        for key, value in meta.items():
            client._set(db, key, value)
        for item in given["outbox"]:
            due = item.get("due_in_s")
            db.execute(
                "INSERT INTO outbox (mid, seq, type, payload_hash, data, created_at, attempts, next_attempt_at, "
                "failures, alone_failures, batch_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item["mid"], item["seq"], item["type"], item["payload_hash"], json.dumps(item["data"]),
                 now - item["created_ago_s"], item.get("attempts", 0), None if due is None else now + due,
                 item.get("failures", 0), item.get("alone_failures", 0), item.get("batch_limit")))
        for item in given["sent"]:
            db.execute(
                "INSERT INTO sent (mid, seq, type, payload_hash, data, created_at, sent_at, result) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (item["mid"], item["seq"], item["type"], item["payload_hash"], json.dumps(item["data"]),
                 now - item["created_ago_s"], now - item.get("sent_ago_s", 60),
                 json.dumps({"mid": item["mid"], "status": item.get("status", "applied")})))
        for item in given["attention"]:
            result = {"mid": item["mid"], "status": item.get("status", "rejected"), "code": item.get("code")}
            db.execute(
                "INSERT INTO attention (mid, seq, type, payload_hash, data, created_at, noted_at, status, code, "
                "message, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item["mid"], item["seq"], item["type"], item["payload_hash"], json.dumps(item["data"]),
                 now - item["created_ago_s"], now - 60, result["status"], result["code"], "", json.dumps(result)))
        for photo in given["photos"]:
            db.execute("INSERT INTO blobs (sha256, data, created_at, checked_epoch) VALUES (?, ?, ?, ?)",
                       (photo["sha256"], base64.b64decode(photo["bytes_b64"]), now - 600,
                        given["epoch"] if photo.get("checked") else None))
        for key, data in given["replica"].items():
            collection, record_id = key.split("/", 1)
            db.execute("INSERT INTO replica (collection, id, seq, data) VALUES (?, ?, ?, ?)",
                       (collection, record_id, 1, json.dumps(data)))
    return client


def state_of(client: Client, now: float) -> dict:
    """The client's file read back as the contract's plain state."""
    rows = client._rows
    outbox = [{"mid": r["mid"], "attempts": r["attempts"], "failures": r["failures"],
               "alone_failures": r["alone_failures"], "batch_limit": r["batch_limit"], "last_error": r["last_error"],
               "due_in_s": None if r["next_attempt_at"] is None or r["next_attempt_at"] <= now
               else r["next_attempt_at"] - now}
              for r in rows("SELECT * FROM outbox ORDER BY seq")]
    sent = [{"mid": r["mid"], "status": json.loads(r["result"])["status"]} for r in rows("SELECT * FROM sent ORDER BY seq")]
    attention = [{"mid": r["mid"], "status": r["status"], "code": r["code"]}
                 for r in rows("SELECT * FROM attention ORDER BY seq")]
    replica = {f"{r['collection']}/{r['id']}": json.loads(r["data"]) for r in rows("SELECT * FROM replica")}
    retry_at = float(client._get("server_retry_at") or 0)
    blocked = "needs_enrolment" if client.needs_enrolment else "update_required" if client.update_required else None
    return {"outbox": outbox, "sent": sent, "attention": attention, "cursor": client.cursor,
            "epoch": client.server_epoch, "replica": replica, "blocked": blocked,
            "retry_in_s": retry_at - now if retry_at > now else None,
            "photos_checked": {r["sha256"]: r["checked_epoch"] == client.server_epoch
                               for r in rows("SELECT sha256, checked_epoch FROM blobs")}}


@pytest.mark.parametrize("name", contract.case_names())
def test_reference_client_keeps_the_contract(tmp_path, name):
    case = contract.load_case(name)
    script = Script(case)
    client = set_up(str(tmp_path / "phone.sqlite"), case, script)
    try:
        for number, step in enumerate(case["steps"], 1):
            script.now += step["sync"]["after_s"]
            script.expect(step["exchanges"])
            report = client.sync_once(force=step["sync"]["force"])
            where = f"{name}, step {number}"
            assert script.problems == [], f"{where}: {script.problems}"
            assert script.exchanges == [], f"{where}: requests not made: {[e['request'] for e in script.exchanges]}"
            if "outcome" in step:
                assert report.status == step["outcome"], f"{where}: outcome {report.status}"
            assert contract.differences(step.get("then", {}), state_of(client, script.now)) == [], where
    finally:
        client.close()
