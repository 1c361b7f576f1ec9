/* Service worker of the field worker page: keeps the page itself openable with no connection.
 *
 * Only the page and its own assets are handled (network first, so a new release is used at once;
 * the cached copy when the network fails). Everything else, POST /cases included, is not touched:
 * reports are queued and resent by the page itself (report.js, IndexedDB).
 */
'use strict';

const CACHE = 'gridmap-report-v2';
const SHELL = [
  '/report',
  '/static/report/report.js',
  '/static/report/report.css',
  '/static/report/icon.svg',
  '/static/report/manifest.json',
  '/static/report/reportmap.js',
  '/static/report/reportmap.css',
  '/static/tasks/patrol.js',
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
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('gridmap-report') && k !== CACHE).map((k) => caches.delete(k))))
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
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((cached) => cached || Response.error())),
  );
});
