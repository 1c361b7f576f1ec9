/* Patrol (巡查) recording on the worker's pages: start, record the track, end, upload.
 *
 * Positions come from the browser's geolocation with their accuracy. Points are thinned as they
 * arrive with the service's rule (geo/patrols.py `thin`): a point is kept when it is MIN_STEP_M
 * from the last kept one or MAX_GAP_S after it; the latest point is always kept as the end.
 * The patrol being recorded and the finished ones not yet sent live in localStorage (a reload or
 * a lost connection loses nothing); each finished patrol is sent with an Idempotency-Key made once
 * for it, so a retry stores it once. The service drops implausible points and says how many.
 * Used by /tasks and /report: it does nothing on a page without a #patrol section.
 */
'use strict';

(() => {
  const CURRENT = 'gridmap-patrol.current';
  const OUTBOX = 'gridmap-patrol.outbox';
  const MIN_STEP_M = 10;
  const MAX_GAP_S = 60;
  const POLL_MS = 5000; // some phones report a still position rarely: ask every 5 s as well
  const RETRY_MS = 30 * 1000;
  const $ = (id) => document.getElementById(id);

  let watchId = null;
  let pollId = null;
  let sending = false;

  const { readJson: read, newKey } = window.GridmapField; // field/field.js

  function write(key, value) {
    if (!window.GridmapField.writeJson(key, value)) {
      say('result', '存储已满，巡查轨迹可能无法保存。 Storage full: the track may be lost.');
    }
  }

  /** Metres between two lon/lat points (haversine; ample for thinning). */
  function metres(a, b) {
    const r = 6371008.8;
    const rad = Math.PI / 180;
    const dLat = (b.lat - a.lat) * rad;
    const dLon = (b.lon - a.lon) * rad;
    const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * r * Math.asin(Math.sqrt(s));
  }

  function lengthOf(points) {
    let total = 0;
    for (let i = 1; i < points.length; i += 1) total += metres(points[i - 1], points[i]);
    return total;
  }

  function say(which, text) {
    const node = $(which === 'status' ? 'patrol-status' : 'patrol-result');
    if (node) node.textContent = text;
  }

  function allPoints(current) {
    return current.tail ? [...current.points, current.tail] : current.points.slice();
  }

  function showRecording(current) {
    const section = $('patrol');
    const button = $('patrol-toggle');
    const on = Boolean(current);
    section.dataset.recording = String(on);
    button.dataset.state = on ? 'recording' : 'idle';
    button.textContent = on ? '结束巡查 End patrol' : '开始巡查 Start patrol';
    if (on) {
      const pts = allPoints(current);
      say('status', `巡查中 recording · ${pts.length} 点 points · ${Math.round(lengthOf(pts))} m`);
    } else {
      say('status', '未在巡查 not patrolling');
    }
  }

  function onPosition(pos) {
    const current = read(CURRENT, null);
    if (!current) return;
    const p = {
      t: new Date(pos.timestamp || Date.now()).toISOString(),
      lon: pos.coords.longitude,
      lat: pos.coords.latitude,
      accuracy_m: pos.coords.accuracy,
    };
    const last = current.points[current.points.length - 1];
    const gap = last ? (Date.parse(p.t) - Date.parse(last.t)) / 1000 : Infinity;
    if (!last || metres(last, p) >= MIN_STEP_M || gap >= MAX_GAP_S) {
      current.points.push(p);
      current.tail = null;
    } else {
      current.tail = p; // kept only if it turns out to be the end
    }
    write(CURRENT, current);
    showRecording(current);
  }

  function onError(err) {
    say('result', `定位失败 Location failed: ${err.message || err.code}`);
  }

  function watch() {
    if (!navigator.geolocation) {
      say('result', '此浏览器不能定位。 This browser cannot locate.');
      return;
    }
    const options = { enableHighAccuracy: true, maximumAge: 0, timeout: 20000 };
    watchId = navigator.geolocation.watchPosition(onPosition, onError, options);
    pollId = setInterval(() => navigator.geolocation.getCurrentPosition(onPosition, () => {}, options), POLL_MS);
  }

  function unwatch() {
    if (watchId !== null) navigator.geolocation.clearWatch(watchId);
    if (pollId !== null) clearInterval(pollId);
    watchId = null;
    pollId = null;
  }

  function toggle() {
    const current = read(CURRENT, null);
    if (!current) {
      write(CURRENT, { key: newKey(), started: new Date().toISOString(), points: [], tail: null });
      say('result', '');
      showRecording(read(CURRENT, null));
      watch();
      return;
    }
    unwatch();
    write(CURRENT, null);
    showRecording(null);
    const points = allPoints(current);
    if (points.length < 2) {
      say('result', '轨迹点太少，未上传。 Too few points: nothing to upload.');
      return;
    }
    write(OUTBOX, [...read(OUTBOX, []), { key: current.key, points }]);
    say('result', '巡查已结束，等待上传。 Patrol ended, waiting to upload.');
    flush();
  }

  async function showFigure(patrol) {
    const grid = patrol.grids && patrol.grids[0];
    if (!grid) return '';
    try {
      const r = await fetch(`/patrols/coverage/${grid}`, { credentials: 'same-origin' });
      if (!r.ok) return '';
      const f = await r.json();
      return ` · 网格 ${f.grid} 近7天巡查 ${f.patrols} 次 patrols in 7 days，覆盖率 coverage ${(f.coverage_share * 100).toFixed(1)}%`;
    } catch (e) {
      return '';
    }
  }

  async function flush() {
    if (sending) return;
    sending = true;
    try {
      for (const item of read(OUTBOX, [])) {
        let response;
        try {
          response = await fetch('/patrols', {
            method: 'POST',
            credentials: 'same-origin',
            headers: { 'Content-Type': 'application/json', 'Idempotency-Key': item.key },
            body: JSON.stringify({ points: item.points }),
          });
        } catch (e) {
          say('result', '离线：巡查轨迹已保存，联网后上传。 Offline: the track is kept and sent later.');
          break;
        }
        if (response.status === 401 || response.status >= 500) break;
        const body = await response.json().catch(() => null);
        write(OUTBOX, read(OUTBOX, []).filter((x) => x.key !== item.key));
        if (response.ok) {
          const dropped = Object.entries(body.dropped || {}).map(([k, n]) => `${k} ${n}`).join(', ');
          const figure = await showFigure(body);
          say('result', `巡查已上传 Uploaded: ${Math.round(body.length_m)} m, ${body.points} 点 points` +
            (dropped ? ` (剔除 dropped: ${dropped})` : '') + figure);
          $('patrol-result').dataset.patrolId = String(body.id);
        } else {
          const detail = body && typeof body.detail === 'string' ? body.detail : `HTTP ${response.status}`;
          say('result', `巡查未被接受 Patrol refused: ${detail}`);
        }
      }
    } finally {
      sending = false;
    }
  }

  function start() {
    const button = $('patrol-toggle');
    if (!button) return;
    button.addEventListener('click', toggle);
    const current = read(CURRENT, null);
    showRecording(current);
    if (current) watch(); // a reload during a patrol goes on recording
    window.addEventListener('online', flush);
    setInterval(() => navigator.onLine && flush(), RETRY_MS);
    flush();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
