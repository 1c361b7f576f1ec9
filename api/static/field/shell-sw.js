/* The field pages' service workers share this (importScripts): keep a page and its assets openable
 * with no connection.
 *
 * Only the listed shell is handled: network first (a new release is used at once), the cached copy
 * when the network fails. Everything else (POST /cases, moves, patrol uploads) is not touched: the
 * pages queue and resend those themselves (IndexedDB / localStorage, with Idempotency-Keys).
 */
'use strict';

/** Serve `shell` (paths) from the cache `name` when offline; drop older caches named `prefix`*. */
self.gridmapServeShell = (name, prefix, shell) => {
  self.addEventListener('install', (event) => {
    event.waitUntil(
      caches
        .open(name)
        .then((cache) => cache.addAll(shell))
        .then(() => self.skipWaiting()),
    );
  });

  self.addEventListener('activate', (event) => {
    event.waitUntil(
      caches
        .keys()
        .then((keys) => Promise.all(keys.filter((k) => k.startsWith(prefix) && k !== name).map((k) => caches.delete(k))))
        .then(() => self.clients.claim()),
    );
  });

  self.addEventListener('fetch', (event) => {
    const request = event.request;
    const url = new URL(request.url);
    if (request.method !== 'GET' || url.origin !== self.location.origin || !shell.includes(url.pathname)) return;
    event.respondWith(
      fetch(request)
        .then((response) => {
          // A redirect (to /login, signed out) is not the page: keep the copy we have.
          if (response.ok && !response.redirected) {
            const copy = response.clone();
            caches.open(name).then((cache) => cache.put(url.pathname, copy));
          }
          return response;
        })
        .catch(() => caches.match(url.pathname).then((cached) => cached || Response.error())),
    );
  });
};
