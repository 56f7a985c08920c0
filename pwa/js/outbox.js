// Drafts become frozen outbox items; the unsent work can be exported as a file.

import { payloadHash, sha256Hex } from "./canonical.js";
import { STORES, transact, requestDone, getAll, getOne, putOne, putNow, deleteOne, getMeta, replicaGet } from "./db.js";

// The "Export unsent" file's format, defined in sync/export_format.schema.json.
export const EXPORT_FORMAT = "kerbside-unsent";
export const EXPORT_FORMAT_VERSION = 1;

export function newId() {
  return crypto.randomUUID();
}

function pad(number) {
  return String(number).padStart(2, "0");
}

// The value of an <input type="datetime-local"> for a moment, in the phone's time zone.
export function localInputValue(moment = new Date()) {
  return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}T${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
}

// ISO 8601 with the phone's offset, e.g. 2026-11-20T14:05:00+00:00 (the volunteer's statement).
export function isoWithOffset(localValue) {
  const moment = new Date(localValue);
  if (Number.isNaN(moment.getTime())) return null;
  const offset = -moment.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const hours = pad(Math.floor(Math.abs(offset) / 60));
  const minutes = pad(Math.abs(offset) % 60);
  return `${localInputValue(moment)}:00${sign}${hours}:${minutes}`;
}

export function newDraft(form) {
  const now = Date.now();
  return {
    id: newId(),
    form: { id: form.id, version: form.version },
    kind: form.kind,
    title: form.title,
    site: { mode: "list", site_id: null, site_name: "", new_name: "" },
    observed_local: localInputValue(),
    answers: {},
    notes: "",
    location: null,
    created_at: now,
    updated_at: now,
  };
}

// A correction of a flagged visit (a `my_submissions` record): a draft pre-filled with its
// answers, on `form` - its own version, or the published successor when that was retired,
// the answers then carried over by line key (only lines the new version has).
export function newCorrection(form, flagged, siteName) {
  const draft = newDraft(form);
  const keys = new Set(form.sections.flatMap((section) => section.lines.map((line) => line.key)));
  const answers = {};
  for (const [key, answer] of Object.entries(flagged.answers || {})) {
    if (keys.has(key) && answer) answers[key] = { ...answer };
  }
  const stated = new Date(flagged.observed_at_stated || flagged.observed_at);
  return {
    ...draft,
    site: { mode: "list", site_id: flagged.site_id, site_name: siteName || "", new_name: "" },
    observed_local: Number.isNaN(stated.getTime()) ? draft.observed_local : localInputValue(stated),
    answers,
    notes: flagged.notes || "",
    corrects: {
      id: flagged.id,
      reason: flagged.review_reason || "",
      from_version: flagged.form.version,
      carried_over: flagged.form.version !== form.version,
    },
  };
}

export function saveDraft(draft) {
  return putOne(STORES.drafts, { ...draft, updated_at: Date.now() });
}

// Keeps a draft in IndexedDB while it is filled. Every change is written at once; a change
// made while a write is under way is written as soon as that one ends, and `flush()` (for
// pagehide, a hidden page, blur) writes it without waiting, so no keystroke is left behind.
// The draft is created by the first real change (`changed(true)`), never by opening the form.
export function draftKeeper(draft, alreadyStored, { onSaved = () => null, onFailed = () => null } = {}) {
  let stored = alreadyStored;
  let writing = 0;
  let pending = false;
  let stopped = false;
  let last = Promise.resolve();
  function write() {
    pending = false;
    writing += 1;
    draft.updated_at = Date.now();
    // putNow copies the draft as it is now, before this function returns.
    last = putNow(STORES.drafts, draft).then(onSaved, onFailed).finally(() => {
      writing -= 1;
      if (pending && !writing && !stopped) write();
    });
  }
  return {
    // `real` is false for what the app notes by itself (a location): kept only once the draft exists.
    changed(real = true) {
      if (stopped || (!stored && !real)) return;
      stored = true;
      if (writing) pending = true;
      else write();
    },
    flush() {
      if (pending && !stopped) write();
    },
    // Every change written; resolves once IndexedDB holds the draft as it is now.
    async settled() {
      this.flush();
      await last;
    },
    // No more writes (the draft is being queued or deleted); resolves once the last one ended.
    async stop() {
      await this.settled();
      stopped = true;
    },
  };
}

// A draft's lines with an answer (a grade, or a value that is not blank), counted as the coordinator's import counts them.
export function answeredLines(draft) {
  return Object.values(draft.answers || {}).filter((answer) => answer && (answer.grade
    || (answer.value !== undefined && answer.value !== null && String(answer.value).trim()))).length;
}

export function getDraft(id) {
  return getOne(STORES.drafts, id);
}

export function deleteDraft(id) {
  return deleteOne(STORES.drafts, id);
}

function cleanAnswer(answer) {
  const clean = {};
  for (const [key, value] of Object.entries(answer)) {
    if (key === "photos" && (!value || value.length === 0)) continue;
    if (key === "note" && !String(value || "").trim()) continue;
    if (key === "value" && typeof value === "string" && !value.trim()) continue;
    clean[key] = value;
  }
  return clean;
}

// The submission.create (or, for a correction, submission.correct) data the server expects, from a draft.
export function submissionData(draft, areaId) {
  const answers = {};
  for (const [key, answer] of Object.entries(draft.answers)) {
    const clean = cleanAnswer(answer);
    if (clean.grade || clean.value !== undefined) answers[key] = clean;
  }
  const data = { id: draft.id, form: draft.form, observed_at: isoWithOffset(draft.observed_local), answers };
  if (draft.site.mode === "new") {
    data.new_site = { name: draft.site.new_name.trim() };
    if (draft.location) {
      data.new_site.lat = draft.location.lat;
      data.new_site.lng = draft.location.lng;
    }
    if (areaId) data.area_id = areaId;
  } else {
    data.site_id = draft.site.site_id;
  }
  if (draft.notes && draft.notes.trim()) data.notes = draft.notes.trim();
  if (draft.location) data.location = draft.location;
  // A correction names the flagged visit it supersedes (submission.correct).
  if (draft.corrects) data.supersedes = draft.corrects.id;
  return data;
}

export function photosOf(data) {
  return Object.values(data.answers).flatMap((answer) => answer.photos || []);
}

// The draft becomes a frozen outbox item in the same transaction that removes it.
export async function queueDraft(draft, areaId) {
  const data = submissionData(draft, areaId);
  const mid = newId();
  const hash = await payloadHash(data); // before the transaction: no other awaits inside it
  const label = draft.site.mode === "new" ? { new_site: data.new_site.name } : { site_name: draft.site.site_name };
  return transact([STORES.drafts, STORES.outbox, STORES.meta], "readwrite", async (t) => {
    // Already queued (a second tap on Save): one visit is never two outbox items.
    if (!(await requestDone(t.objectStore(STORES.drafts).get(draft.id)))) return null;
    const meta = t.objectStore(STORES.meta);
    const seq = ((await requestDone(meta.get("seq"))) || 0) + 1;
    meta.put(seq, "seq");
    const type = draft.corrects ? "submission.correct" : "submission.create";
    const mutation = { mid, seq, type, payload_hash: hash, data };
    t.objectStore(STORES.outbox).add({
      mid, seq, mutation, photos: photosOf(data), queued_at: Date.now(), kind: draft.kind, title: draft.title, ...label,
    });
    t.objectStore(STORES.drafts).delete(draft.id);
    return mid;
  });
}

function base64(bytes) {
  let text = "";
  const view = new Uint8Array(bytes);
  for (let i = 0; i < view.length; i += 0x8000) text += String.fromCharCode(...view.subarray(i, i + 0x8000));
  return btoa(text);
}

function draftPhotos(draft) {
  return Object.values(draft.answers || {}).flatMap((answer) => (answer && answer.photos) || []);
}

// Everything not yet accepted, with its photos, as one "Export unsent" file
// (sync/export_format.schema.json): for a coordinator's import, or for a new phone.
export async function exportUnsent() {
  const drafts = await getAll(STORES.drafts);
  const outbox = await getAll(STORES.outbox);
  const attention = await getAll(STORES.attention);
  const person = (await getMeta("person")) || {};
  const wanted = new Set([...outbox, ...attention].flatMap((item) => item.photos || []));
  for (const draft of drafts) for (const sha of draftPhotos(draft)) wanted.add(sha);
  const photos = {};
  for (const sha of wanted) {
    const blob = await getOne(STORES.blobs, sha);
    if (blob) photos[sha] = { type: blob.type, base64: base64(blob.bytes) };
  }
  return {
    format: EXPORT_FORMAT,
    format_version: EXPORT_FORMAT_VERSION,
    exported_at: new Date().toISOString(),
    device_id: (await getMeta("device_id")) || null,
    person: { id: person.id || null, display_name: person.display_name || "" },
    outbox: outbox.sort((a, b) => a.seq - b.seq).map((item) => ({ ...item.mutation, queued_at: item.queued_at })),
    attention: attention.map((item) => ({ mutation: item.mutation, result: item.result, noted_at: item.settled_at })),
    drafts,
    photos,
  };
}

export async function downloadUnsent() {
  const document_ = await exportUnsent();
  const blob = new Blob([JSON.stringify(document_, null, 1)], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `kerbside-unsent-${document_.exported_at.slice(0, 19).replace(/[:T]/g, "-")}.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return document_;
}

// -- bringing an export back on a new phone -------------------------------------------------

const SHA256_NAME = /^[0-9a-f]{64}$/;
const HASH_FIELD = /^sha256:[0-9a-f]{64}$/;

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isMutation(value) {
  return isObject(value) && typeof value.mid === "string" && value.mid !== "" && Number.isInteger(value.seq)
    && value.seq >= 0 && typeof value.type === "string" && HASH_FIELD.test(String(value.payload_hash)) && isObject(value.data);
}

function isDraft(value) {
  return isObject(value) && typeof value.id === "string" && value.id !== "" && isObject(value.form)
    && typeof value.form.id === "string" && Number.isInteger(value.form.version) && isObject(value.site)
    && isObject(value.answers);
}

// What is wrong with a file for this app ("not_export", "newer_version", "damaged"), or "" when
// it can be restored: the parts of the schema that restoring relies on.
export function exportFileProblem(file) {
  if (!isObject(file) || file.format !== EXPORT_FORMAT) return "not_export";
  if (Number.isInteger(file.format_version) && file.format_version > EXPORT_FORMAT_VERSION) return "newer_version";
  if (file.format_version !== EXPORT_FORMAT_VERSION) return "not_export";
  const shaped = isObject(file.person) && typeof file.person.id === "string"
    && Array.isArray(file.outbox) && file.outbox.every(isMutation)
    && Array.isArray(file.attention) && file.attention.every((item) => isObject(item) && isMutation(item.mutation)
      && isObject(item.result) && typeof item.result.status === "string")
    && Array.isArray(file.drafts) && file.drafts.every(isDraft)
    && isObject(file.photos) && Object.entries(file.photos).every(([sha, photo]) => SHA256_NAME.test(sha)
      && isObject(photo) && typeof photo.type === "string" && typeof photo.base64 === "string");
  return shaped ? "" : "damaged";
}

function bytesOf(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

// The outbox fields the app shows (kind, title, site) for an item restored from a file.
async function shownFields(data) {
  const form = data.form ? await replicaGet("forms", `${data.form.id}@${data.form.version}`) : null;
  const shown = { kind: form ? form.kind : "", title: form ? form.title : String((data.form && data.form.id) || "") };
  if (data.new_site) return { ...shown, new_site: String(data.new_site.name || "") };
  const site = data.site_id ? await replicaGet("sites", data.site_id) : null;
  return { ...shown, site_name: site ? site.name : "" };
}

function pushedFields(entry) {
  return { mid: entry.mid, seq: entry.seq, type: entry.type, payload_hash: entry.payload_hash, data: entry.data };
}

// Bring back an export file's drafts, waiting items, attention items and photos on this phone,
// for the person it belongs to only. Items keep their mid and frozen mutation, so nothing is
// sent twice; what this phone already holds is skipped. Returns {refused} or the counts.
export async function restoreUnsent(file, person) {
  const problem = exportFileProblem(file);
  if (problem) return { refused: problem };
  if (!person || file.person.id !== person.id) return { refused: "other_person" };
  const now = Date.now();
  // Everything that needs awaiting is done before the transaction: photo hashes, display fields.
  const blobs = [];
  for (const [sha256, photo] of Object.entries(file.photos)) {
    let bytes;
    try {
      bytes = bytesOf(photo.base64);
    } catch (unreadable) {
      return { refused: "damaged" };
    }
    if ((await sha256Hex(bytes)) !== sha256) return { refused: "damaged" };
    blobs.push({ sha256, bytes, type: photo.type, uploaded: false, kept_at: now });
  }
  const outbox = [];
  for (const entry of file.outbox) {
    const mutation = pushedFields(entry);
    outbox.push({ mid: mutation.mid, seq: mutation.seq, mutation, photos: mutation.data.answers ? photosOf(mutation.data) : [],
      queued_at: typeof entry.queued_at === "number" ? entry.queued_at : now, ...(await shownFields(mutation.data)) });
  }
  const attention = [];
  for (const entry of file.attention) {
    const mutation = pushedFields(entry.mutation);
    attention.push({ mid: mutation.mid, seq: mutation.seq, mutation, photos: mutation.data.answers ? photosOf(mutation.data) : [],
      queued_at: typeof entry.noted_at === "number" ? entry.noted_at : now, ...(await shownFields(mutation.data)),
      result: entry.result, settled_at: typeof entry.noted_at === "number" ? entry.noted_at : now });
  }
  const stores = [STORES.drafts, STORES.outbox, STORES.sent, STORES.attention, STORES.blobs];
  return transact(stores, "readwrite", async (t) => {
    const counts = { drafts: 0, outbox: 0, attention: 0, skipped: 0 };
    const known = new Set();
    const visits = new Set(); // submission ids queued, sent or refused here: a draft of one is done
    for (const name of [STORES.outbox, STORES.sent, STORES.attention]) {
      for (const item of await requestDone(t.objectStore(name).getAll())) {
        known.add(item.mid);
        if (item.mutation && item.mutation.data) visits.add(item.mutation.data.id);
      }
    }
    for (const [list, name, counted] of [[outbox, STORES.outbox, "outbox"], [attention, STORES.attention, "attention"]]) {
      for (const item of list) {
        if (known.has(item.mid)) {
          counts.skipped += 1;
          continue;
        }
        known.add(item.mid);
        visits.add(item.mutation.data.id);
        t.objectStore(name).put(item);
        counts[counted] += 1;
      }
    }
    for (const draft of file.drafts) {
      const already = await requestDone(t.objectStore(STORES.drafts).getKey(draft.id));
      if (already !== undefined || visits.has(draft.id)) {
        counts.skipped += 1;
        continue;
      }
      t.objectStore(STORES.drafts).put(draft);
      counts.drafts += 1;
    }
    for (const blob of blobs) {
      if ((await requestDone(t.objectStore(STORES.blobs).getKey(blob.sha256))) === undefined) t.objectStore(STORES.blobs).put(blob);
    }
    return counts;
  });
}
