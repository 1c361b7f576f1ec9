/* Patrol tracks (巡查轨迹) on the dispatcher's map, and a grid's patrol figure in its popup.
 *
 * Tracks are personal data: GET /patrols answers only what the user may see (their own; their
 * workers' for supervisors in jurisdiction; admins) and audits every view of someone else's track.
 * The page shows what it gets: the layer is off by default, loaded when switched on, filtered by
 * day and worker, and taken off the layer list when the API refuses (401/403).
 */
(function () {
  'use strict';
  var GridMap = window.GridMap;
  var el = function (t, c, x) { return GridMap.el(t, c, x); };

  function today() {
    var d = new Date(), pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  function labelled(text, input) {
    var label = el('label', 'gm-field', text + ' ');
    label.appendChild(input);
    return label;
  }

  /** The filter of the patrol layer: a day and (optionally) a worker; shown while the layer is on. */
  function filterControl(onChange) {
    var control = L.control({ position: 'topleft' });
    control.onAdd = function () {
      var box = el('form', 'gm-panel gm-patrol-filter');
      var day = el('input');
      day.type = 'date';
      day.value = today();
      day.name = 'day';
      var worker = el('input');
      worker.type = 'text';
      worker.name = 'worker';
      worker.placeholder = '全部 all';
      worker.maxLength = 64;
      var go = el('button', null, '查询 Show');
      go.type = 'submit';
      box.appendChild(el('div', 'gm-panel-head', '巡查轨迹 Patrol tracks'));
      box.appendChild(labelled('日期 Day', day));
      box.appendChild(labelled('巡查员 Worker', worker));
      box.appendChild(go);
      box.addEventListener('submit', function (e) {
        e.preventDefault();
        onChange(day.value, worker.value.trim());
      });
      L.DomEvent.disableClickPropagation(box);
      control.values = function () { return [day.value, worker.value.trim()]; };
      return box;
    };
    return control;
  }

  function trackTooltip(p) {
    var km = (p.length_m / 1000).toFixed(2);
    return el('span', null, p.username + ' · ' + GridMap.when(p.started_at) + '–' + GridMap.when(p.ended_at).slice(11) +
      ' · ' + km + ' km · 网格 grids ' + p.grids.length);
  }

  /** The patrol-track layer of the layer control (off by default). */
  GridMap.patrolLayer = function (map, control, info) {
    var url = GridMap.config.patrolsUrl;
    if (!url) return;
    var group = L.featureGroup();
    var note = null;
    GridMap.patrols = { loaded: false, features: 0, ids: [] };
    var filter = filterControl(load);
    function refused() {
      control.removeLayer(group);
      map.removeLayer(group);
      GridMap.patrols = { denied: true };
    }
    function load(day, worker) {
      var q = '?day=' + encodeURIComponent(day || today()) + (worker ? '&worker=' + encodeURIComponent(worker) : '');
      GridMap.getJson(url + q).then(function (fc) {
        group.clearLayers();
        L.geoJSON(fc, {
          style: { color: '#ff7f00', weight: 4, opacity: 0.85 },
          onEachFeature: function (f, l) { l.bindTooltip(trackTooltip(f.properties), { sticky: true }); }
        }).addTo(group);
        var ids = fc.features.map(function (f) { return f.id; });
        GridMap.patrols = { loaded: true, features: ids.length, ids: ids, day: day || today(), worker: worker || null };
        if (!note) note = info.note('');
        note.textContent = '巡查轨迹 patrol tracks ' + (day || today()) + ': ' + ids.length;
      }).catch(function (err) {
        if (err.status === 401 || err.status === 403) { refused(); return; }
        if (!note) note = info.note('');
        note.textContent = '巡查轨迹不可用 patrol tracks unavailable (HTTP ' + (err.status || '?') + ')';
      });
    }
    group.on('add', function () {
      filter.addTo(map);
      var v = filter.values();
      load(v[0], v[1]);
    });
    group.on('remove', function () { filter.remove(); });
    control.addOverlay(group, '巡查轨迹 Patrol tracks');
    GridMap.patrolLayerGroup = group;
  };

  /** A grid's popup gets its patrol figure (patrols per week, 巡查覆盖率) when the API gives it. */
  GridMap.unitExtras.push(function (u, body, popup) {
    var base = GridMap.config.patrolCoverageUrl;
    if (!base || u.level !== 'grid') return;
    GridMap.getJson(base + encodeURIComponent(u.code)).then(function (f) {
      var line = GridMap.row(body, '巡查 Patrols (7天 days)', f.patrols + ' 次 · ' + f.patrols_per_week.toFixed(1) +
        '/周 week · 覆盖率 coverage ' + Math.round(f.coverage_share * 100) + '%');
      line.classList.add('gm-patrol-figure');
      popup.update();
    }).catch(function () { /* not allowed or not available: the popup shows no figure */ });
  });
}());
