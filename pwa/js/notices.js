// Messages from the coordinators ("device" records), and which of them this phone shows.
//
// A "was retired" message names a form version. It concerns only a phone that HAD that version:
// one that offered it to its person after a complete sync (the form is of a kind their roles
// fill, and it was published in the replica then). A new phone catching up for the first time,
// which meets the version already retired, never had it; nor did a mystery shopper's phone,
// which receives the street form but never offers it. Each message shows until the person
// dismisses it; the dismissal is kept here, in IndexedDB, so it is never shown again.

import { STORES, requestDone, getMeta, setMeta, replicaAll } from "./db.js";
import { FORM_ROLES, STAFF_ROLES } from "./protocol.js";

const OFFERED = "offered_forms"; // ["street@3", ...]: versions this phone offered after a complete sync
const DISMISSED = "dismissed_notices"; // ids of messages the person dismissed

function fills(person, kind) {
  const roles = new Set(((person && person.roles) || []).map((role) => role.role));
  return [...(FORM_ROLES[kind] || []), ...STAFF_ROLES].some((role) => roles.has(role));
}

// Inside the sync's own transaction, once a pull has caught up: note the versions offered now.
export async function noteOfferedForms(t) {
  const meta = t.objectStore(STORES.meta);
  const person = await requestDone(meta.get("person"));
  const forms = await requestDone(t.objectStore(STORES.replica).index("collection").getAll("forms"));
  const offered = new Set((await requestDone(meta.get(OFFERED))) || []);
  const before = offered.size;
  for (const row of forms) {
    const form = row.data || {};
    if (form.status === "published" && fills(person, form.kind)) offered.add(`${form.id}@${form.version}`);
  }
  if (offered.size !== before) meta.put([...offered], OFFERED);
}

function concernsThisPhone(notice, offered) {
  const form = notice && notice.form;
  if (!form) return true; // a message about no form version is for everyone it reached
  return offered.has(`${form.id}@${form.version}`);
}

// The messages to show on the home screen, oldest first.
export async function shownNotices() {
  const offered = new Set((await getMeta(OFFERED)) || []);
  const dismissed = new Set((await getMeta(DISMISSED)) || []);
  return (await replicaAll("device"))
    .filter((notice) => notice && notice.id && !dismissed.has(notice.id) && concernsThisPhone(notice, offered));
}

export async function dismissNotice(id) {
  const dismissed = new Set((await getMeta(DISMISSED)) || []);
  dismissed.add(id);
  await setMeta(DISMISSED, [...dismissed]);
}
