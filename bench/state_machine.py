"""Long run of the sync state machine (tests/sync/sync_machine.py): at least 1,000 examples.

Run it as `python bench/state_machine.py` (SQLite; `--database-url` for PostgreSQL). It runs
the same Hypothesis `RuleBasedStateMachine` as the test suite's short profile, with more
examples and longer runs, and then each negative control (a deliberately broken variant
from tests/sync/test_state_machine.py) under Hypothesis's own search, to show which check
finds it and after how many examples. It prints the figures and writes the "state-machine"
section of docs/benchmarks.md. It exits with 1 if the real code fails a check, or if a broken
variant is not caught.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from bench.report import write_section  # noqa: E402
from server import create_app, operations  # noqa: E402
from server import push as push_module  # noqa: E402
from server.cli import drop_all_tables  # noqa: E402
from server.extensions import db  # noqa: E402
from tests.sync import sync_machine  # noqa: E402
from tests.sync import test_state_machine as controls  # noqa: E402


def make_app(url: str, folder: str):
    """The app on a fresh schema, rate limits out of the way."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-only", "TESTING": True,
                      "BLOB_DIR": os.path.join(folder, "blobs"), "SYNC_RATE_PER_MINUTE": 10**6})
    context = app.app_context()
    context.push()
    if db.engine.dialect.name == "postgresql":
        drop_all_tables()
    db.create_all()
    operations.init_state()
    db.session.commit()
    return app, context


def run_machine(factory, examples: int, steps: int, shrink: bool = True) -> tuple[str | None, float]:
    """Run the machine; the name of the check that failed (or the error), and the seconds taken."""
    started = time.monotonic()
    # A broken variant is run to see how soon it is caught, not to shrink the example.
    phases = tuple(Phase) if shrink else (Phase.generate,)
    try:
        run_state_machine_as_test(factory, settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None, database=None, phases=phases,
            suppress_health_check=list(HealthCheck), print_blob=False))
    except sync_machine.InvariantViolation as caught:
        return caught.check, time.monotonic() - started
    except BaseExceptionGroup as group:  # several distinct failures: name the checks
        checks = sorted({e.check for e in group.exceptions if isinstance(e, sync_machine.InvariantViolation)})
        return ", ".join(checks) or type(group).__name__, time.monotonic() - started
    except Exception as exc:  # anything else is a failure too, named by its type
        traceback.print_exc()
        return type(exc).__name__, time.monotonic() - started
    return None, time.monotonic() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=30, help="most rules per example")
    parser.add_argument("--control-examples", type=int, default=200, help="most examples to find each broken variant")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--no-write", action="store_true", help="print, but leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="kerbside-machine-bench-")
    url = args.database_url or "sqlite:///" + os.path.join(folder, "machine.sqlite")
    app, context = make_app(url, folder)
    dialect = db.engine.dialect.name
    print(f"State machine on {dialect}: {args.examples} examples of up to {args.steps} steps ...", flush=True)
    sync_machine.STATS.clear()
    failure, seconds = run_machine(lambda: sync_machine.SyncMachine(app), args.examples, args.steps)
    stats = Counter(sync_machine.STATS)
    print(f"  {stats['examples']:,} examples, {stats['steps']:,} steps in {seconds:.0f} s; failure: {failure}", flush=True)

    # The broken variants, under the same search: how soon is each one caught, and by what?
    results = []
    variants = [
        ("(b) client drops items on any HTTP answer (500/503 included)", controls.DroppingMachine, None),
        ("(c) client saves the cursor before its page", controls.CursorFirstMachine, None),
        ("(a) server claims mids blindly, no unique key on mid", sync_machine.SyncMachine, "blind"),
    ]
    for label, machine_class, server_variant in variants:
        sync_machine.STATS.clear()
        real_claim = push_module._claim
        try:
            if server_variant == "blind":
                push_module._claim = controls.claim_blindly
                with controls.mutation_log_without_unique_key():
                    caught, spent = run_machine(lambda: machine_class(app), args.control_examples, args.steps, False)
                    db.session.rollback()
            else:
                caught, spent = run_machine(lambda: machine_class(app), args.control_examples, args.steps, False)
        finally:
            push_module._claim = real_claim
        found_after = sync_machine.STATS["examples"]
        print(f"  {label}: caught by {caught} (at example {found_after}, {spent:.0f} s)", flush=True)
        results.append((label, caught, found_after, spent))
        if server_variant == "blind":
            # The table was made again without its key: give the next run a proper schema.
            if dialect == "postgresql":
                drop_all_tables()
            else:
                db.drop_all()
            db.create_all()
            operations.init_state()
            db.session.commit()

    rules = sorted((name[5:], count) for name, count in stats.items() if name.startswith("rule:"))
    rule_table = "\n".join(["| Rule | Times run |", "|---|---|", *(f"| `{name}` | {count:,} |" for name, count in rules)])
    control_table = "\n".join([
        "| Broken variant | Caught by | Examples run until caught | Seconds |", "|---|---|---|---|",
        *(f"| {label} | `{caught or 'NOT CAUGHT'}` | {found:,} | {spent:.0f} |" for label, caught, found, spent in results),
        "| (a) server checks then inserts, no unique key on mid (two concurrent pushes) | `one_row_per_mid` "
        "| focused test, PostgreSQL only | — |",
    ])
    markdown = f"""## Sync state machine (`bench/state_machine.py`)

A Hypothesis `RuleBasedStateMachine` (tests/sync/sync_machine.py) over two reference clients and
the real app in one process, on {dialect}: {len(rules)} rules (visits with and without photos,
hostile and poison items, site edits, syncs and pulls with small page sizes, going offline,
answers lost after the commit, 503s, requests held and delivered late in a shuffled order,
replayed requests, device clock jumps, power cuts while a page is stored, a backup and a
restore with a new epoch, form versions published and retired, sites proposed in the field and a
coordinator approving, renaming, merging or rejecting them and accepting or refusing street reps'
held edits). After every step: every item
is in an outbox, attention list or sent archive, or on the server; nothing acknowledged is
missing; one log row per mid, one submission and one change row per visit, site versions equal
to their applied edits; nothing hostile stored. At the end of each example the faults heal, the
devices sync until quiet, and the server must hold exactly the visits created and accepted,
and each replica must equal a fresh pull of its device's scope and hold exactly its area's
approved sites and its own person's proposals still waiting
({stats['sites_approve']:,} approved, {stats['sites_rename']:,} renamed, {stats['sites_merge']:,} merged,
{stats['sites_reject']:,} rejected).

**{stats['examples']:,} examples, {stats['steps']:,} steps, {len(rules)} rules exercised, failures found:
{0 if failure is None else 1}{'' if failure is None else f' ({failure})'}**; {stats['healed_examples']:,} examples healed and passed the
final checks; {stats['power_cuts']:,} power cuts while storing a page; {stats['could_not_send_but_stored']:,}
good visits set aside as could_not_send although the server had stored them (their answers lost
three times while alone), {stats['good_set_aside']:,} set aside and not stored, {stats['edits_set_aside']:,}
site edits set aside likewise; {stats['refusals_forgotten_by_a_restore']:,} refusals the server forgot in a
restore (the device keeps them in attention and does not send them again). {seconds / 60:.1f} min
(up to {args.steps} steps an example).

{rule_table}

Negative controls (each a broken variant defined in tests/sync/test_state_machine.py, never in
the product), searched for by the same machine:

{control_table}
"""
    print()
    print(markdown)
    context.pop()
    if not args.no_write:
        write_section("state-machine", markdown)
    missed = [label for label, caught, _f, _s in results if caught is None]
    return 1 if failure is not None or missed else 0


if __name__ == "__main__":
    sys.exit(main())
