/* The dispatcher's workbench (调度台): the map beside the queue, the case's small map, the live
   case stream, and the few behaviours htmx attributes do not express. No inline code (CSP 'self');
   every text from the server is set with textContent, never as HTML. */
(function () {
  'use strict';

  // Leaflet 1.8 removed L.DomEvent.fakeStop, which VectorGrid 1.3 still calls on feature clicks.
  if (window.L && !L.DomEvent.fakeStop) L.DomEvent.fakeStop = function () { return true; };

  var Desk = window.GridDesk = { map: null, caseLayer: null, outline: null, markers: {}, pending: {}, readyAt: null };
  var LIGHT_COLOURS = { red: '#d62728', yellow: '#f2b701', green: '#2ca02c' };
  var STATUS_LABELS = {};
  try { STATUS_LABELS = JSON.parse(document.body.dataset.statusLabels || '{}'); } catch (e) { /* keys only */ }

  function unitTiles(query, mine) {
    var styles = {
      county: function () { return { weight: 3, color: '#333', opacity: 0.9, fill: false }; },
      street: function () { return { weight: 2, color: '#6a3d9a', opacity: 0.8, fill: false }; },
      community: function () { return { weight: 1, color: '#6a3d9a', opacity: 0.6, dashArray: '4 3', fill: false }; },
      grid: function (p) {
        var own = mine && p.code === mine;
        // Fills would add up where the tiles' clipped pieces overlap: outlines only, the case's grid bold.
        return { weight: own ? 3 : 0.7, color: own ? '#d62728' : '#4e79a7', opacity: 0.9, fill: false };
      },
      micro_grid: function () { return { weight: 0.4, color: '#999', opacity: 0.7, fill: false }; }
    };
    return L.vectorGrid.protobuf('/map/tiles/{z}/{x}/{y}.pbf' + query + (query ? '&' : '?') + 'size=512', {
      rendererFactory: L.svg.tile, vectorTileLayerStyles: styles, interactive: false,
      tileSize: 512, minNativeZoom: 1, maxNativeZoom: 17, maxZoom: 21
    });
  }

  function newMap(node) {
    return L.map(node, { preferCanvas: true, zoomControl: true, attributionControl: false });
  }

  function fitUnit(map, code) {
    var fallback = function () { map.setView([33.44, 114.9], 10); };
    if (!code) { fallback(); return Promise.resolve(); }
    return fetch('/map/search?q=' + encodeURIComponent(code), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : { units: [] }; })
      .then(function (answer) {
        var unit = (answer.units || []).filter(function (u) { return u.code === code; })[0];
        if (unit) map.fitBounds([[unit.bbox[1], unit.bbox[0]], [unit.bbox[3], unit.bbox[2]]]);
        else fallback();
      }, fallback);
  }

  /** The grid's outline on `map` (replacing the last one), from GET /grids/{code}. */
  function outlineGrid(map, code, fit) {
    if (Desk.outline) { map.removeLayer(Desk.outline); Desk.outline = null; }
    if (!code) return;
    fetch('/grids/' + encodeURIComponent(code), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (feature) {
        if (!feature) return;
        Desk.outline = L.geoJSON(feature, { style: { color: '#d62728', weight: 3, fill: false, dashArray: '6 4' } }).addTo(map);
        if (fit) map.fitBounds(Desk.outline.getBounds().pad(0.15), { maxZoom: 17 });  // the whole grid in view
      });
  }

  // ------------------------------------------------------------------ the workbench's map
  // The map shows the cases of the queue's page (what the filters chose), drawn from the rows: no
  // request of its own, and it follows every filter change and live refresh. (All open cases of a
  // county — /map/cases, thousands — are the live map's job, /map.)
  function drawQueueMarkers() {
    if (!Desk.caseLayer) return;
    Desk.caseLayer.clearLayers();
    Desk.markers = {};
    document.querySelectorAll('#queue tr[data-case-id]').forEach(function (row) {
      var lat = parseFloat(row.dataset.lat), lon = parseFloat(row.dataset.lon);
      if (!isFinite(lat) || !isFinite(lon)) return;
      var overdue = row.dataset.overdue === 'true';
      var marker = L.circleMarker([lat, lon], {
        radius: overdue ? 8 : 6, weight: overdue ? 2 : 1, color: overdue ? '#7f0000' : '#222',
        fillColor: LIGHT_COLOURS[row.dataset.light] || '#888', fillOpacity: 0.9
      });
      marker.bindTooltip(textNode(row.dataset.number));  // text, never HTML
      marker.on('click', function () { openCase(row.dataset.caseId, false); });
      Desk.markers[row.dataset.caseId] = marker;
      Desk.caseLayer.addLayer(marker);
    });
  }

  function textNode(text) {
    var span = document.createElement('span');
    span.textContent = text;
    return span;
  }

  function initDeskMap(node) {
    Desk.unit = node.dataset.unit || '';
    var map = Desk.map = newMap(node);
    var query = Desk.unit.length > 6 ? '?unit=' + encodeURIComponent(Desk.unit) : '';
    var units = unitTiles(query).addTo(map);
    var drawn = new Promise(function (resolve) { units.once('load', resolve); });
    Desk.caseLayer = L.layerGroup().addTo(map);
    drawQueueMarkers();
    // Ready (for people: usable; for tests and the benchmark: measured) once the unit's tiles drew.
    fitUnit(map, Desk.unit).then(function () { return drawn; }).then(function () {
      Desk.readyAt = performance.now();
      document.body.dataset.ready = 'true';
    });
  }

  /** Show a case: centre the map on it, outline its grid, and open it in the side panel. */
  function openCase(id, fromRow) {
    var row = document.querySelector('#queue tr[data-case-id="' + id + '"]');
    var marker = Desk.markers[id];
    var latlng = row ? [parseFloat(row.dataset.lat), parseFloat(row.dataset.lon)] : (marker && marker.getLatLng());
    if (Desk.map && latlng) Desk.map.setView(latlng, Math.max(Desk.map.getZoom(), 16));
    if (Desk.map) outlineGrid(Desk.map, row ? row.dataset.grid : null, true);
    document.querySelectorAll('#queue tr.selected').forEach(function (r) { r.classList.remove('selected'); });
    if (row) row.classList.add('selected');
    htmx.ajax('GET', '/desk/cases/' + id, { target: '#side', swap: 'innerHTML' }).then(function () {
      var panel = document.querySelector('#side [data-case-panel]');
      if (panel && Desk.map && !row) outlineGrid(Desk.map, panel.dataset.grid, false);
      if (!fromRow && panel) panel.querySelector('h1 a').focus();
    });
  }

  document.addEventListener('click', function (event) {
    var row = event.target.closest('#queue tr[data-case-id]');
    if (row && !event.target.closest('a')) openCase(row.dataset.caseId, true);
    var cancel = event.target.closest('[data-action="cancel-move"]');
    if (cancel) cancel.closest('.move-form-box').replaceChildren();
  });
  document.addEventListener('keydown', function (event) {
    var row = event.target.closest && event.target.closest('#queue tr[data-case-id]');
    if (row && (event.key === 'Enter' || event.key === ' ')) { event.preventDefault(); openCase(row.dataset.caseId, true); }
  });

  // A response template goes into the note (added to what is there, never replacing it).
  document.addEventListener('change', function (event) {
    var pick = event.target.closest('select.template-pick');
    if (!pick || !pick.value) return;
    var note = pick.form.querySelector('textarea[name="note"]');
    note.value = note.value ? note.value + '\n' + pick.value : pick.value;
    pick.value = '';
    note.focus();
  });

  // ------------------------------------------------------------------ the case page's small map
  function initCaseMap(node) {
    var lat = parseFloat(node.dataset.lat), lon = parseFloat(node.dataset.lon), grid = node.dataset.grid;
    var map = newMap(node);
    map.setView([lat, lon], 16);
    unitTiles(grid ? '?near=' + encodeURIComponent(grid) : '', grid).addTo(map);
    L.circleMarker([lat, lon], { radius: 8, weight: 2, color: '#fff', fillColor: '#d62728', fillOpacity: 1 }).addTo(map);
    Desk.map = map;
    document.body.dataset.ready = 'true';
  }

  // ------------------------------------------------------------------ live: the case stream
  function formHasTyping(panel) {
    return Array.prototype.some.call(panel.querySelectorAll('.move-form textarea, .move-form input:not([type=hidden]), .move-form select:not(.template-pick)'),
      function (field) { return field.value && field.value.trim() !== ''; });
  }

  function banner(text) {
    var node = document.getElementById('live-banner');
    if (!node) return;
    node.textContent = text;
    node.hidden = false;
  }

  function caseChanged(data) {
    document.querySelectorAll('[data-case-panel][data-case-id="' + data.id + '"]').forEach(function (panel) {
      if (Desk.pending[data.id] || panel.dataset.status === data.status) return;
      var label = (STATUS_LABELS[data.status] || '') + ' ' + data.status;
      banner('案件 ' + data.number + ' 已被他人更新为「' + label + '」，请核对后再操作 · ' +
             'Someone else moved case ' + data.number + ' to ' + data.status + ': check before acting');
      if (formHasTyping(panel)) return;  // keep what is being typed; the move will say what changed
      htmx.ajax('GET', '/desk/cases/' + data.id, { target: panel, swap: 'outerHTML' });
    });
  }

  var queueTimer = null, lastQueue = 0;
  function refreshQueue() {
    // At most one refresh a second, however many cases change: the queue is one query.
    if (queueTimer) return;
    var wait = Math.max(0, 1000 - (Date.now() - lastQueue));
    queueTimer = setTimeout(function () {
      queueTimer = null;
      lastQueue = Date.now();
      var queue = document.getElementById('queue');
      if (!queue) return;
      var selected = queue.querySelector('tr.selected');
      var keep = selected ? selected.dataset.caseId : null;
      htmx.ajax('GET', '/desk' + location.search, { target: '#queue', swap: 'innerHTML' }).then(function () {
        if (keep) {
          var row = document.querySelector('#queue tr[data-case-id="' + keep + '"]');
          if (row) row.classList.add('selected');
        }
      });
    }, wait);
  }

  function startStream() {
    if (!window.EventSource) return;
    var source = new EventSource('/cases/stream');
    var onEvent = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      caseChanged(data);
      if (document.getElementById('queue')) refreshQueue();
    };
    source.addEventListener('created', onEvent);
    source.addEventListener('updated', onEvent);
    Desk.stream = source;
  }

  // Our own move: its events are not "someone else's".
  document.addEventListener('htmx:beforeRequest', function (event) {
    var form = event.detail.elt;
    if (form.classList && form.classList.contains('move-form')) Desk.pending[form.dataset.caseId] = true;
  });
  document.addEventListener('htmx:afterRequest', function (event) {
    var form = event.detail.elt;
    if (form.classList && form.classList.contains('move-form')) {
      var id = form.dataset.caseId;
      setTimeout(function () { delete Desk.pending[id]; }, 1500);  // the stream's echo of it comes within this
      if (event.detail.successful) document.getElementById('live-banner').hidden = true;
    }
  });
  // A move form that came back with its message: put the focus on the message.
  document.addEventListener('htmx:afterSwap', function (event) {
    if (event.detail.target.id === 'queue') drawQueueMarkers();
    var alert = event.detail.target.querySelector && event.detail.target.querySelector('.move-form [role="alert"]');
    if (alert) { alert.tabIndex = -1; alert.focus(); return; }
    var first = event.detail.target.querySelector && event.detail.target.querySelector('.move-form textarea, .move-form input:not([type=hidden]), .move-form select');
    if (first && event.detail.target.classList.contains('move-form-box')) first.focus();
  });

  function start() {
    var deskMap = document.getElementById('desk-map');
    if (deskMap) initDeskMap(deskMap);
    var caseMap = document.getElementById('case-map');
    if (caseMap) initCaseMap(caseMap);
    if (document.body.dataset.live === 'true') startStream();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}());
