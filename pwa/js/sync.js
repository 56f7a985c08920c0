// The sync client: the protocol's client duties (docs: sync-protocol.md).
// Runs in the page and in the service worker (Background Sync); a Web Lock keeps it to one at a time.

import { STORES, transact, requestDone, getAll, getAllByIndex, getOne, putOne, getMeta, setMeta, replicaKey } from "./db.js";

export const PROTOCOL = 1;
export const SYNC_BASE = "/api/sync/v1";
export const SYNC_TAG = "kerbside-outbox";
export const FINAL_STATUSES = ["applied", "duplicate", "conflict", "rejected"];
export const BACKOFF_FIRST_MS = 1000;
export const BACKOFF_MAX_MS = 300000;
export const SENT_ARCHIVE_MS = 30 * 24 * 3600 * 1000;
const BATCH_ITEMS = 200;
const BATCH_BYTES = 1500000;
const PULL_LIMIT = 500;
const REQUEST_TIMEOUT_MS = 30000;
const MAX_ROUNDS = 40;

const syncListeners = [];
let syncRunning = false;

// Full jitter, 1 s up to 5 min, never below 1 s (the same rule as sync/protocol.py).
export function backoffDelayMs(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, attempt - 1));
  return Math.max(BACKOFF_FIRST_MS, random() * ceiling);
}

export function onSyncChange(listener) {
  syncListeners.push(listener);
}

function announce(state) {
  for (const listener of syncListeners) listener(state);
}

class SyncStop extends Error {
  constructor(kind, status, body) {
    super(kind);
    this.kind = kind; // "auth", "update", "later", "too_large", "transient"
    this.status = status;
    this.body = body || {};
  }
}

async function readBody(response) {
  try {
    return await response.json();
  } catch (ignored) {
    return {};
  }
}

async function call(path, init) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, { ...init, signal: controller.signal, cache: "no-store" });
  } catch (error) {
    throw new SyncStop("transient", 0, { code: "network" });
  } finally {
    clearTimeout(timer);
  }
  if (response.ok) return response;
  const body = await readBody(response);
  if (response.status === 401) throw new SyncStop("auth", 401, body);
  if (response.status === 426) throw new SyncStop("update", 426, body);
  if (response.status === 413) throw new SyncStop("too_large", 413, body);
  if (response.status === 429 || response.status === 503) {
    const seconds = Number(response.headers.get("Retry-After"));
    throw new SyncStop("later", response.status, { ...body, retry_after_s: Number.isFinite(seconds) ? seconds : 5 });
  }
  throw new SyncStop("transient", response.status, body);
}

function headersFor(token, type) {
  return { Authorization: `Bearer ${token}`, "Content-Type": type };
}

// Photos go first: a submission whose photos are missing would only be deferred.
async function uploadPhotos(token) {
  const waiting = await getAll(STORES.outbox);
  const wanted = new Set(waiting.flatMap((item) => item.photos || []));
  for (const sha of wanted) {
    const blob = await getOne(STORES.blobs, sha);
    if (!blob || blob.uploaded) continue;
    await call(`${SYNC_BASE}/blobs/${sha}`, { method: "PUT", headers: headersFor(token, blob.type), body: blob.bytes });
    await putOne(STORES.blobs, { ...blob, uploaded: true });
  }
}

function pickBatch(items, limit, now) {
  const batch = [];
  let bytes = 0;
  for (const item of items) {
    if (item.defer_until && item.defer_until > now) continue;
    const size = JSON.stringify(item.mutation).length;
    if (batch.length >= limit || (batch.length && bytes + size > BATCH_BYTES)) break;
    batch.push(item);
    bytes += size;
  }
  return batch;
}

// Outcomes of one batch, in one transaction: only final statuses leave the outbox.
function settle(batch, results, now) {
  const byMid = new Map(results.map((result) => [result.mid, result]));
  const stores = [STORES.outbox, STORES.sent, STORES.attention, STORES.blobs];
  return transact(stores, "readwrite", async (t) => {
    let finished = 0;
    for (const item of batch) {
      const result = byMid.get(item.mid);
      if (!result) continue;
      if (FINAL_STATUSES.includes(result.status)) {
        finished += 1;
        t.objectStore(STORES.outbox).delete(item.mid);
        const kept = { ...item, result, settled_at: now };
        if (result.status === "applied" || result.status === "duplicate") {
          t.objectStore(STORES.sent).put({ ...kept, sent_at: now });
        } else {
          t.objectStore(STORES.attention).put(kept);
        }
      } else {
        const wait = (Number(result.retry_after_s) || 30) * 1000;
        t.objectStore(STORES.outbox).put({ ...item, defer_until: now + wait, last_result: result });
        for (const sha of result.missing || []) {
          const blob = await requestDone(t.objectStore(STORES.blobs).get(sha));
          if (blob) t.objectStore(STORES.blobs).put({ ...blob, uploaded: false });
        }
      }
    }
    return finished;
  });
}

// A restored server forgot what it acknowledged lately: send the sent archive again.
async function checkEpoch(epoch, now) {
  const known = await getMeta("epoch");
  if (known === epoch) return false;
  return transact([STORES.meta, STORES.sent, STORES.outbox], "readwrite", async (t) => {
    t.objectStore(STORES.meta).put(epoch, "epoch");
    if (!known) return false;
    const sent = await requestDone(t.objectStore(STORES.sent).getAll());
    for (const item of sent) {
      if (now - item.sent_at > SENT_ARCHIVE_MS) continue;
      const { result, settled_at, sent_at, ...queued } = item;
      t.objectStore(STORES.outbox).put({ ...queued, defer_until: 0, resent: true });
      t.objectStore(STORES.sent).delete(item.mid);
    }
    return true;
  });
}

// A page of changes and the cursor after it are stored together, or not at all.
function applyPage(answer) {
  return transact([STORES.replica, STORES.meta], "readwrite", async (t) => {
    const replica = t.objectStore(STORES.replica);
    if (answer.reset) replica.clear();
    for (const change of answer.changes || []) {
      const key = replicaKey(change.collection, change.id);
      if (change.op === "delete") replica.delete(key);
      else replica.put({ key, collection: change.collection, id: change.id, seq: change.seq, data: change.data });
    }
    t.objectStore(STORES.meta).put(answer.cursor, "cursor");
    t.objectStore(STORES.meta).put(answer.server_time, "server_time");
  });
}

async function pushAndPull(token, batchLimit) {
  const now = Date.now();
  const waiting = await getAllByIndex(STORES.outbox, "seq");
  const batch = pickBatch(waiting, batchLimit, now);
  const cursor = (await getMeta("cursor")) || null;
  const body = { protocol: PROTOCOL, cursor, limit: PULL_LIMIT, mutations: batch.map((item) => item.mutation) };
  const response = await call(SYNC_BASE, { method: "POST", headers: headersFor(token, "application/json"), body: JSON.stringify(body) });
  const answer = await response.json();
  const finished = await settle(batch, answer.results || [], now);
  const resend = await checkEpoch(answer.server_epoch, now);
  await applyPage(answer);
  const unsentOutside = waiting.length - batch.length;
  return Boolean(answer.has_more || resend || (finished > 0 && unsentOutside > 0));
}

async function pruneSent(now) {
  const old = IDBKeyRange.upperBound(now - SENT_ARCHIVE_MS);
  await transact([STORES.sent], "readwrite", async (t) => {
    const expired = await requestDone(t.objectStore(STORES.sent).index("sent_at").getAllKeys(old));
    for (const mid of expired) t.objectStore(STORES.sent).delete(mid);
  });
  // Photos no longer referenced by anything kept on the device are let go.
  const kept = new Set();
  for (const store of [STORES.outbox, STORES.sent, STORES.attention]) {
    for (const item of await getAll(store)) for (const sha of item.photos || []) kept.add(sha);
  }
  for (const draft of await getAll(STORES.drafts)) {
    for (const answer of Object.values(draft.answers || {})) for (const sha of answer.photos || []) kept.add(sha);
  }
  await transact([STORES.blobs], "readwrite", async (t) => {
    const shas = await requestDone(t.objectStore(STORES.blobs).getAllKeys());
    for (const sha of shas) if (!kept.has(sha)) t.objectStore(STORES.blobs).delete(sha);
  });
}

async function recordFailure(error, appVersion) {
  const state = (await getMeta("sync")) || { attempt: 0 };
  const now = Date.now();
  if (error.kind === "auth" || error.kind === "update") {
    await setMeta("blocked", { kind: error.kind, code: error.body.code || "", message: error.body.message || "", version: appVersion, at: now });
    return { state: "blocked", kind: error.kind };
  }
  const attempt = (state.attempt || 0) + 1;
  const next = {
    attempt,
    next_at: now + backoffDelayMs(attempt),
    not_before: error.kind === "later" ? now + error.body.retry_after_s * 1000 : 0,
    last_error: error.kind === "transient" && error.status === 0 ? "offline" : `${error.status || ""} ${error.body.code || ""}`.trim(),
    last_try: now,
  };
  await setMeta("sync", next);
  return { state: "retry", ...next };
}

async function syncRound(options) {
  const token = await getMeta("token");
  if (!token) return { state: "not_joined" };
  const blocked = await getMeta("blocked");
  if (blocked) {
    // A new app version may speak the protocol the server wants: try again once updated.
    if (blocked.kind === "update" && blocked.version !== options.version) await setMeta("blocked", null);
    else return { state: "blocked", kind: blocked.kind };
  }
  const state = (await getMeta("sync")) || {};
  const now = Date.now();
  const waiting = { state: "waiting", next_at: state.next_at || 0, not_before: state.not_before || 0 };
  if (now < waiting.not_before) return waiting;
  if (!options.force && now < waiting.next_at) return waiting;
  let batchLimit = BATCH_ITEMS;
  try {
    for (let round = 0; round < MAX_ROUNDS; round += 1) {
      await uploadPhotos(token);
      let more;
      try {
        more = await pushAndPull(token, batchLimit);
      } catch (error) {
        if (error.kind !== "too_large" || batchLimit === 1) throw error;
        batchLimit = Math.max(1, Math.floor(batchLimit / 2));
        more = true;
      }
      if (!more) break;
    }
  } catch (error) {
    if (!(error instanceof SyncStop)) throw error;
    return recordFailure(error, options.version);
  }
  await setMeta("sync", { attempt: 0, next_at: 0, not_before: 0, last_error: "", last_try: now });
  await setMeta("last_sync", Date.now());
  await pruneSent(Date.now());
  return { state: "ok" };
}

export async function syncNow(options = {}) {
  const settings = { force: false, version: "", ...options };
  let outcome;
  if (globalThis.navigator && navigator.locks) {
    outcome = await navigator.locks.request("kerbside-sync", { ifAvailable: true }, (lock) => (lock ? syncRound(settings) : { state: "busy" }));
  } else if (syncRunning) {
    outcome = { state: "busy" };
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

// Ask the browser to wake the service worker when the connection returns (where it can).
export async function requestBackgroundSync(registration) {
  try {
    if (registration && registration.sync) await registration.sync.register(SYNC_TAG);
  } catch (ignored) {
    // Background Sync is an extra: the timer and the online event still sync.
  }
}
