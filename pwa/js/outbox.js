// Drafts become frozen outbox items; the unsent work can be exported as a file.

import { payloadHash } from "./canonical.js";
import { STORES, transact, requestDone, getAll, getOne, putOne, deleteOne, getMeta } from "./db.js";

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

export function saveDraft(draft) {
  return putOne(STORES.drafts, { ...draft, updated_at: Date.now() });
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

// The submission.create data the server expects, from a draft.
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
    const mutation = { mid, seq, type: "submission.create", payload_hash: hash, data };
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

// Everything not yet accepted, with its photos, as one JSON document for a coordinator.
export async function exportUnsent() {
  const drafts = await getAll(STORES.drafts);
  const outbox = await getAll(STORES.outbox);
  const attention = await getAll(STORES.attention);
  const person = (await getMeta("person")) || {};
  const wanted = new Set([...outbox, ...attention].flatMap((item) => item.photos || []));
  for (const draft of drafts) for (const answer of Object.values(draft.answers)) for (const sha of answer.photos || []) wanted.add(sha);
  const photos = {};
  for (const sha of wanted) {
    const blob = await getOne(STORES.blobs, sha);
    if (blob) photos[sha] = { type: blob.type, base64: base64(blob.bytes) };
  }
  return {
    format: "kerbside-unsent",
    format_version: 1,
    exported_at: new Date().toISOString(),
    device_id: (await getMeta("device_id")) || null,
    person: { id: person.id || null, display_name: person.display_name || "" },
    outbox: outbox.sort((a, b) => a.seq - b.seq).map((item) => item.mutation),
    attention: attention.map((item) => ({ mutation: item.mutation, result: item.result })),
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
