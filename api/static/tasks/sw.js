/* Service worker of the tasks page (scope /tasks): the page openable with no connection.
 * Moves are not touched: tasks.js queues and resends them itself (IndexedDB). */
'use strict';

importScripts('/static/field/shell-sw.js');

self.gridmapServeShell('gridmap-tasks-v2', 'gridmap-tasks', [
  '/tasks',
  '/static/field/field.js',
  '/static/tasks/tasks-common.js',
  '/static/tasks/tasks.js',
  '/static/tasks/patrol.js',
  '/static/tasks/tasks.css',
  '/static/report/icon.svg',
  '/static/map/leaflet-1.9.4/leaflet.js',
  '/static/map/leaflet-1.9.4/leaflet.css',
]);
