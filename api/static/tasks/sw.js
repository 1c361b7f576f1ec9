/* Service worker of the tasks page: keeps the page and its assets openable with no connection.
 *
 * Network first (a new release is used at once), the cached copy when the network fails. Moves
 * are not touched: the page queues and resends them itself (tasks.js, IndexedDB).
 */
'use strict';

const CACHE = 'gridmap-tasks-v1';
const SHELL = [
  '/tasks',
  '/static/tasks/tasks-common.js',
  '/static/tasks/tasks.js',
  '/static/tasks/patrol.js',
  '/static/tasks/tasks.css',
  '/static/report/icon.svg',
  '/static/map/leaflet-1.9.4/leaflet.js',
  '/static/map/leaflet-1.9.4/leaflet.css',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('gridmap-tasks') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && !response.redirected) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((cached) => cached || Response.error())),
  );
});
