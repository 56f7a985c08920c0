// Test-only: plays one step of a client-contract case (sync/contract) through the field app's
// own sync code. e2e/test_pwa_contract.py evaluates it after the app's modules (db.js,
// protocol.js, sync.js); `contractAnswer` is a Playwright binding to the case's scripted
// server in Python, so both clients hear exactly the same answers.

const CONTRACT_VERSION = "contract";

function bytesOf(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
  return bytes.buffer;
}

function contractItem(item, nowMs) {
  const dueIn = item.due_in_s === null || item.due_in_s === undefined ? null : item.due_in_s;
  return {
    mid: item.mid, seq: item.seq,
    mutation: { mid: item.mid, seq: item.seq, type: item.type, payload_hash: item.payload_hash, data: item.data },
    photos: photoHashes(item.data), queued_at: nowMs - item.created_ago_s * 1000, kind: "street", title: "Contract visit",
    attempts: item.attempts || 0, failures: item.failures || 0, alone_failures: item.alone_failures || 0,
    alone_way: item.alone_way || null, batch_limit: item.batch_limit || null,
    next_attempt_at: dueIn === null ? 0 : nowMs + dueIn * 1000, last_error: "",
  };
}

async function contractSetUp(given) {
  const nowMs = given.now * 1000;
  await clearEverything();
  await transact(Object.values(STORES), "readwrite", (t) => {
    const meta = t.objectStore(STORES.meta);
    meta.put("kbt_contract", "token");
    meta.put("device-1", "device_id");
    meta.put({ id: "person-1", display_name: "Contract", roles: [] }, "person");
    meta.put(given.epoch, "epoch");
    meta.put(1000, "seq");
    if (given.cursor !== null) meta.put(given.cursor, "cursor");
    if (given.blocked === "needs_enrolment") meta.put({ kind: "needs_enrolment", code: "token_revoked", message: "" }, "blocked");
    if (given.blocked === "update_required") {
      meta.put({ kind: "update_required", code: "protocol_unsupported", message: "", version: CONTRACT_VERSION }, "blocked");
    }
    if (given.retry_in_s !== null) meta.put(nowMs + given.retry_in_s * 1000, "server_retry_at");
    for (const item of given.outbox) t.objectStore(STORES.outbox).put(contractItem(item, nowMs));
    for (const item of given.sent) {
      t.objectStore(STORES.sent).put({ ...contractItem(item, nowMs), result: { mid: item.mid, status: item.status || "applied" },
        sent_at: nowMs - (item.sent_ago_s === undefined ? 60 : item.sent_ago_s) * 1000 });
    }
    for (const item of given.attention) {
      t.objectStore(STORES.attention).put({ ...contractItem(item, nowMs), settled_at: nowMs - 60000,
        result: { mid: item.mid, status: item.status || "rejected", code: item.code === undefined ? null : item.code } });
    }
    for (const photo of given.photos) {
      t.objectStore(STORES.blobs).put({ sha256: photo.sha256, bytes: bytesOf(photo.bytes_b64), type: "image/png",
        checked_epoch: photo.checked ? given.epoch : null });
    }
    for (const [key, data] of Object.entries(given.replica)) {
      const slash = key.indexOf("/");
      t.objectStore(STORES.replica).put({ key, collection: key.slice(0, slash), id: key.slice(slash + 1), seq: 1, data });
    }
  });
}

// One sync with the clock at `nowMs` and every request answered by the scripted server.
async function contractStep(force, nowMs) {
  const realNow = Date.now;
  const realFetch = globalThis.fetch;
  Date.now = () => nowMs;
  globalThis.fetch = async (path, init) => {
    const body = typeof init.body === "string" ? init.body : null;
    const answer = await contractAnswer(init.method, String(path), body, (init.headers || {}).Authorization || "");
    if (answer.cut) throw new TypeError("Failed to fetch");
    if (answer.timeout) throw new DOMException("The operation was aborted.", "AbortError");
    return new Response(init.method === "HEAD" ? null : answer.text, { status: answer.status, headers: answer.headers });
  };
  try {
    const outcome = await syncNow({ force, version: CONTRACT_VERSION });
    return outcome.status;
  } finally {
    Date.now = realNow;
    globalThis.fetch = realFetch;
  }
}

// The phone's stores read back as the contract's plain state.
async function contractState(nowMs) {
  const bySeq = (a, b) => a.seq - b.seq;
  const epoch = (await getMeta("epoch")) || null;
  const outbox = (await getAllByIndex(STORES.outbox, "seq")).map((item) => ({
    mid: item.mid, attempts: item.attempts || 0, failures: item.failures || 0, alone_failures: item.alone_failures || 0,
    alone_way: item.alone_way || null, batch_limit: item.batch_limit || null, last_error: item.last_error || null,
    due_in_s: !item.next_attempt_at || item.next_attempt_at <= nowMs ? null : (item.next_attempt_at - nowMs) / 1000,
  }));
  const sent = (await getAll(STORES.sent)).sort(bySeq).map((item) => ({ mid: item.mid, status: item.result.status }));
  const attention = (await getAll(STORES.attention)).sort(bySeq)
    .map((item) => ({ mid: item.mid, status: item.result.status, code: item.result.code === undefined ? null : item.result.code }));
  const replica = {};
  for (const row of await getAll(STORES.replica)) replica[row.key] = row.data;
  const photosChecked = {};
  for (const blob of await getAll(STORES.blobs)) photosChecked[blob.sha256] = Boolean(epoch) && blob.checked_epoch === epoch;
  const blocked = await getMeta("blocked");
  const retryAt = (await getMeta("server_retry_at")) || 0;
  const cursor = await getMeta("cursor");
  return {
    outbox, sent, attention, replica, epoch, cursor: cursor === undefined ? null : cursor,
    blocked: blocked ? blocked.kind : null, retry_in_s: retryAt > nowMs ? (retryAt - nowMs) / 1000 : null,
    photos_checked: photosChecked,
  };
}
