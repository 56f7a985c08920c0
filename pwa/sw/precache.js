// What the service worker keeps, under cache names that carry the build version.
// BUILD (version, scope, precache list) is written at the top of /app/sw.js by the server.

export const CACHE_PREFIX = "kerbside-";
export const STATIC_CACHE = `${CACHE_PREFIX}static-${BUILD.version}`;
export const RUNTIME_CACHE = `${CACHE_PREFIX}runtime`;
export const SHELL_URL = BUILD.scope;
export const PRECACHE_URLS = BUILD.precache;

// Fetch every file fresh (not from the HTTP cache) and keep them all, or fail the install.
export async function precacheAll() {
  const cache = await caches.open(STATIC_CACHE);
  await cache.addAll(PRECACHE_URLS.map((url) => new Request(url, { cache: "reload" })));
}

// Only our own caches that this version does not use; other apps' caches are left alone.
export async function deleteStaleCaches() {
  const expected = new Set([STATIC_CACHE, RUNTIME_CACHE]);
  const names = await caches.keys();
  await Promise.all(names.filter((name) => name.startsWith(CACHE_PREFIX) && !expected.has(name)).map((name) => caches.delete(name)));
}
