// The sync client: the protocol's client duties, step for step as the Python reference client
// (sync/client.py, docs/client.md) does them, and held to the same cases (sync/contract/cases).
// Runs in the page and in the service worker (Background Sync); a Web Lock keeps it to one at a time.

import { STORES, transact, requestDone, getOne, getAllByIndex, getMeta, setMeta, deleteMeta, replicaKey } from "./db.js";
import { noteOfferedForms } from "./notices.js";
import {
  PROTOCOL_VERSION, MAX_MUTATIONS_PER_REQUEST, MAX_REQUEST_BYTES, ENVELOPE_BYTES, DEFAULT_PULL_LIMIT,
  SENT_ARCHIVE_DAYS, BACKOFF_FIRST_S, BACKOFF_MAX_S, MAX_RETRY_AFTER_S, MAX_WAIT_S, ALONE_FAILURES_TO_ATTENTION, ALONE_CUTS_TO_ATTENTION,
  NO_ANSWER, COULD_NOT_SEND, PHOTO_REFUSED_STATUSES,
} from "./protocol.js";

export const SYNC_BASE = "/api/sync/v1";
export const SYNC_TAG = "kerbside-outbox";
const DAY_MS = 24 * 3600 * 1000;
const SENT_ARCHIVE_MS = SENT_ARCHIVE_DAYS * DAY_MS;
const REQUEST_TIMEOUT_MS = 30000;
// Every store one answer may touch: its results, the epoch, the page and the cursor are one transaction.
const ANSWER_STORES = [STORES.outbox, STORES.sent, STORES.attention, STORES.blobs, STORES.replica, STORES.meta];

const syncListeners = [];
let syncRunning = false;

// Full jitter, 1 s up to 5 min, never below 1 s (sync.protocol.backoff_delay).
export function backoffDelayMs(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** Math.max(0, attempt - 1));
  return Math.max(BACKOFF_FIRST_S, random() * ceiling) * 1000;
}

// A failure the server gave no reason for: a 5xx other than 503, or (null) no answer at all.
export function isUnexplainedFailure(status) {
  return status === null || (status >= 500 && status !== 503);
}

export function onSyncChange(listener) {
  syncListeners.push(listener);
}

function announce(outcome) {
  for (const listener of syncListeners) listener(outcome);
}

// Ends a sync early; the report already says why. `blamed`: a lone item failed while the
// server answers others, so the sync goes on without it.
class SyncStop extends Error {
  constructor(blamed = false) {
    super("sync stopped");
    this.blamed = blamed;
  }
}

class NoAnswer extends Error {
  constructor(timedOut) {
    super(timedOut ? "timeout" : "network_error");
    this.timedOut = timedOut;
  }
}

function retryAfterSeconds(value) {
  if (value === null || value === undefined || value === "") return null;
  const seconds = Number(value);
  // An HTTP date: our own backoff will do. Beyond an hour, an hour.
  return Number.isFinite(seconds) ? Math.min(MAX_RETRY_AFTER_S, Math.max(0, seconds)) : null;
}

// Whether a wait set for `until` is over at `now`: a wait longer than any the app sets means
// the phone's clock went back, and it is over too (not as long as the jump).
function waitOver(until, now, longest) {
  return !until || until <= now || until - now > longest * 1000;
}

// One HTTP exchange. Every HTTP status is an answer; only a missing answer throws (NoAnswer).
async function send(method, path, token, body, type) {
  // The server's messages in the app's language (Settings' choice, kept by messages.js in meta).
  const language = await getMeta("language").catch(() => null);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, REQUEST_TIMEOUT_MS);
  try {
    const headers = { Authorization: `Bearer ${token}` };
    if (type) headers["Content-Type"] = type;
    if (typeof language === "string" && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(language)) headers["Accept-Language"] = language;
    const response = await fetch(path, { method, headers, body, signal: controller.signal, cache: "no-store" });
    // An answer cut part-way fails here too, and is no answer.
    const text = method === "HEAD" ? "" : await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (ignored) {
      json = null;
    }
    return { status: response.status, json, retryAfter: retryAfterSeconds(response.headers.get("Retry-After")) };
  } catch (error) {
    throw new NoAnswer(timedOut || (error && error.name === "AbortError"));
  } finally {
    clearTimeout(timer);
  }
}

// Every photo hash a mutation's data refers to, in order ("photos" lists and "photo" fields).
export function photoHashes(data) {
  const found = [];
  const walk = (value, key) => {
    if (Array.isArray(value)) {
      for (const inner of value) walk(inner, key);
    } else if (value && typeof value === "object") {
      for (const name of Object.keys(value).sort()) walk(value[name], name);
    } else if ((key === "photos" || key === "photo") && typeof value === "string" && /^[0-9a-f]{64}$/.test(value)) {
      if (!found.includes(value)) found.push(value);
    }
  };
  walk(data, null);
  return found;
}

function wireSize(item) {
  return new TextEncoder().encode(JSON.stringify(item.mutation)).length + 1;
}

// The longest prefix of `items` within both request limits (at least one item).
function firstBatch(items, maxItems) {
  const batch = [];
  let used = 0;
  for (const item of items) {
    const size = wireSize(item);
    if (batch.length && (batch.length >= maxItems || used + size > MAX_REQUEST_BYTES - ENVELOPE_BYTES)) break;
    batch.push(item);
    used += size;
  }
  return batch;
}

function toAttention(t, item, result, now) {
  t.objectStore(STORES.outbox).delete(item.mid);
  t.objectStore(STORES.attention).put({ ...item, result, settled_at: now });
}

// Back the items off; `split` counts a failure (halving their next batch), `alone` (the way it
// failed) an alone failure, which sets an item aside once it has failed so often enough times in a row.
async function fail(t, round, items, code, retryAfter, { split = false, alone = null } = {}) {
  const outbox = t.objectStore(STORES.outbox);
  for (const item of items) {
    const stored = await requestDone(outbox.get(item.mid));
    if (!stored) continue;
    const attempts = (stored.attempts || 0) + 1;
    const failures = (stored.failures || 0) + (split ? 1 : 0);
    let aloneFailures = stored.alone_failures || 0;
    let aloneWay = stored.alone_way || null;
    if (alone) {
      // Only failures of one way count together: a different one starts the count again.
      aloneFailures = aloneWay === alone ? aloneFailures + 1 : 1;
      aloneWay = alone;
      if (aloneFailures >= (alone === NO_ANSWER ? ALONE_CUTS_TO_ATTENTION : ALONE_FAILURES_TO_ATTENTION)) {
        toAttention(t, stored, { mid: stored.mid, status: "failed", code: COULD_NOT_SEND, last_error: code }, round.now);
        round.report.attention += 1;
        continue;
      }
    }
    const delay = retryAfter !== null ? retryAfter * 1000 : backoffDelayMs(attempts);
    outbox.put({
      ...stored, attempts, failures, alone_failures: aloneFailures, alone_way: aloneWay, last_error: code,
      next_attempt_at: round.now + delay, batch_limit: split ? Math.max(1, Math.floor(items.length / 2)) : stored.batch_limit || null,
    });
  }
}

// One request on behalf of `items`; no answer at all counts against them and ends the sync.
async function request(round, method, path, items, { alone = false, blame = true, body, type } = {}) {
  round.report.requests += 1;
  try {
    const response = await send(method, path, round.token, body, type);
    if (response.status < 500) round.answered = true;
    return response;
  } catch (error) {
    if (!(error instanceof NoAnswer)) throw error;
    // A timeout is a slow link, not evidence against an item: it only splits the batch.
    const blamed = blame && alone && !error.timedOut;
    await transact([STORES.outbox, STORES.attention], "readwrite",
      (t) => fail(t, round, items, error.message, null, { split: blame, alone: blamed ? NO_ANSWER : null }));
    round.report.status = "offline";
    throw new SyncStop(blamed);
  }
}

// POST a batch with the pull cursor; `onBehalf` (a probe) is backed off, never blamed, if no answer comes.
async function postSync(round, batch, { alone = false, onBehalf = null } = {}) {
  const cursor = (await getMeta("cursor")) || null;
  const oldest = typeof round.oldestQueuedAt === "number" ? round.oldestQueuedAt : null;
  const body = JSON.stringify({
    protocol: PROTOCOL_VERSION, cursor, limit: DEFAULT_PULL_LIMIT, mutations: batch.map((item) => item.mutation),
    oldest_unsent_age_s: oldest === null ? null : Math.max(0, round.now - oldest) / 1000,
  });
  return request(round, "POST", SYNC_BASE, onBehalf || batch, { alone, blame: !onBehalf, body, type: "application/json" });
}

// A new server epoch: push again everything sent in the last 30 days (same mid, same hash).
async function noteEpoch(t, epoch, round) {
  const meta = t.objectStore(STORES.meta);
  const stored = await requestDone(meta.get("epoch"));
  if (stored === epoch) return;
  if (stored) {
    const since = round.now - SENT_ARCHIVE_MS;
    const outbox = t.objectStore(STORES.outbox);
    for (const item of await requestDone(t.objectStore(STORES.sent).getAll())) {
      if (item.sent_at < since) continue;
      const { result, sent_at: sentAt, settled_at: settledAt, ...queued } = item;
      if (!(await requestDone(outbox.get(item.mid)))) {
        outbox.put({ ...queued, attempts: 0, failures: 0, alone_failures: 0, alone_way: null, batch_limit: null, next_attempt_at: 0, last_error: "", resent: true });
      }
      t.objectStore(STORES.sent).delete(item.mid);
    }
    round.report.epoch_changed = true;
  }
  meta.put(epoch, "epoch");
}

// Any answer but a good one: keep every item, note why, and end this sync. A failure the
// server gave no reason for counts against the items it carried; `blame: false` (a probe
// sent on an item's behalf) only backs it off.
async function stopOnFailure(round, response, batch, { alone = false, blame = true } = {}) {
  const body = response.json && typeof response.json === "object" ? response.json : {};
  const code = body.code || `http_${response.status}`;
  // A 2xx whose body is not a sync answer was cut on its way: as good as no answer.
  const unexplained = blame && isUnexplainedFailure(response.status < 300 ? null : response.status);
  const blamed = unexplained && alone;
  await transact(ANSWER_STORES, "readwrite", async (t) => {
    const meta = t.objectStore(STORES.meta);
    if (body.server_epoch) await noteEpoch(t, body.server_epoch, round);
    if (response.status === 401) {
      // Nothing is dropped: the items wait for the phone to join again.
      round.report.code = body.code || "token_rejected";
      meta.put({ kind: "needs_enrolment", code: round.report.code, message: body.message || "" }, "blocked");
      round.report.status = "needs_enrolment";
    } else if (response.status === 426) {
      meta.put({ kind: "update_required", code, message: body.message || "", version: round.version }, "blocked");
      round.report.status = "update_required";
      round.report.code = code;
    } else {
      if (response.retryAfter !== null) {
        meta.put(round.now + response.retryAfter * 1000, "server_retry_at");
        round.report.retry_at = round.now + response.retryAfter * 1000;
      }
      const way = response.status < 300 ? NO_ANSWER : `http_${response.status}`;
      await fail(t, round, batch, code, response.retryAfter, { split: unexplained, alone: blamed ? way : null });
      round.report.status = response.status === 429 || response.status === 503 ? "server_busy" : "failed";
      round.report.code = code;
    }
  });
  throw new SyncStop(blamed);
}

async function goodBody(round, response, batch, options = {}) {
  const body = response.json;
  if (response.status === 200 && body && typeof body === "object" && !Array.isArray(body) && "cursor" in body) return body;
  return stopOnFailure(round, response, batch, options);
}

async function applyResult(t, round, item, result) {
  const status = result && result.status;
  if (status === "applied" || status === "duplicate") {
    const first = result.first || {};
    if (status === "duplicate" && (first.status === "rejected" || first.status === "conflict")) {
      // The first answer was a refusal this phone never heard: show it now.
      toAttention(t, item, { ...first, mid: item.mid }, round.now);
      round.report.attention += 1;
      return;
    }
    t.objectStore(STORES.outbox).delete(item.mid);
    t.objectStore(STORES.sent).put({ ...item, result, sent_at: round.now });
    round.report[status] += 1;
  } else if (status === "rejected" || status === "conflict") {
    toAttention(t, item, result, round.now);
    round.report.attention += 1;
  } else if (status === "deferred") {
    for (const sha of Array.isArray(result.missing) ? result.missing : []) {
      const blob = await requestDone(t.objectStore(STORES.blobs).get(sha));
      if (blob) t.objectStore(STORES.blobs).put({ ...blob, checked_epoch: null });
    }
    const wait = typeof result.retry_after_s === "number" ? Math.min(MAX_RETRY_AFTER_S, result.retry_after_s) : null;
    await fail(t, round, [item], result.code || "deferred", wait);
    round.report.deferred += 1;
  } else {
    // No answer for this item, or one this app does not know: not final, so keep it.
    await fail(t, round, [item], "no_result", null);
  }
}

// Results, the epoch, the page of changes and the new cursor: one IndexedDB transaction.
function storeResponse(round, batch, body) {
  const results = new Map((Array.isArray(body.results) ? body.results : [])
    .filter((result) => result && typeof result === "object").map((result) => [result.mid, result]));
  return transact(ANSWER_STORES, "readwrite", async (t) => {
    if (body.server_epoch) await noteEpoch(t, body.server_epoch, round);
    for (const item of batch) await applyResult(t, round, item, results.get(item.mid));
    const replica = t.objectStore(STORES.replica);
    if (body.reset) replica.clear();
    for (const change of Array.isArray(body.changes) ? body.changes : []) {
      const key = replicaKey(change.collection, change.id);
      if (change.op === "delete") replica.delete(key);
      else replica.put({ key, collection: change.collection, id: change.id, seq: change.seq, data: change.data });
    }
    // Caught up: the forms offered now are ones this phone had (a later "was retired" concerns it).
    if (!body.has_more) await noteOfferedForms(t);
    const meta = t.objectStore(STORES.meta);
    meta.put(body.cursor, "cursor");
    meta.put(body.server_time, "server_time");
    meta.put(round.now, "last_sync");
    meta.delete("server_retry_at");
    return Boolean(body.has_more);
  });
}

function toAttentionForRequest(round, batch, response) {
  const body = response.json && typeof response.json === "object" ? response.json : {};
  const result = { status: "rejected", code: body.code || `http_${response.status}`, message: body.message || "", errors: body.errors || {} };
  return transact([STORES.outbox, STORES.attention], "readwrite", (t) => {
    for (const item of batch) {
      toAttention(t, item, { ...result, mid: item.mid }, round.now);
      round.report.attention += 1;
    }
  });
}

// Photos go first (HEAD, then PUT when missing); items with a refused photo need attention.
async function uploadPhotos(round, batch) {
  const epoch = await getMeta("epoch");
  const wanted = [];
  for (const item of batch) for (const sha of photoHashes(item.mutation.data)) if (!wanted.includes(sha)) wanted.push(sha);
  const refused = new Map();
  let keep = batch;
  for (const sha of wanted) {
    const blob = await getOne(STORES.blobs, sha);
    if (!blob || (epoch && blob.checked_epoch === epoch)) continue; // not here (the server will say so), or known there
    // A photo request is about the visits that show it, and about no others.
    const showing = keep.filter((item) => photoHashes(item.mutation.data).includes(sha));
    const path = `${SYNC_BASE}/blobs/${sha}`;
    try {
      let response = await request(round, "HEAD", path, showing, { alone: round.answered });
      if (response.status === 404) {
        response = await request(round, "PUT", path, showing, { alone: round.answered, body: blob.bytes, type: blob.type });
      }
      if (PHOTO_REFUSED_STATUSES.includes(response.status)) {
        refused.set(sha, response);
        continue;
      }
      if (response.status !== 200 && response.status !== 201) await stopOnFailure(round, response, showing, { alone: round.answered });
    } catch (error) {
      if (!(error instanceof SyncStop) || !error.blamed) throw error;
      const failed = new Set(showing.map((item) => item.mid));
      keep = keep.filter((item) => !failed.has(item.mid));
      round.report.status = "ok";
      round.report.code = null;
      continue;
    }
    await transact([STORES.blobs], "readwrite", (t) => requestDone(t.objectStore(STORES.blobs).put({ ...blob, checked_epoch: epoch })));
  }
  const stay = [];
  for (const item of keep) {
    const bad = photoHashes(item.mutation.data).find((sha) => refused.has(sha));
    if (bad) await toAttentionForRequest(round, [item], refused.get(bad));
    else stay.push(item);
  }
  return stay;
}

async function dueItems(round, attempted) {
  const items = await getAllByIndex(STORES.outbox, "seq");
  // The oldest item still to send, whether due or waiting: the server's metrics hear its age.
  round.oldestQueuedAt = items.reduce((oldest, item) => (typeof item.queued_at === "number" && (oldest === null || item.queued_at < oldest) ? item.queued_at : oldest), null);
  return items.filter((item) => !attempted.has(item.mid) && (round.force || waitOver(item.next_attempt_at, round.now, MAX_WAIT_S)));
}

// Forget archive items past 30 days, and photos nothing kept on the phone refers to any more.
async function prune(now) {
  await transact([STORES.sent, STORES.outbox, STORES.attention, STORES.drafts, STORES.blobs], "readwrite", async (t) => {
    const old = IDBKeyRange.upperBound(now - SENT_ARCHIVE_MS, true);
    for (const mid of await requestDone(t.objectStore(STORES.sent).index("sent_at").getAllKeys(old))) t.objectStore(STORES.sent).delete(mid);
    const kept = new Set();
    for (const store of [STORES.outbox, STORES.sent, STORES.attention]) {
      for (const item of await requestDone(t.objectStore(store).getAll())) for (const sha of photoHashes(item.mutation && item.mutation.data)) kept.add(sha);
    }
    for (const draft of await requestDone(t.objectStore(STORES.drafts).getAll())) for (const sha of photoHashes(draft.answers)) kept.add(sha);
    for (const sha of await requestDone(t.objectStore(STORES.blobs).getAllKeys())) if (!kept.has(sha)) t.objectStore(STORES.blobs).delete(sha);
  });
}

function newReport() {
  return { status: "ok", code: null, requests: 0, applied: 0, duplicate: 0, attention: 0, deferred: 0, retry_at: null, epoch_changed: false };
}

async function syncRound(options) {
  const report = newReport();
  const token = await getMeta("token");
  if (!token) return { ...report, status: "not_enrolled" };
  let blocked = await getMeta("blocked");
  // A new app version may speak the protocol the server wants.
  if (blocked && blocked.kind === "update_required" && blocked.version !== options.version) {
    await setMeta("blocked", null);
    blocked = null;
  }
  if (blocked && blocked.kind === "needs_enrolment") return { ...report, status: "needs_enrolment", code: blocked.code };
  const now = Date.now();
  const retryAt = (await getMeta("server_retry_at")) || 0;
  if (!waitOver(retryAt, now, MAX_RETRY_AFTER_S)) return { ...report, status: "waiting", retry_at: retryAt };
  const round = { token, now, force: options.force, version: options.version, report, answered: false };
  try {
    if (blocked) {
      // The server refused this app's protocol: ask again with nothing pushed, and send as
      // soon as it accepts the app (a 426 again ends the sync, keeping everything).
      const body = await goodBody(round, await postSync(round, []), []);
      await setMeta("blocked", null);
      await storeResponse(round, [], body);
    }
    const attempted = new Set();
    let maxItems = MAX_MUTATIONS_PER_REQUEST;
    let hasMore = true; // every sync pulls at least once
    for (;;) {
      const due = await dueItems(round, attempted);
      if (!due.length && !hasMore) break;
      const limit = due.length && due[0].batch_limit ? due[0].batch_limit : maxItems;
      let batch = firstBatch(due, Math.min(maxItems, limit));
      if (batch.length === 1 && batch[0].failures && !round.answered) {
        // Before a lone item that failed before is blamed again, the server must be seen
        // answering a request without it (a pull), or nobody is blamed.
        const probe = await postSync(round, [], { onBehalf: batch });
        hasMore = await storeResponse(round, [], await goodBody(round, probe, batch, { blame: false }));
        continue;
      }
      for (const item of batch) attempted.add(item.mid);
      let body;
      try {
        batch = await uploadPhotos(round, batch);
        const alone = batch.length === 1 && round.answered;
        const response = await postSync(round, batch, { alone });
        if (response.status === 413 && batch.length > 1) {
          // The server's limits are smaller than ours: send the same items in halves.
          maxItems = Math.max(1, Math.floor(batch.length / 2));
          for (const item of batch) attempted.delete(item.mid);
          continue;
        }
        if (response.status === 413) {
          await toAttentionForRequest(round, batch, response);
          continue;
        }
        body = await goodBody(round, response, batch, { alone });
      } catch (error) {
        if (!(error instanceof SyncStop) || !error.blamed) throw error;
        // Kept (or moved to attention) with the failure counted; the others go on.
        report.status = "ok";
        report.code = null;
        continue;
      }
      hasMore = await storeResponse(round, batch, body);
    }
  } catch (error) {
    if (!(error instanceof SyncStop)) throw error;
    return report;
  }
  await prune(round.now);
  return report;
}

// One sync at a time, page or service worker: a second call while one runs returns "busy".
export async function syncNow(options = {}) {
  const settings = { force: false, version: "", ...options };
  let outcome;
  if (globalThis.navigator && navigator.locks) {
    outcome = await navigator.locks.request("kerbside-sync", { ifAvailable: true }, (lock) => (lock ? syncRound(settings) : { ...newReport(), status: "busy" }));
  } else if (syncRunning) {
    outcome = { ...newReport(), status: "busy" };
  } else {
    syncRunning = true;
    try {
      outcome = await syncRound(settings);
    } finally {
      syncRunning = false;
    }
  }
  announce(outcome);
  return outcome;
}

// When the next sync is worth trying: the earliest item's backoff, but never before the server's Retry-After.
export async function nextAttemptAt() {
  const items = await getAllByIndex(STORES.outbox, "seq");
  if (!items.length) return null;
  const now = Date.now();
  const earliest = Math.min(...items.map((item) => (waitOver(item.next_attempt_at, now, MAX_WAIT_S) ? now : item.next_attempt_at)));
  const retryAt = (await getMeta("server_retry_at")) || 0;
  return Math.max(earliest, waitOver(retryAt, now, MAX_RETRY_AFTER_S) ? 0 : retryAt);
}

// A visit the phone gave up sending (could_not_send) goes back into the outbox, its counts
// started afresh: same mid, same frozen mutation, so the server still takes it once.
export function sendAgain(mid) {
  return transact([STORES.attention, STORES.outbox], "readwrite", async (t) => {
    const item = await requestDone(t.objectStore(STORES.attention).get(mid));
    if (!item || !item.result || item.result.code !== COULD_NOT_SEND) return false;
    const { result, settled_at: settledAt, ...queued } = item;
    t.objectStore(STORES.outbox).put({ ...queued, attempts: 0, failures: 0, alone_failures: 0, alone_way: null, batch_limit: null, next_attempt_at: 0, last_error: "" });
    t.objectStore(STORES.attention).delete(mid);
    return true;
  });
}

// Ask the browser to wake the service worker when the connection returns (where it can).
export async function requestBackgroundSync(registration) {
  try {
    if (registration && registration.sync) await registration.sync.register(SYNC_TAG);
  } catch (ignored) {
    // Background Sync is an extra: the timer and the online event still sync.
  }
}

// -- signing out: the server is told once it can be reached ----------------------------------

// The signed-out volunteer's token is kept apart from "token" (which would sign the phone in)
// until the server has answered, so the device is revoked even when the phone was offline.
export async function queueSignOut(token) {
  if (token) await setMeta("pending_sign_out", { token, since: Date.now() });
  return sendPendingSignOut();
}

// Tell the server; true when nothing is left to send (done now, or nothing was waiting).
export async function sendPendingSignOut() {
  const pending = await getMeta("pending_sign_out");
  if (!pending || !pending.token) return true;
  let response;
  try {
    response = await fetch(`${SYNC_BASE}/device/sign-out`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${pending.token}` },
      body: JSON.stringify({ protocol: PROTOCOL_VERSION }),
    });
  } catch (error) {
    return false; // no signal: tried again when the browser goes online, and at every start
  }
  // 401: the server knows no such token (already gone): nothing left to sign out.
  if (response.status === 200 || response.status === 401) {
    await deleteMeta("pending_sign_out");
    return true;
  }
  return false;
}
