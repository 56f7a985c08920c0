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

from e2e.esm import module_order, module_source, strip_module
from server.pwa import DEFAULT_SOURCE_DIR
from sync import contract

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contract_runner.js")


# Broken variants of the app's sync code, for the negative control: (what to replace, with what).
DROPS_ON_ANY_ANSWER = (
    "      await fail(t, round, batch, code, response.retryAfter, { split: unexplained, alone: blamed ? way : null });",
    "      for (const item of batch) t.objectStore(STORES.outbox).delete(item.mid);",
)


def app_code(variant=None) -> str:
    """The field app's sync code as the bundle has it (its modules, dependencies first), or a broken variant."""
    parts = []
    for path in module_order(DEFAULT_SOURCE_DIR, "js/sync.js"):
        source = module_source(DEFAULT_SOURCE_DIR, path)
        if variant and path == "js/sync.js":
            assert variant[0] in source, "the variant no longer matches the app's code"
            source = source.replace(*variant)
        parts.append(strip_module(source, path))
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
    codes = {None: app_code()}

    def run(statement: str, arg: dict, variant=None):
        code = codes.setdefault(variant, app_code(variant) if variant else None)
        return page.evaluate("async (arg) => {\n" + code + "\n" + statement + "\n}", arg)

    yield run, scripted
    context.close()


def play(phone, name: str, variant=None) -> list[str]:
    """Play one case against the app's code (or a broken variant); every way it breaks the contract."""
    run, scripted = phone
    case = contract.load_case(name)
    server = scripted["server"] = contract.ScriptedServer(case)
    run("await contractSetUp(arg.given);", {"given": case["given"]}, variant)
    problems = []
    for number, step in enumerate(case["steps"], 1):
        server.start_step(step)
        now_ms = server.now * 1000
        outcome = run("return await contractStep(arg.force, arg.now);", {"force": step["sync"]["force"], "now": now_ms}, variant)
        where = f"{name}, step {number}: "
        problems += [where + problem for problem in server.step_problems()]
        if "outcome" in step and outcome != step["outcome"]:
            problems.append(f"{where}outcome {outcome}, expected {step['outcome']}")
        state = run("return await contractState(arg.now);", {"now": now_ms}, variant)
        problems += [where + problem for problem in contract.differences(step.get("then", {}), state)]
        if problems:
            break
    return problems


@pytest.mark.parametrize("name", contract.case_names())
def test_field_app_keeps_the_contract(phone, name):
    assert play(phone, name) == []


def test_negative_control_an_app_that_drops_items_on_any_http_answer_breaks_the_contract(phone):
    broken = [name for name in contract.case_names() if play(phone, name, DROPS_ON_ANY_ANSWER)]
    assert {"10_too_many_requests", "11_unavailable", "12_server_error_splits_the_batch"} <= set(broken)
