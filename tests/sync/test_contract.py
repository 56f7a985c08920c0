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


class ScriptTransport:
    """The reference client's transport over the case's scripted server."""

    def __init__(self, server: contract.ScriptedServer):
        self.server = server

    def __call__(self, method, path, *, json=None, body=None, headers=None):
        answer = self.server.answer(method, path, json, (headers or {}).get("Authorization"))
        if answer.get("cut"):
            raise TransportError("connection reset")
        if answer.get("timeout"):
            raise TransportError("timed out", timed_out=True)
        return Response(answer["status"], answer["headers"], answer["json"])


def set_up(path: str, case: dict, server: contract.ScriptedServer, client_class=Client) -> Client:
    """A reference client whose file holds the case's `given` state."""
    given = case["given"]
    client = client_class(path, ScriptTransport(server), clock=lambda: server.now, rng=random.Random(1))
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
                "failures, alone_failures, alone_way, batch_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item["mid"], item["seq"], item["type"], item["payload_hash"], json.dumps(item["data"]),
                 now - item["created_ago_s"], item.get("attempts", 0), None if due is None else now + due,
                 item.get("failures", 0), item.get("alone_failures", 0), item.get("alone_way"), item.get("batch_limit")))
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
               "alone_failures": r["alone_failures"], "alone_way": r["alone_way"], "batch_limit": r["batch_limit"],
               "last_error": r["last_error"],
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


def play(tmp_path, name: str, client_class=Client) -> list[str]:
    """Play one case against a client of `client_class`; every way it breaks the contract."""
    case = contract.load_case(name)
    server = contract.ScriptedServer(case)
    client = set_up(str(tmp_path / f"{name}.sqlite"), case, server, client_class)
    problems = []
    try:
        for number, step in enumerate(case["steps"], 1):
            server.start_step(step)
            report = client.sync_once(force=step["sync"]["force"])
            where = f"{name}, step {number}: "
            problems += [where + problem for problem in server.step_problems()]
            if "outcome" in step and report.status != step["outcome"]:
                problems.append(f"{where}outcome {report.status}, expected {step['outcome']}")
            problems += [where + problem for problem in contract.differences(step.get("then", {}), state_of(client, server.now))]
            if problems:
                break
    finally:
        client.close()
    return problems


@pytest.mark.parametrize("name", contract.case_names())
def test_reference_client_keeps_the_contract(tmp_path, name):
    assert play(tmp_path, name) == []


class DropsOnAnyAnswer(Client):
    """Broken on purpose (Workbox's old bug): an item leaves the outbox on any HTTP answer, 5xx included."""

    def _stop_on_failure(self, response, batch, now, report, **kwargs):
        with self._transaction() as db:
            for item in batch:
                db.execute("DELETE FROM outbox WHERE mid = ?", (item.mid,))
        return super()._stop_on_failure(response, batch, now, report, **kwargs)


def test_negative_control_a_client_that_drops_items_on_any_http_answer_breaks_the_contract(tmp_path):
    broken = [name for name in contract.case_names() if play(tmp_path, name, DropsOnAnyAnswer)]
    assert {"10_too_many_requests", "11_unavailable", "12_server_error_splits_the_batch"} <= set(broken)
