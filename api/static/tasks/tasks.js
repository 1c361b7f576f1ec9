/* A handler's tasks: the open cases in their hands, one case's page, and its moves, offline too.
 *
 * Moves (with their 处置后 photos) are saved in IndexedDB before they are sent, each with an
 * Idempotency-Key made once for it, and sent one at a time in the order they were made: a move
 * sent twice (lost answer, reload) is made once. A move the service refuses meanwhile (409: the
 * case moved elsewhere; 403, 422) leaves the queue and is listed under "未能办理" for the worker:
 * nothing is dropped silently. Which moves a role may make comes from the service
 * (`moves_by_status` of GET /tasks/list, the lifecycle's table seen through the role), so a case
 * moved offline offers its next move without a second copy of the rule.
 * Server text is only ever shown with textContent.
 */
'use strict';

(() => {
  const DB_NAME = 'gridmap-tasks';
  const STORE = 'moves';
  const LIST_CACHE = 'gridmap-tasks.list';
  const DETAIL_CACHE = 'gridmap-tasks.detail.';
  const GRIDS_CACHE = 'gridmap-tasks.grids';
  const REJECTED = 'gridmap-tasks.rejected';
  const SEEN = 'gridmap-tasks.seen';
  const RETRY_EVERY_MS = 30 * 1000;

  const { STATUS, MOVE, LIGHT, el, newKey, errorText, timeText, readJson, writeJson } = window.GridmapTasks;

  const $ = (id) => document.getElementById(id);
  const state = {
    list: null, // the last GET /tasks/list answer (also kept in localStorage for offline use)
    current: null, // id of the case shown
    chosen: null, // the move being prepared
    photos: [], // after photos of the move being prepared: [{blob, name, type}]
    queued: [], // the outbox, in order
    seen: new Set(JSON.parse(localStorage.getItem(SEEN) || '[]')),
    fresh: new Set(), // tasks that arrived while the page was open
    map: null,
    sending: false,
    me: null,
  };

  // ---------------------------------------------------------------- helpers (more in tasks-common.js)

  function showOutcome(kind, text) {
    const box = $('outcome');
    box.dataset.kind = kind;
    box.textContent = text;
    box.hidden = !text;
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (response.status === 401) {
      window.location.assign(`/login?next=${encodeURIComponent('/tasks')}`);
      throw new Error('signed out');
    }
    if (!response.ok) throw new Error(errorText(await response.json().catch(() => null), response.status));
    return response.json();
  }

  // ---------------------------------------------------------------- the outbox (IndexedDB)

  let dbPromise = null;
  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = window.indexedDB.open(DB_NAME, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'key' });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      }).catch((err) => {
        showOutcome('error', `此浏览器无法离线保存，断网时请勿关闭页面。 Cannot queue offline (${err.message})`);
        return null;
      });
    }
    return dbPromise;
  }

  async function withStore(mode, action) {
    const db = await openDb();
    if (!db) return undefined;
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  }

  async function loadQueue() {
    const all = (await withStore('readonly', (s) => s.getAll())) || [];
    state.queued = all.sort((a, b) => a.order - b.order);
    renderQueue();
  }

  function renderQueue() {
    $('queue').hidden = state.queued.length === 0;
    $('queue-count').textContent = String(state.queued.length);
    const list = $('queue-list');
    list.replaceChildren(
      ...state.queued.map((m) => el('li', `${m.number || m.caseId} → ${MOVE[m.to] || m.to}` +
        (m.photos.length ? ` · ${m.photos.length} 张照片 photos` : ''))),
    );
  }

  function renderRejected() {
    const rejected = readJson(REJECTED, []);
    $('rejected').hidden = rejected.length === 0;
    $('rejected-list').replaceChildren(
      ...rejected.map((r) => {
        const li = el('li');
        li.dataset.caseId = String(r.caseId);
        li.append(el('strong', `${r.number || r.caseId} → ${MOVE[r.to] || r.to}`), el('br'), el('span', r.why));
        return li;
      }),
    );
  }

  /** The status a case will have once its queued moves are made (shown offline). */
  function projected(caseId, status) {
    const mine = state.queued.filter((m) => m.caseId === caseId);
    return mine.length ? mine[mine.length - 1].to : status;
  }

  async function send(item) {
    const headers = { 'Idempotency-Key': item.key, Accept: 'application/json' };
    const move = { to: item.to };
    if (item.note) move.note = item.note;
    if (item.reason) move.reason = item.reason;
    let body;
    if (item.photos.length) {
      body = new FormData();
      body.append('move', JSON.stringify(move));
      for (const p of item.photos) body.append('photos', p.blob, p.name);
    } else {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(move);
    }
    return fetch(`/cases/${item.caseId}/transitions`, {
      method: 'POST', body, headers, credentials: 'same-origin',
    });
  }

  /** Send the queue in order; stop at the first move that could not reach the service. */
  async function flush() {
    if (state.sending) return;
    state.sending = true;
    let changed = false;
    try {
      await loadQueue();
      for (const item of state.queued.slice()) {
        let response;
        try {
          response = await send(item);
        } catch (e) {
          break; // offline: the rest waits, in order
        }
        if (response.status === 401) {
          showOutcome('error', '登录已过期，请重新登录；待发送的办理会保留。 Sign in again; queued moves are kept.');
          break;
        }
        if (response.status >= 500) break;
        if (!response.ok) {
          const why = errorText(await response.json().catch(() => null), response.status);
          const rejected = readJson(REJECTED, []);
          rejected.push({ caseId: item.caseId, number: item.number, to: item.to, why, status: response.status });
          writeJson(REJECTED, rejected);
        } else {
          const detail = await response.json().catch(() => null);
          if (detail && detail.id) cacheDetailCase(detail);
        }
        await withStore('readwrite', (s) => s.delete(item.key));
        changed = true;
      }
    } finally {
      state.sending = false;
      await loadQueue();
      renderRejected();
    }
    if (changed && navigator.onLine) await refresh();
  }

  // ---------------------------------------------------------------- the list

  async function refresh() {
    try {
      const list = await getJson('/tasks/list');
      writeJson(LIST_CACHE, list);
      noteNewTasks(list);
      state.list = list;
      state.me = state.me || { unit_code: list.unit_code, role: list.role };
      prefetch(list.items);
      if (state.current !== null) writeJson(DETAIL_CACHE + state.current, await getJson(`/tasks/${state.current}`));
    } catch (e) {
      state.list = state.list || readJson(LIST_CACHE, null);
      if (!state.list) showOutcome('error', `任务列表无法加载 Cannot load tasks: ${e.message}`);
    }
    renderList();
    if (state.current !== null) renderDetail(state.current);
  }

  function noteNewTasks(list) {
    const ids = list.items.map((t) => t.id);
    if (state.list) for (const id of ids) if (!state.seen.has(id)) state.fresh.add(id);
    for (const id of ids) state.seen.add(id);
    writeJson(SEEN, Array.from(state.seen).slice(-2000));
    const badge = $('badge');
    badge.textContent = String(state.fresh.size);
    badge.hidden = state.fresh.size === 0;
  }

  function renderList() {
    const list = state.list;
    const ul = $('tasks');
    if (!list) return;
    $('list-count').textContent = `(${list.items.length})`;
    $('list-empty').hidden = list.items.length > 0;
    ul.replaceChildren(
      ...list.items.map((t) => {
        const li = el('li');
        const row = el('button', null, 'task');
        row.type = 'button';
        row.dataset.caseId = String(t.id);
        row.dataset.new = String(state.fresh.has(t.id));
        row.dataset.queued = String(state.queued.some((m) => m.caseId === t.id));
        const light = el('span', LIGHT[t.light] || '—', 'light');
        light.dataset.light = t.light || '';
        const status = projected(t.id, t.status);
        const line3 = el('span', null, 'line3');
        line3.append(el('span', `${STATUS[status] || status} · 时限 due ${timeText(t.stage_due_at)}`));
        if (t.overdue) line3.append(el('span', ' · 已超时 overdue', 'overdue'));
        row.append(
          light,
          el('span', `${t.category_name} · ${t.number}${t.urgent ? ' · 紧急 urgent' : ''}`, 'line1'),
          el('span', t.description, 'line2'),
          line3,
        );
        row.addEventListener('click', () => openCase(t.id));
        li.append(row);
        return li;
      }),
    );
  }

  async function prefetch(items) {
    for (const t of items.slice(0, 30)) {
      if (readJson(DETAIL_CACHE + t.id, null)) continue;
      try {
        writeJson(DETAIL_CACHE + t.id, await getJson(`/tasks/${t.id}`));
      } catch (e) {
        return;
      }
    }
  }

  function cacheDetailCase(caseDetail) {
    const cached = readJson(DETAIL_CACHE + caseDetail.id, null);
    if (cached) writeJson(DETAIL_CACHE + caseDetail.id, { ...cached, case: caseDetail });
  }

  // ---------------------------------------------------------------- one case

  async function openCase(id) {
    state.current = id;
    state.fresh.delete(id);
    $('badge').textContent = String(state.fresh.size);
    $('badge').hidden = state.fresh.size === 0;
    $('list-view').hidden = true;
    $('detail').hidden = false;
    closeMoveForm();
    renderDetail(id);
    try {
      writeJson(DETAIL_CACHE + id, await getJson(`/tasks/${id}`));
      if (state.current === id) renderDetail(id);
    } catch (e) {
      if (!readJson(DETAIL_CACHE + id, null)) showOutcome('error', `无法加载 Cannot load case: ${e.message}`);
    }
    window.scrollTo(0, 0);
  }

  function closeCase() {
    state.current = null;
    $('detail').hidden = true;
    $('list-view').hidden = false;
    renderList();
  }

  function renderDetail(id) {
    const detail = readJson(DETAIL_CACHE + id, null);
    if (!detail) return;
    const c = detail.case;
    const status = projected(c.id, c.status);
    $('d-number').textContent = c.number;
    $('d-category').textContent = c.category_name;
    $('d-status').textContent = STATUS[status] || status;
    $('d-light').textContent = LIGHT[c.light] || '—';
    $('d-light').dataset.light = c.light || '';
    $('d-due').textContent = timeText(c.stage_due_at);
    $('d-description').textContent = c.description;
    $('d-address').textContent = c.address || '';
    $('d-navigate').href = `geo:${c.lat},${c.lon}?q=${c.lat},${c.lon}`;
    renderPhotos('d-photos-before', detail.photos_before);
    renderPhotos('d-photos-after', detail.photos_after);
    $('d-history').replaceChildren(
      ...c.history.map((h) => el('li', `${timeText(h.at)} · ${h.actor} · ${STATUS[h.to_status] || h.to_status}` +
        (h.note ? ` · ${h.note}` : ''))),
    );
    renderMoves(c, status);
    drawMap(c);
  }

  function renderPhotos(id, photos) {
    $(id).replaceChildren(
      ...(photos || []).map((p) => {
        const li = el('li');
        const img = el('img');
        img.src = p.url;
        img.alt = `照片 ${p.seq} photo`;
        img.loading = 'lazy';
        li.append(img);
        return li;
      }),
    );
  }

  function movesFor(status) {
    const table = state.list && state.list.moves_by_status;
    return (table && table[status]) || {};
  }

  function renderMoves(c, status) {
    const moves = status === c.status ? readJson(DETAIL_CACHE + c.id, {}).moves || {} : movesFor(status);
    const box = $('d-moves');
    const names = Object.keys(moves);
    box.replaceChildren(
      ...names.map((to) => {
        const b = el('button', MOVE[to] || to);
        b.type = 'button';
        b.dataset.move = to;
        b.setAttribute('aria-pressed', String(state.chosen === to));
        b.addEventListener('click', () => chooseMove(to, moves[to]));
        return b;
      }),
    );
    if (!names.length) box.append(el('p', '此状态下无可办理事项。 No action for you now.', 'note'));
  }

  function chooseMove(to, needs) {
    state.chosen = to;
    state.photos = [];
    $('move-photos').value = '';
    $('move-photo-count').textContent = '0';
    for (const b of $('d-moves').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.move === to));
    $('move-title').textContent = MOVE[to] || to;
    const needsReason = (needs || []).includes('reason');
    $('move-reason').hidden = !needsReason;
    $('move-reason-label').hidden = !needsReason;
    $('move-reason').value = '';
    $('move-note').value = '';
    $('move-photos-box').hidden = to !== 'handled';
    $('move-error').hidden = true;
    $('move-form').hidden = false;
  }

  function closeMoveForm() {
    state.chosen = null;
    state.photos = [];
    $('move-form').hidden = true;
  }

  async function submitMove(event) {
    event.preventDefault();
    const detail = readJson(DETAIL_CACHE + state.current, null);
    if (!detail || !state.chosen) return;
    const reason = $('move-reason').value.trim();
    if (!$('move-reason').hidden && !reason) {
      $('move-error').textContent = '请填写原因。 A reason is required.';
      $('move-error').hidden = false;
      return;
    }
    const order = Date.now() * 1000 + state.queued.length; // the order moves are made in
    const item = {
      key: newKey(), order, caseId: detail.case.id, number: detail.case.number, to: state.chosen,
      note: $('move-note').value.trim(), reason, photos: state.photos.slice(),
    };
    await withStore('readwrite', (s) => s.put(item));
    closeMoveForm();
    await loadQueue();
    showOutcome('ok', navigator.onLine ? `已提交 Sent: ${MOVE[item.to]}` : `已保存，联网后发送 Queued: ${MOVE[item.to]}`);
    renderDetail(detail.case.id);
    if (navigator.onLine) flush();
  }

  // ---------------------------------------------------------------- the small map

  async function myGrids() {
    const cached = readJson(GRIDS_CACHE, null);
    if (cached && state.me && cached.unit === state.me.unit_code) return cached.geojson;
    const unit = state.me && state.me.unit_code;
    if (!unit) return null;
    try {
      const answer = unit.length >= 15
        ? { type: 'FeatureCollection', features: [await getJson(`/grids/${unit}`)] }
        : await getJson(`/grids?parent=${encodeURIComponent(unit)}&level=grid&limit=500`);
      writeJson(GRIDS_CACHE, { unit, geojson: answer });
      return answer;
    } catch (e) {
      return null;
    }
  }

  async function drawMap(c) {
    if (!window.L) return;
    if (!state.map) {
      state.map = window.L.map('case-map', { attributionControl: false, zoomControl: true });
      state.gridLayer = window.L.geoJSON(null, { style: { color: '#1d4f91', weight: 2, fillOpacity: 0.05 } });
      state.gridLayer.addTo(state.map);
      state.caseLayer = window.L.layerGroup().addTo(state.map);
      const grids = await myGrids();
      if (grids) state.gridLayer.addData(grids);
    }
    state.caseLayer.clearLayers();
    window.L.circleMarker([c.lat, c.lon], { radius: 9, color: '#fff', weight: 2, fillColor: '#b3261e', fillOpacity: 1 })
      .addTo(state.caseLayer);
    state.map.setView([c.lat, c.lon], 16);
    state.map.invalidateSize();
  }

  // ---------------------------------------------------------------- live: new tasks

  function listen() {
    if (!window.EventSource) return;
    let timer = null;
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    };
    const source = new EventSource('/cases/stream');
    source.addEventListener('created', later);
    source.addEventListener('updated', later);
  }

  function setOnline() {
    const online = navigator.onLine;
    $('net').dataset.online = String(online);
    $('net').textContent = online ? '在线 online' : '离线 offline';
  }

  // ---------------------------------------------------------------- start

  function start() {
    $('back').addEventListener('click', closeCase);
    $('move-form').addEventListener('submit', submitMove);
    $('move-photos').addEventListener('change', () => {
      state.photos = Array.from($('move-photos').files).slice(0, 6)
        .map((f) => ({ blob: f, name: f.name || 'after.jpg', type: f.type }));
      $('move-photo-count').textContent = String(state.photos.length);
    });
    $('rejected-clear').addEventListener('click', () => {
      writeJson(REJECTED, []);
      renderRejected();
    });
    window.addEventListener('online', () => {
      setOnline();
      flush();
    });
    window.addEventListener('offline', setOnline);
    setOnline();
    renderRejected();
    state.list = readJson(LIST_CACHE, null);
    loadQueue().then(() => {
      renderList();
      refresh().then(flush);
    });
    setInterval(() => navigator.onLine && flush(), RETRY_EVERY_MS);
    listen();
    if ('serviceWorker' in navigator) navigator.serviceWorker.register('/static/tasks/sw.js', { scope: '/tasks' }).catch(() => {});
  }

  document.addEventListener('DOMContentLoaded', start);
})();
