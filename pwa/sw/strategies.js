// How each kind of request is answered. /api/ is never cached: sync talks to the server.

import { STATIC_CACHE, RUNTIME_CACHE, SHELL_URL } from "./precache.js";

export function isApi(url) {
  return url.pathname.startsWith("/api/");
}

export function inScope(url) {
  return url.pathname.startsWith(SHELL_URL);
}

// Every page under /app/ is the one app shell: from the cache, the network only if it is missing.
export async function shellFirst(request) {
  const cached = await caches.match(SHELL_URL, { cacheName: STATIC_CACHE });
  if (cached) return cached;
  return fetch(request);
}

// Hashed bundles, icons and the manifest never change under one name: cache first.
export async function cacheFirst(request) {
  const cached = await caches.match(request, { cacheName: STATIC_CACHE });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(RUNTIME_CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

// Anything else in scope: the network, falling back to what was kept at runtime.
export async function networkFirst(request) {
  try {
    const response = await fetch(request);
    if (response.ok) {
      const cache = await caches.open(RUNTIME_CACHE);
      await cache.put(request, response.clone());
    }
    return response;
  } catch (error) {
    const cached = await caches.match(request, { cacheName: RUNTIME_CACHE });
    if (cached) return cached;
    throw error;
  }
}
