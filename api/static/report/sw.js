/* Service worker of the field worker page (scope /report): the page openable with no connection.
 * Reports are not touched: report.js queues and resends them itself (IndexedDB). */
'use strict';

importScripts('/static/field/shell-sw.js');

self.gridmapServeShell('gridmap-report-v3', 'gridmap-report', [
  '/report',
  '/static/field/field.js',
  '/static/report/report.js',
  '/static/report/report.css',
  '/static/report/icon.svg',
  '/static/report/manifest.json',
  '/static/report/reportmap.js',
  '/static/report/reportmap.css',
  '/static/tasks/patrol.js',
  '/static/map/leaflet-1.9.4/leaflet.js',
  '/static/map/leaflet-1.9.4/leaflet.css',
]);
