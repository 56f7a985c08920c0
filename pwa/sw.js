// The service worker: listeners only. Strategies, the precache list and sync live in modules.

import { precacheAll, deleteStaleCaches, PRECACHE_URLS } from "./sw/precache.js";
import { isApi, inScope, shellFirst, cacheFirst, networkFirst } from "./sw/strategies.js";
import { syncNow, onSyncChange, SYNC_TAG } from "./js/sync.js";

// A new version installs its files, then waits for the person to choose to reload.
self.addEventListener("install", (event) => {
  event.waitUntil(precacheAll());
});

self.addEventListener("activate", (event) => {
  event.waitUntil(deleteStaleCaches());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "skip-waiting") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || isApi(url) || !inScope(url)) return;
  if (request.mode === "navigate") {
    event.respondWith(shellFirst(request));
  } else if (PRECACHE_URLS.includes(url.pathname) || url.pathname.startsWith(`${BUILD.scope}assets/`)) {
    event.respondWith(cacheFirst(request));
  } else {
    event.respondWith(networkFirst(request));
  }
});

// Outcomes after which the outbox may still hold what the push did not get through.
const SYNC_NOT_THROUGH = ["offline", "failed", "server_busy", "waiting"];

// Background Sync: the browser wakes us when the connection is back, even with the app closed.
// The promise rejects when the push did not go through, so the browser tries again later.
async function backgroundSync(tag) {
  if (tag !== SYNC_TAG) return "ignored";
  const outcome = await syncNow({ force: true, version: BUILD.version });
  if (SYNC_NOT_THROUGH.includes(outcome.status)) throw new Error(`Not sent yet (${outcome.status}); the browser will try again.`);
  return outcome.status;
}

// A module's names are not the worker's globals: the handler is named on `self` so DevTools
// (and the browser tests, e2e/test_pwa_background_sync.py) can call the real one.
self.kerbside = { backgroundSync, SYNC_TAG };

self.addEventListener("sync", (event) => {
  event.waitUntil(backgroundSync(event.tag));
});

onSyncChange(async (outcome) => {
  // Pages opened before the first install are not controlled, and must hear it too.
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) client.postMessage({ type: "synced", outcome });
});
