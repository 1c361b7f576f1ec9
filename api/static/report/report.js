/* Field worker page: locate, pick a category, describe, photograph, preview the grid, send or queue.
 *
 * Reports are saved in IndexedDB (photos included, as Blobs) before they are sent, each with an
 * Idempotency-Key made once for it: a report sent twice (lost answer, retry, reload) is one case.
 * The queue is sent again on load, on the `online` event, on the retry button and every minute.
 * Server text is only ever shown with textContent.
 */
'use strict';

(() => {
  const MAX_PHOTOS = 6;
  const DB_NAME = 'gridmap-report';
  const STORE = 'outbox';
  const CATEGORY_CACHE = 'gridmap-report.categories';
  const RETRY_EVERY_MS = 60 * 1000;
  const SEND_TIMEOUT_MS = 90 * 1000;
  const LOCATE_OPTIONS = { enableHighAccuracy: true, timeout: 20 * 1000, maximumAge: 0 };

  const $ = (id) => document.getElementById(id);

  const state = {
    position: null, // {lon, lat, accuracy} in WGS84, from the browser
    photos: [], // [{blob, name, type, url}] of the report being written
    categories: [],
    locateSeq: 0,
    queueCount: 0,
    outcomes: new Map(), // idempotency key -> 'sent' | 'rejected' | 'retry'
  };

  // ---------------------------------------------------------------- helpers

  const { el, newKey, errorText } = window.GridmapField; // field/field.js

  function shortText(text, n = 40) {
    const t = String(text || '').replace(/\s+/g, ' ').trim();
    return t.length > n ? `${t.slice(0, n)}…` : t;
  }

  function timeText(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleString('zh-CN', { hour12: false });
  }

  function showOutcome(kind, text) {
    const box = $('outcome');
    box.dataset.kind = kind;
    box.textContent = text;
    box.hidden = false;
    if (typeof box.scrollIntoView === 'function') box.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  function showFormError(text) {
    const p = $('form-error');
    p.textContent = text || '';
    p.hidden = !text;
  }

  // ---------------------------------------------------------------- the outbox (IndexedDB)

  let dbPromise = null;
  const memoryStore = new Map(); // used only when IndexedDB cannot be opened (some private modes)

  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        if (!window.indexedDB) {
          reject(new Error('IndexedDB unavailable'));
          return;
        }
        const req = window.indexedDB.open(DB_NAME, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'key' });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
        req.onblocked = () => reject(new Error('IndexedDB blocked'));
      }).catch((err) => {
        showOutcome('error', `此浏览器无法离线保存上报，断网时请勿关闭页面。 (${err.message})`);
        return null;
      });
    }
    return dbPromise;
  }

  async function withStore(mode, action) {
    const db = await openDb();
    if (!db) return action(null);
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('IndexedDB transaction aborted'));
    });
  }

  const outbox = {
    async all() {
      const rows = await withStore('readonly', (s) => (s ? s.getAll() : null));
      const list = rows || Array.from(memoryStore.values());
      return list.sort((a, b) => a.created.localeCompare(b.created));
    },
    put(record) {
      return withStore('readwrite', (s) => (s ? s.put(record) : void memoryStore.set(record.key, record)));
    },
    remove(key) {
      return withStore('readwrite', (s) => (s ? s.delete(key) : void memoryStore.delete(key)));
    },
  };

  async function renderQueue() {
    const records = await outbox.all();
    state.queueCount = records.length;
    $('queue-count').textContent = String(records.length);
    $('queue').hidden = records.length === 0;
    tell('gridmap:queue', records.map((r) => ({ key: r.key, lon: r.payload.lon, lat: r.payload.lat, text: r.payload.description })));
    const list = $('queue-list');
    list.replaceChildren();
    for (const rec of records) {
      const li = el('li');
      li.dataset.key = rec.key;
      li.append(el('div', shortText(rec.payload.description), 'head'));
      const photos = rec.photos.length ? ` · ${rec.photos.length} 张照片` : '';
      li.append(el('div', `${timeText(rec.created)}${photos} · 已尝试 ${rec.attempts} 次`, 'meta'));
      if (rec.last_error) li.append(el('div', rec.last_error, 'meta'));
      const drop = el('button', '删除 Delete');
      drop.type = 'button';
      drop.addEventListener('click', async () => {
        if (!window.confirm('删除这条未发送的上报？ Delete this unsent report?')) return;
        await outbox.remove(rec.key);
        renderQueue();
      });
      li.append(drop);
      list.append(li);
    }
  }

  // ---------------------------------------------------------------- sending

  /** One attempt: 'sent' (2xx), 'rejected' (4xx: will never succeed) or 'retry' (offline, network, 5xx). */
  async function send(record) {
    if (!navigator.onLine) return { outcome: 'retry', network: true, message: '离线 offline' };
    const headers = { 'Idempotency-Key': record.key, Accept: 'application/json' };
    let body;
    if (record.photos.length) {
      body = new FormData();
      body.append('case', JSON.stringify(record.payload));
      for (const p of record.photos) body.append('photos', p.blob, p.name);
    } else {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(record.payload);
    }
    const abort = new AbortController();
    const timer = window.setTimeout(() => abort.abort(), SEND_TIMEOUT_MS);
    let response;
    let data = null;
    try {
      response = await fetch('/cases', { method: 'POST', headers, body, signal: abort.signal });
      data = await response.json().catch(() => null);
    } catch (err) {
      return { outcome: 'retry', network: true, message: `网络错误 network error (${err.name})` };
    } finally {
      window.clearTimeout(timer);
    }
    if (response.ok) return { outcome: 'sent', status: response.status, data };
    // 401: the sign-in lapsed (expired, revoked). The report is fine: keep it for after a new login.
    if (response.status === 401) {
      return { outcome: 'retry', network: true, signin: true, message: '登录已失效 signed out' };
    }
    // 408/429/5xx: the server may take it later. 409: the same key is still being handled.
    if (response.status >= 500 || [408, 409, 429].includes(response.status)) {
      return { outcome: 'retry', message: `服务器暂不可用 server unavailable (HTTP ${response.status})` };
    }
    return { outcome: 'rejected', status: response.status, message: errorText(data, response.status) };
  }

  function describeAssignment(a) {
    if (!a || typeof a !== 'object') return null;
    if (a.grid && a.status === 'snapped') {
      const m = Math.round(Number(a.distance_m) || 0);
      return { name: a.grid.name, code: a.grid.code, note: `距网格 ${m} m，就近归属 (snapped)` };
    }
    if (a.grid) return { name: a.grid.name, code: a.grid.code, note: '位于网格内 (inside the grid)' };
    const units = Array.isArray(a.units) ? a.units : [];
    const lowest = units.length ? units[units.length - 1] : null;
    let note = '不在任何网格内，将进入未分配队列 (unassigned queue)';
    if (a.nearest && a.nearest.code) {
      note += `；最近网格 ${a.nearest.code}，${Math.round(Number(a.nearest.distance_m) || 0)} m`;
    }
    return { name: lowest ? lowest.name : '辖区外 outside the county', code: lowest ? lowest.code : '', note };
  }

  function addResult(kind, record, lines) {
    const li = el('li');
    li.dataset.kind = kind;
    li.dataset.key = record.key;
    for (const [i, line] of lines.entries()) li.append(el('div', line, i === 0 ? 'head' : 'meta'));
    li.append(el('div', `“${shortText(record.payload.description, 80)}” · ${timeText(record.created)}`, 'meta'));
    $('results').prepend(li);
    $('history').hidden = false;
    return li;
  }

  async function settle(record, result) {
    state.outcomes.set(record.key, result.signin ? 'signin' : result.outcome);
    if (result.outcome === 'sent') {
      await outbox.remove(record.key);
      const c = result.data || {};
      const where = describeAssignment(c.assignment);
      const lines = [`✓ 已上报 案件编号 ${c.number || '—'}`];
      if (where) lines.push(`网格：${where.name} ${where.code}`, where.note);
      if (c.location_source === 'photo_exif') lines.push('位置取自照片 (location from the photo)');
      for (const d of Array.isArray(c.duplicates) ? c.duplicates : []) {
        lines.push(`附近可能重复 possible duplicate: ${d.number} (${Math.round(Number(d.distance_m) || 0)} m)`);
      }
      const li = addResult('sent', record, lines);
      tell('gridmap:sent', { id: c.id, number: c.number, lon: c.lon, lat: c.lat, text: record.payload.description });
      if (c.id !== undefined) li.dataset.caseId = String(c.id);
      if (c.number !== undefined) li.dataset.caseNumber = String(c.number);
      const grid = where ? `，网格 ${where.name} ${where.code}` : '';
      showOutcome('sent', `已上报：案件编号 ${c.number || '—'}${grid}`);
    } else if (result.outcome === 'rejected') {
      await outbox.remove(record.key);
      addResult('rejected', record, [`✗ 被拒绝 rejected (HTTP ${result.status})：${result.message}`]);
      showOutcome('rejected', `上报被拒绝 (HTTP ${result.status})：${result.message}`);
    } else {
      record.attempts += 1;
      record.last_error = result.message;
      await outbox.put(record);
      if (result.signin) {
        showOutcome('queued', '登录已失效：上报已保存在本机，请重新登录 (/login) 后自动发送。 Signed out: saved, log in again.');
      }
    }
  }

  async function flushOnce() {
    for (const record of await outbox.all()) {
      const result = await send(record);
      await settle(record, result);
      if (result.network) break; // the others would fail the same way
    }
    await renderQueue();
  }

  // One flush at a time; a trigger during a flush runs one more after it (which rereads the outbox).
  let running = Promise.resolve();
  let pending = null;
  function flushQueue() {
    if (pending) return pending;
    pending = running.then(() => {
      pending = null;
      return flushOnce();
    });
    running = pending.catch((err) => showOutcome('error', `发送队列出错：${err.message}`));
    return pending;
  }

  // ---------------------------------------------------------------- location and grid preview

  function setLocStatus(text, kind) {
    const p = $('loc-status');
    p.textContent = text;
    p.dataset.state = kind;
  }

  function locate() {
    if (!('geolocation' in navigator)) {
      setLocStatus('此浏览器不能定位：请填写地址，或附上带位置的照片。', 'error');
      return;
    }
    setLocStatus('正在定位… locating', 'busy');
    $('relocate').disabled = true;
    navigator.geolocation.getCurrentPosition(onPosition, onPositionError, LOCATE_OPTIONS);
  }

  function onPosition(pos) {
    $('relocate').disabled = false;
    const { longitude, latitude, accuracy } = pos.coords;
    state.position = { lon: longitude, lat: latitude, accuracy, method: 'gps' };
    tell('gridmap:position', state.position); // the small map (reportmap.js) shows the pin
    const acc = Math.round(accuracy);
    const poor = accuracy > 100;
    setLocStatus(`已定位 精度 ±${acc} m${poor ? '（精度较差，可到开阔处重新定位）' : ''}`, poor ? 'warn' : 'ok');
    $('loc-coords').textContent = `${latitude.toFixed(6)}, ${longitude.toFixed(6)} (WGS84)`;
    previewGrid();
  }

  function onPositionError(err) {
    $('relocate').disabled = false;
    state.position = null;
    $('loc-coords').textContent = '';
    const fallback = '仍可上报：拍摄带位置信息的照片，并填写地址。';
    let text;
    if (err.code === err.PERMISSION_DENIED) {
      text = window.isSecureContext
        ? `未获得定位权限 (permission denied)。${fallback}`
        : `此页面不是 HTTPS，浏览器不允许定位。${fallback}`;
    } else if (err.code === err.TIMEOUT) {
      text = `定位超时 (no fix)，可到开阔处重新定位。${fallback}`;
    } else {
      text = `无法定位 (no fix)。${fallback}`;
    }
    setLocStatus(text, 'error');
    showPreview('none', '—', '', '没有定位：发送后由服务器按照片中的位置分配网格');
  }

  function showPreview(status, name, code, note) {
    $('grid-preview').dataset.status = status;
    $('grid-name').textContent = name;
    $('grid-code').textContent = code;
    $('grid-status').textContent = note;
  }

  async function previewGrid() {
    const seq = ++state.locateSeq;
    const p = state.position;
    if (!p) return;
    if (!navigator.onLine) {
      showPreview('', '—', '', '离线：发送时由服务器分配网格 (offline)');
      return;
    }
    showPreview('', '…', '', '正在查询网格 looking up the grid');
    const query = new URLSearchParams({ lon: String(p.lon), lat: String(p.lat), crs: 'wgs84' });
    try {
      const response = await fetch(`/locate?${query}`, { headers: { Accept: 'application/json' } });
      const data = await response.json().catch(() => null);
      if (seq !== state.locateSeq) return; // a newer position is being looked up
      if (!response.ok) {
        showPreview('error', '—', '', `查询网格失败：${errorText(data, response.status)}`);
        return;
      }
      const where = describeAssignment(data);
      showPreview(data.status, where.name, where.code, where.note);
      tell('gridmap:preview', data);
    } catch (err) {
      if (seq === state.locateSeq) showPreview('error', '—', '', '网络错误，发送时由服务器分配网格');
    }
  }

  // ---------------------------------------------------------------- categories

  function option(value, text, title) {
    const o = el('option', text);
    o.value = value;
    if (title) o.title = title;
    return o;
  }

  async function loadCategories() {
    let cats = null;
    try {
      const response = await fetch('/categories', { headers: { Accept: 'application/json' } });
      if (response.ok) cats = await response.json();
    } catch (err) {
      cats = null;
    }
    try {
      if (Array.isArray(cats)) window.localStorage.setItem(CATEGORY_CACHE, JSON.stringify(cats));
      else cats = JSON.parse(window.localStorage.getItem(CATEGORY_CACHE) || 'null');
    } catch (err) {
      // storage unavailable: the list of this visit is all there is
    }
    if (!Array.isArray(cats) || !cats.length) {
      $('cat-status').textContent = '无法加载事件类别，请联网后刷新。 Categories unavailable.';
      return;
    }
    state.categories = cats;
    const top = $('cat-top');
    top.replaceChildren(option('', '请选择大类 Choose…'));
    for (const c of cats) top.append(option(c.code, `${c.name}`, c.name_en));
    $('cat-status').textContent = '';
    fillSubclasses();
  }

  function fillSubclasses() {
    const sub = $('cat-sub');
    const parent = state.categories.find((c) => c.code === $('cat-top').value);
    const children = parent && Array.isArray(parent.children) ? parent.children : [];
    sub.replaceChildren(option('', parent ? '请选择小类 Choose…' : '先选大类'));
    for (const c of children) sub.append(option(c.code, c.name, c.name_en));
    sub.disabled = !parent;
  }

  // ---------------------------------------------------------------- photos

  function renderPhotos() {
    const list = $('thumbs');
    list.replaceChildren();
    state.photos.forEach((p, i) => {
      const li = el('li');
      const img = el('img');
      img.src = p.url;
      img.alt = p.name;
      const drop = el('button', '×');
      drop.type = 'button';
      drop.title = '移除 remove';
      drop.addEventListener('click', () => {
        URL.revokeObjectURL(p.url);
        state.photos.splice(i, 1);
        renderPhotos();
      });
      li.append(img, drop);
      list.append(li);
    });
    $('photo-count').textContent = `${state.photos.length}/${MAX_PHOTOS}`;
  }

  function onPhotos(event) {
    const files = Array.from(event.target.files || []);
    event.target.value = ''; // the same photo can be chosen again after removing it
    const room = MAX_PHOTOS - state.photos.length;
    for (const file of files.slice(0, Math.max(room, 0))) {
      const name = file.name || `photo-${state.photos.length + 1}.jpg`;
      state.photos.push({ blob: file, name, type: file.type, url: URL.createObjectURL(file) });
    }
    const note = $('photo-note');
    note.hidden = files.length <= room;
    note.textContent = `最多 ${MAX_PHOTOS} 张照片，多余的未添加。 At most ${MAX_PHOTOS} photos.`;
    renderPhotos();
  }

  // ---------------------------------------------------------------- the form

  function reporter() {
    const name = $('reporter-name').value.trim();
    const phone = $('reporter-phone').value.trim();
    if (!name && !phone) return null;
    return { name: name || null, phone: phone || null, confidential: $('reporter-confidential').checked };
  }

  function buildCase() {
    const p = state.position;
    return {
      lon: p ? p.lon : null,
      lat: p ? p.lat : null,
      crs: 'wgs84',
      location_method: p ? p.method || 'gps' : (state.photos.length ? 'photo' : null),
      accuracy_m: p ? Math.round(p.accuracy * 10) / 10 : null,
      category: $('cat-sub').value,
      description: $('description').value.trim(),
      address: $('address').value.trim() || null,
      source: 'patrol',
      urgent: $('urgent').checked,
      reporter: reporter(),
    };
  }

  function problemWith(payload) {
    if (!payload.category) return '请选择事件类别（大类和小类）。 Choose a category.';
    if (!payload.description) return '请填写问题描述。 Describe the problem.';
    // The server needs a point: the phone's, or the GPS in a photo's EXIF (an address alone is not geocoded).
    if (payload.lon === null && !state.photos.length) {
      return '没有定位：请重新定位，或拍摄带位置信息的照片（并填写地址）。 No location: locate again or add a photo.';
    }
    return '';
  }

  function resetForm() {
    $('description').value = '';
    $('address').value = '';
    $('urgent').checked = false;
    $('reporter-name').value = '';
    $('reporter-phone').value = '';
    $('reporter-confidential').checked = false;
    $('reporter').open = false;
    for (const p of state.photos) URL.revokeObjectURL(p.url);
    state.photos = [];
    renderPhotos();
    $('photo-note').hidden = true;
  }

  async function onSubmit(event) {
    event.preventDefault();
    const payload = buildCase();
    const problem = problemWith(payload);
    showFormError(problem);
    if (problem) return;
    const record = {
      key: newKey(), // made once for this report and sent with every attempt
      created: new Date().toISOString(),
      payload,
      photos: state.photos.map((p) => ({ blob: p.blob, name: p.name, type: p.type })),
      attempts: 0,
      last_error: null,
    };
    const button = $('submit');
    button.disabled = true;
    try {
      await outbox.put(record); // on the phone before anything is sent
      await renderQueue();
      await flushQueue();
      const outcome = state.outcomes.get(record.key);
      if (outcome === 'rejected') return; // keep the form so the worker can correct it
      resetForm();
      if (outcome !== 'sent' && outcome !== 'signin') {
        showOutcome('queued', `已保存在本机，联网后自动发送（待发送 ${state.queueCount} 条）。 Saved; sent when online.`);
      }
    } catch (err) {
      showFormError(`保存失败 could not save: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- online / offline

  /** Tell the page's other modules (the small map) what happened. */
  function tell(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail }));
  }

  /** The worker moved the pin (reportmap.js): that point is reported, its grid looked up again. */
  function onPin(event) {
    const { lon, lat } = event.detail;
    const accuracy = state.position ? state.position.accuracy : 0;
    state.position = { lon, lat, accuracy, method: 'pin' };
    setLocStatus('已手动调整位置 pin moved by hand', 'ok');
    $('loc-coords').textContent = `${lat.toFixed(6)}, ${lon.toFixed(6)} (WGS84)`;
    previewGrid();
  }

  function showNetwork() {
    const net = $('net');
    net.dataset.online = String(navigator.onLine);
    net.textContent = navigator.onLine ? '在线' : '离线 offline';
  }

  function start() {
    $('report-form').addEventListener('submit', onSubmit);
    $('relocate').addEventListener('click', locate);
    $('cat-top').addEventListener('change', fillSubclasses);
    $('photos').addEventListener('change', onPhotos);
    $('retry').addEventListener('click', () => flushQueue());
    document.addEventListener('gridmap:pin', onPin);
    window.addEventListener('online', () => {
      showNetwork();
      flushQueue();
      if (state.position) previewGrid();
    });
    window.addEventListener('offline', showNetwork);
    window.setInterval(() => {
      if (state.queueCount > 0 && navigator.onLine) flushQueue();
    }, RETRY_EVERY_MS);

    // The page opens with no connection once it has been opened with one (sw.js caches it).
    if ('serviceWorker' in navigator && window.isSecureContext) {
      navigator.serviceWorker.register('/static/report/sw.js', { scope: '/report' }).catch(() => {});
    }

    showNetwork();
    renderPhotos();
    fillSubclasses();
    loadCategories();
    locate();
    renderQueue().then(() => flushQueue());
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
