"""Every case of the client contract (sync/contract/cases) against the field app's own code in Chromium.

The app's modules that do the syncing (db.js, the generated protocol.js, sync.js) run in a
real page on the server's origin, with its IndexedDB and Web Locks; `fetch` and the clock
are replaced for the duration of each sync, and every request is answered by the same
scripted server (`sync.contract.ScriptedServer`, in Python, through a Playwright binding)
that tests/sync/test_contract.py uses for the reference client.
"""

from __future__ import annotations

import json
import os

import pytest

from server.pwa import DEFAULT_SOURCE_DIR, module_order, module_source, strip_module
from sync import contract

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contract_runner.js")


def app_code() -> str:
    """The field app's sync code as the bundle has it: its modules, dependencies first."""
    parts = [strip_module(module_source(DEFAULT_SOURCE_DIR, path), path) for path in module_order(DEFAULT_SOURCE_DIR, "js/sync.js")]
    with open(RUNNER, encoding="utf-8") as handle:
        parts.append(handle.read())
    return "\n".join(parts)


@pytest.fixture(scope="module")
def phone(live_server, browser):
    """A page on the server's origin that can play contract steps, and the slot for each case's server."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/")
    scripted = {"server": None}

    def answer(method, path, body, authorization):
        return scripted["server"].answer(method, path, json.loads(body) if body else None, authorization)

    page.expose_function("contractAnswer", answer)
    code = app_code()

    def run(statement: str, arg: dict):
        return page.evaluate("async (arg) => {\n" + code + "\n" + statement + "\n}", arg)

    yield run, scripted
    context.close()


@pytest.mark.parametrize("name", contract.case_names())
def test_field_app_keeps_the_contract(phone, name):
    run, scripted = phone
    case = contract.load_case(name)
    server = scripted["server"] = contract.ScriptedServer(case)
    run("await contractSetUp(arg.given);", {"given": case["given"]})
    for number, step in enumerate(case["steps"], 1):
        server.start_step(step)
        now_ms = server.now * 1000
        outcome = run("return await contractStep(arg.force, arg.now);", {"force": step["sync"]["force"], "now": now_ms})
        where = f"{name}, step {number}"
        assert server.step_problems() == [], where
        if "outcome" in step:
            assert outcome == step["outcome"], f"{where}: outcome {outcome}"
        state = run("return await contractState(arg.now);", {"now": now_ms})
        assert contract.differences(step.get("then", {}), state) == [], where
