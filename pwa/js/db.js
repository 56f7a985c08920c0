// The one IndexedDB module: names, versions, upgrades and a handful of verbs.

export const DB_NAME = "kerbside";
export const DB_VERSION = 2;
export const STORES = {
  meta: "meta", // token, person, cursor, epoch, sync state: key -> value
  drafts: "drafts", // forms being filled, keyed by id
  outbox: "outbox", // frozen mutations waiting to be sent, keyed by mid
  sent: "sent", // what was sent in the last 30 days, to push again after a server restore
  attention: "attention", // rejected items and conflicts, with the server's message
  blobs: "blobs", // photo bytes, keyed by SHA-256
  replica: "replica", // areas, sites, agreements, forms, actions, my_submissions, device
};

let connection = null;
// The open database once it is open: a write can then start at once, inside a pagehide handler.
let openDatabase = null;

// Before version 2, opening a form stored an empty draft at once; such a draft holds nothing.
function untouchedDraft(draft) {
  const site = draft.site || {};
  const answered = Object.values(draft.answers || {}).some((answer) => answer && (answer.grade
    || String(answer.value || "").trim() || String(answer.note || "").trim() || (answer.photos || []).length));
  return !answered && !site.site_id && !String(site.new_name || "").trim() && !String(draft.notes || "").trim();
}

function upgradeSchema(database, oldVersion, transaction) {
  // One step per version; a step never deletes what an earlier one stored, except
  // drafts that hold nothing a person entered.
  if (oldVersion < 1) {
    database.createObjectStore(STORES.meta);
    database.createObjectStore(STORES.drafts, { keyPath: "id" });
    database.createObjectStore(STORES.outbox, { keyPath: "mid" }).createIndex("seq", "seq");
    database.createObjectStore(STORES.sent, { keyPath: "mid" }).createIndex("sent_at", "sent_at");
    database.createObjectStore(STORES.attention, { keyPath: "mid" });
    database.createObjectStore(STORES.blobs, { keyPath: "sha256" });
    database.createObjectStore(STORES.replica, { keyPath: "key" }).createIndex("collection", "collection");
  }
  if (oldVersion < 2) {
    // Drafts are now created on the first change: the empty ones opening a form left go.
    transaction.objectStore(STORES.drafts).openCursor().onsuccess = (event) => {
      const cursor = event.target.result;
      if (!cursor) return;
      if (untouchedDraft(cursor.value)) cursor.delete();
      cursor.continue();
    };
  }
}

export function openDb() {
  if (!connection) {
    connection = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = (event) => upgradeSchema(request.result, event.oldVersion, request.transaction);
      request.onsuccess = () => {
        const database = request.result;
        // A newer app version wants to upgrade: let it, and reopen on next use.
        database.onversionchange = () => {
          database.close();
          connection = null;
          openDatabase = null;
        };
        openDatabase = database;
        resolve(database);
      };
      request.onerror = () => {
        connection = null;
        reject(request.error);
      };
    });
  }
  return connection;
}

export function requestDone(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// Run `work(transaction)`; resolves with its value once the transaction has committed.
// `work` may await only requests of this transaction, never other work.
export async function transact(storeNames, mode, work) {
  const database = await openDb();
  return new Promise((resolve, reject) => {
    const transaction = database.transaction(storeNames, mode);
    let value;
    transaction.oncomplete = () => resolve(value);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error || new Error("transaction aborted"));
    Promise.resolve()
      .then(() => work(transaction))
      .then(
        (result) => {
          value = result;
        },
        (error) => {
          try {
            transaction.abort();
          } catch (ignored) {
            // already finished
          }
          reject(error);
        },
      );
  });
}

export function getOne(store, key) {
  return transact([store], "readonly", (t) => requestDone(t.objectStore(store).get(key)));
}

export function getAll(store) {
  return transact([store], "readonly", (t) => requestDone(t.objectStore(store).getAll()));
}

export function getAllByIndex(store, index, query) {
  return transact([store], "readonly", (t) => requestDone(t.objectStore(store).index(index).getAll(query)));
}

export function putOne(store, value) {
  return transact([store], "readwrite", (t) => requestDone(t.objectStore(store).put(value)));
}

// Put one value in a transaction started now (not after an await) and committed at once:
// the page may be closing, and a transaction left to commit by itself later can be lost.
export function putNow(store, value) {
  let transaction;
  try {
    transaction = openDatabase && openDatabase.transaction([store], "readwrite");
  } catch (closing) {
    transaction = null; // the connection is closing for an upgrade: go the ordinary way
  }
  if (!transaction) return putOne(store, value);
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error || new Error("transaction aborted"));
    transaction.objectStore(store).put(value);
    if (transaction.commit) transaction.commit();
  });
}

export function deleteOne(store, key) {
  return transact([store], "readwrite", (t) => requestDone(t.objectStore(store).delete(key)));
}

export function countOf(store) {
  return transact([store], "readonly", (t) => requestDone(t.objectStore(store).count()));
}

export function getMeta(key) {
  return getOne(STORES.meta, key);
}

export function setMeta(key, value) {
  return transact([STORES.meta], "readwrite", (t) => requestDone(t.objectStore(STORES.meta).put(value, key)));
}

export function deleteMeta(key) {
  return deleteOne(STORES.meta, key);
}

export function clearEverything() {
  const names = Object.values(STORES);
  return transact(names, "readwrite", (t) => Promise.all(names.map((name) => requestDone(t.objectStore(name).clear()))));
}

export function replicaKey(collection, id) {
  return `${collection}/${id}`;
}

// A record as the app uses it: the change that brought it names its id, and a record's own
// `id` (a form's, shared by its versions) is kept where it has one.
function replicaRecord(row) {
  return { id: row.id, ...row.data };
}

export async function replicaAll(collection) {
  const rows = await getAllByIndex(STORES.replica, "collection", collection);
  return rows.map(replicaRecord);
}

export async function replicaGet(collection, id) {
  const row = await getOne(STORES.replica, replicaKey(collection, id));
  return row ? replicaRecord(row) : null;
}
