/* The report page's small map: the worker's grids, the located point as a draggable pin with its
 * accuracy circle, and the worker's own reports (sent and queued). No tiles: only the service's data.
 *
 * It talks with report.js through document events: `gridmap:position` (a GPS fix), `gridmap:preview`
 * (the /locate answer for the point), `gridmap:sent` and `gridmap:queue` (the worker's reports); it
 * sends `gridmap:pin` when the worker drags the pin. A signed-in worker whose point lies outside
 * their own unit is warned before sending (the report is still accepted).
 * Server and user text is only ever shown with textContent.
 */
'use strict';

(() => {
  const GRIDS_CACHE = 'gridmap-report.grids';
  const MINE = 'gridmap-report.mine';
  const MINE_MAX = 50;
  const $ = (id) => document.getElementById(id);
  const state = { map: null, pin: null, circle: null, mine: null, me: null, queued: [] };

  // field/field.js; storage full or off: the map still works without its cache.
  const { readJson: read, writeJson: write } = window.GridmapField;

  async function getJson(url) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    return r.ok ? r.json() : null;
  }

  /** Who is signed in (null for an anonymous report) and the grids of their unit. */
  async function loadMine() {
    let me = null;
    try {
      const who = await getJson('/report/me');
      me = who && who.signed_in ? who : null;
    } catch (e) {
      const cached = read(GRIDS_CACHE, null);
      me = cached ? cached.me : null;
    }
    state.me = me;
    if (!me) return;
    let grids = null;
    const cached = read(GRIDS_CACHE, null);
    if (cached && cached.me && cached.me.unit_code === me.unit_code) grids = cached.grids;
    try {
      const unit = me.unit_code;
      const fresh = unit.length >= 15
        ? { type: 'FeatureCollection', features: [await getJson(`/grids/${unit}`)].filter(Boolean) }
        : await getJson(`/grids?parent=${encodeURIComponent(unit)}&level=grid&limit=500`);
      if (fresh) {
        grids = fresh;
        write(GRIDS_CACHE, { me, grids });
      }
    } catch (e) {
      /* offline: the cached outlines */
    }
    if (grids && state.map) {
      const layer = window.L.geoJSON(grids, { style: { color: '#1d4f91', weight: 2, fillOpacity: 0.06 }, interactive: false });
      layer.addTo(state.map);
      if (!state.pin && layer.getBounds().isValid()) state.map.fitBounds(layer.getBounds());
    }
  }

  function makeMap() {
    if (!window.L || !$('report-map')) return;
    const L = window.L;
    state.map = L.map('report-map', { attributionControl: false, zoomControl: true }).setView([33.43, 114.9], 13);
    state.mine = L.layerGroup().addTo(state.map);
    window.gridmapReportMap = state.map; // for debugging and the browser tests
  }

  function onPosition(event) {
    const p = event.detail;
    if (!state.map) return;
    const L = window.L;
    const at = [p.lat, p.lon];
    if (!state.pin) {
      const icon = L.divIcon({ className: '', html: '<div class="report-pin"></div>', iconSize: [0, 0] });
      state.pin = L.marker(at, { draggable: true, autoPan: true, icon, keyboard: true, title: '拖动修正位置 drag to correct' });
      state.pin.addTo(state.map);
      state.pin.on('dragend', () => {
        const ll = state.pin.getLatLng();
        setMethod('pin');
        document.dispatchEvent(new CustomEvent('gridmap:pin', { detail: { lon: ll.lng, lat: ll.lat } }));
      });
      state.circle = L.circle(at, { radius: p.accuracy || 0, color: '#a4262c', weight: 1, fillOpacity: 0.1, interactive: false });
      state.circle.addTo(state.map);
    } else {
      state.pin.setLatLng(at);
      state.circle.setLatLng(at).setRadius(p.accuracy || 0);
    }
    setMethod('gps');
    state.map.setView(at, Math.max(state.map.getZoom(), 16));
  }

  function setMethod(method) {
    const node = $('loc-method');
    if (!node) return;
    node.dataset.method = method;
    node.textContent = method === 'pin' ? '位置来源：手动标记 (moved pin)' : '位置来源：GPS';
  }

  function onPreview(event) {
    const answer = event.detail || {};
    const warning = $('outside-warning');
    if (!warning) return;
    const unit = state.me && state.me.unit_code;
    const code = answer.grid && answer.grid.code;
    // Only a signed-in worker has "own grids"; a citizen's report is never outside them.
    warning.hidden = !unit || state.me.role !== 'field_worker' || Boolean(code && code.startsWith(unit));
  }

  function renderMine() {
    const sent = read(MINE, []);
    const list = $('mine-list');
    if (!list) return;
    const rows = [
      ...state.queued.map((q) => ({ state: 'queued', number: '—', text: q.text, lon: q.lon, lat: q.lat })),
      ...sent.map((s) => ({ state: 'sent', ...s })),
    ];
    $('mine').hidden = rows.length === 0;
    list.replaceChildren(
      ...rows.map((r) => {
        const li = document.createElement('li');
        li.dataset.state = r.state;
        const head = document.createElement('div');
        head.className = 'head';
        head.textContent = r.text || '';
        const meta = document.createElement('div');
        meta.className = 'meta';
        meta.textContent = r.state === 'sent' ? `案件编号 ${r.number}` : '未发送 not sent yet';
        li.append(head, meta);
        return li;
      }),
    );
    if (!state.mine) return;
    state.mine.clearLayers();
    for (const r of rows) {
      if (typeof r.lon !== 'number' || typeof r.lat !== 'number') continue;
      const color = r.state === 'sent' ? '#1d4f91' : '#c98a00';
      const m = window.L.circleMarker([r.lat, r.lon], { radius: 6, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1 });
      m.bindTooltip(r.state === 'sent' ? `${r.number}` : '待发送 queued');
      m.addTo(state.mine);
    }
  }

  function onSent(event) {
    const c = event.detail;
    const sent = read(MINE, []).filter((s) => s.id !== c.id);
    sent.unshift({ id: c.id, number: c.number, lon: c.lon, lat: c.lat, text: String(c.text || '').slice(0, 80) });
    write(MINE, sent.slice(0, MINE_MAX));
    renderMine();
  }

  function onQueue(event) {
    state.queued = event.detail || [];
    renderMine();
  }

  function start() {
    makeMap();
    document.addEventListener('gridmap:position', onPosition);
    document.addEventListener('gridmap:preview', onPreview);
    document.addEventListener('gridmap:sent', onSent);
    document.addEventListener('gridmap:queue', onQueue);
    renderMine();
    loadMine();
  }

  // Before report.js starts (both are deferred; this one comes first), so no event is missed.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
