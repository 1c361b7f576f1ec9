/* The editor's panels: validation (problems drawn where they are), impact, balance; publishing. */
(function () {
  'use strict';

  var PE = window.PlanEditor, el = PE.el;
  var problemLayer = null, transferLayer = null, caseMarker = null;
  var last = { validation: null, impact: null };

  function panel(name) {
    var box = document.querySelector('[data-panel="' + name + '"]');
    box.hidden = false;
    return { box: box, summary: box.querySelector('.pe-summary') };
  }

  /** Validation, impact and balance of the draft as it is now (after every edit). */
  PE.refreshPanels = function () {
    var id = PE.state.planId;
    if (!PE.state.plan || PE.state.plan.status !== 'draft') {
      ['validation', 'impact', 'balance'].forEach(function (n) { document.querySelector('[data-panel="' + n + '"]').hidden = true; });
      return Promise.resolve();
    }
    return Promise.all([
      PE.api('GET', '/plans/' + id + '/validate').then(validation, failed('validation')),
      PE.api('GET', '/plans/' + id + '/impact').then(impact, failed('impact')),
      PE.api('GET', '/plans/' + id + '/balance').then(balance, failed('balance'))
    ]).then(function () { document.body.dataset.panelsAt = String(Date.now()); });
  };

  function failed(name) {
    return function (err) {
      var p = panel(name);
      p.summary.textContent = '';
      if (err.status === 409 && err.body && err.body.conflicts) {
        p.summary.appendChild(el('div', 'pe-error', '冲突 Conflict: ' + err.message));
        PE.conflictNote(err.body.conflicts);
      } else {
        p.summary.appendChild(el('div', 'pe-error', '不可用 unavailable: ' + err.message));
      }
      if (name === 'impact') last.impact = null;
    };
  }

  // ------------------------------------------------------------------ validation
  function validation(v) {
    last.validation = v;
    var p = panel('validation');
    p.box.dataset.errors = v.errors;
    p.box.dataset.warnings = v.warnings;
    p.summary.textContent = (v.ok ? '可以发布 can publish' : '不能发布 cannot publish') +
      ' · 错误 errors ' + v.errors + ' · 警告 warnings ' + v.warnings;
    p.summary.className = 'pe-summary' + (v.ok ? '' : ' pe-error');
    document.getElementById('publish').disabled = !v.ok;
    if (problemLayer) PE.map.removeLayer(problemLayer);
    problemLayer = L.geoJSON({ type: 'FeatureCollection', features: v.problems.features.filter(function (f) { return f.geometry; }) }, {
      style: function (f) {
        var error = f.properties.severity === 'error';
        return { color: error ? '#b00020' : '#e08a00', weight: 2, fillColor: error ? '#ff0000' : '#ffb000', fillOpacity: error ? 0.55 : 0.25 };
      },
      pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 8 }); },
      onEachFeature: function (f, l) { l.bindTooltip(el('span', null, f.properties.message)); }
    }).addTo(PE.map);
    var list = PE.clear(p.box.querySelector('ul'));
    v.problems.features.forEach(function (f) {
      var q = f.properties;
      var li = el('li', 'pe-click pe-severity-' + q.severity);
      li.tabIndex = 0;
      li.dataset.kind = q.kind;
      li.dataset.severity = q.severity;
      li.appendChild(el('strong', null, (q.severity === 'error' ? '错误 error' : '警告 warning') + ' · ' + q.kind + ' '));
      li.appendChild(el('span', null, q.message));
      var zoom = function () { if (f.geometry) PE.fit(L.geoJSON(f)); };
      li.addEventListener('click', zoom);
      li.addEventListener('keydown', function (e) { if (e.key === 'Enter') zoom(); });
      list.appendChild(li);
    });
    if (!list.firstChild) list.appendChild(el('li', 'pe-muted', '没有问题 no problems'));
  }

  // ------------------------------------------------------------------ impact
  function pair(x) {
    if (!x) return '—';
    var b = x.before === null || x.before === undefined ? '—' : x.before;
    var a = x.after === null || x.after === undefined ? '—' : x.after;
    return b === a ? String(b) : b + ' → ' + a;
  }

  function impact(body) {
    last.impact = body;
    var p = panel('impact');
    p.summary.textContent = body.note ? '说明 note: ' + body.note : '';
    var wrap = PE.clear(p.box.querySelector('.pe-table-wrap'));
    var table = el('table', 'pe-table');
    var head = el('tr');
    ['单元 Unit', '变化 Change', '户数 Households', '人口 Population', '待办事件 Open cases', '党组织 Party cells', '人员 Staff']
      .forEach(function (h) { head.appendChild(el('th', null, h)); });
    table.appendChild(head);
    body.units.forEach(function (u) {
      var tr = el('tr');
      tr.dataset.code = u.code;
      tr.appendChild(el('td', null, u.code + ' ' + u.name));
      tr.appendChild(el('td', null, PE.CHANGE_NAMES[u.change] || u.change));
      [u.households, u.population, u.open_cases, u.party_cells, u.staff].forEach(function (x, i) {
        var td = el('td', x && x.before !== x.after ? 'pe-delta' : null, pair(x) + (i < 2 && u.estimated ? '≈' : ''));
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    wrap.appendChild(table);
    if (transferLayer) PE.map.removeLayer(transferLayer);
    transferLayer = L.geoJSON(body.transfers, {
      style: { color: '#1f3a5f', weight: 1.5, dashArray: '6 3', fillColor: '#1f3a5f', fillOpacity: 0.12 },
      onEachFeature: function (f, l) {
        var t = f.properties;
        l.bindTooltip(el('span', null, '易手 changes hands: ' + (t.from || '空隙 gap') + ' → ' + (t.to || '空隙 gap') +
          ' · ' + Math.round(t.area_m2) + ' m² · ≈' + Math.round(t.households) + ' 户 households'));
      }
    }).addTo(PE.map);
    var cases = PE.clear(p.box.querySelector('.pe-cases'));
    body.cases.forEach(function (c) {
      var li = el('li', 'pe-click');
      li.tabIndex = 0;
      li.dataset.caseId = c.id;
      li.textContent = c.number + ' · ' + c.status + ' · ' + (c.from.grid || '—') + ' → ' + (c.to.grid || '无 none');
      var showCase = function () {
        if (caseMarker) PE.map.removeLayer(caseMarker);
        var box = el('div');
        box.appendChild(el('strong', null, c.number));
        box.appendChild(el('div', null, (c.from.grid || '—') + ' → ' + (c.to.grid || '无 none')));
        box.appendChild(el('div', 'pe-muted', c.explanation || ''));
        caseMarker = L.circleMarker([c.lat, c.lon], { radius: 7, color: '#111', fillColor: '#fff', fillOpacity: 1 })
          .addTo(PE.map).bindPopup(box).openPopup();
        PE.map.setView([c.lat, c.lon], Math.max(PE.map.getZoom(), 16));
      };
      li.addEventListener('click', showCase);
      li.addEventListener('keydown', function (e) { if (e.key === 'Enter') showCase(); });
      cases.appendChild(li);
    });
    if (!cases.firstChild) cases.appendChild(el('li', 'pe-muted', '无 none'));
  }

  // ------------------------------------------------------------------ balance
  function balance(b) {
    var p = panel('balance');
    p.summary.textContent = b.spread.map(function (s) {
      return (PE.KIND_NAMES[s.kind] || s.kind) + ': ' + s.grids + ' 格 grids · 最少 min ' + s.min + ' · 最多 max ' + s.max +
        (s.ratio ? ' · 比 max/min ' + s.ratio : '') + ' · 偏离标准中值 deviation from the norm ' + Math.round(s.mean_deviation * 100) + '%';
    }).join(' | ');
    var bars = PE.clear(p.box.querySelector('.pe-bars'));
    var top = 1;
    b.grids.forEach(function (g) { top = Math.max(top, g.households || 0, g.norm ? g.norm[1] : 0); });
    b.grids.forEach(function (g) {
      var row = el('div', 'pe-bar-row pe-' + g.status);
      row.dataset.code = g.code;
      row.dataset.status = g.status;
      row.title = (g.norm ? '标准 norm ' + g.norm[0] + '–' + g.norm[1] : '无标准 no norm') + ' · ' + g.status;
      row.appendChild(el('span', null, (g.changed ? '* ' : '') + g.code.slice(-3) + ' ' + g.name));
      var track = el('div', 'pe-bar-track');
      if (g.norm) {
        var norm = el('div', 'pe-norm');
        norm.style.left = (100 * g.norm[0] / top) + '%';
        norm.style.width = (100 * (g.norm[1] - g.norm[0]) / top) + '%';
        track.appendChild(norm);
      }
      var bar = el('div', 'pe-bar');
      bar.style.width = (100 * (g.households || 0) / top) + '%';
      track.appendChild(bar);
      row.appendChild(track);
      row.appendChild(el('span', null, g.households === null ? '—' : (g.estimated ? '≈' : '') + g.households));
      bars.appendChild(row);
    });
  }

  // ------------------------------------------------------------------ publish
  PE.askPublish = function () {
    var dialog = document.getElementById('dialog');
    var body = PE.clear(document.getElementById('dialog-body'));
    document.getElementById('dialog-title').textContent = '发布草案 Publish the draft #' + PE.state.planId + '?';
    var changes = (PE.state.plan.changes && PE.state.plan.changes.features) || [];
    ['created', 'changed', 'retired'].forEach(function (kind) {
      var some = changes.filter(function (f) { return f.properties.change === kind; });
      if (!some.length) return;
      body.appendChild(el('div', null, PE.CHANGE_NAMES[kind] + ' ' + some.length + ': ' +
        some.map(function (f) { return f.properties.code + ' ' + (f.properties.name || ''); }).join('; ')));
    });
    if (last.impact) {
      body.appendChild(el('div', null, '转移事件 cases moving: ' + last.impact.cases.length + ' · 党组织 party cells: ' +
        last.impact.party_cells.length + ' · 人员 staff: ' + last.impact.staff.length));
    }
    if (last.validation && last.validation.warnings) body.appendChild(el('div', 'pe-muted', '警告 warnings: ' + last.validation.warnings));
    var ok = document.getElementById('dialog-ok'), cancel = document.getElementById('dialog-cancel');
    var close = function () { dialog.hidden = true; ok.onclick = null; cancel.onclick = null; };
    ok.disabled = false;
    cancel.onclick = close;
    ok.onclick = function () {
      ok.disabled = true;
      PE.api('POST', '/plans/' + PE.state.planId + '/publish').then(function (result) {
        close();
        PE.say('已发布 Published: 新建 created ' + result.created.length + ' · 调整 changed ' + result.changed.length +
          ' · 撤销 retired ' + result.retired.length + ' · 事件 cases ' + result.cases.length);
        document.body.dataset.published = 'true';
        PE.tools.build(false);
        return PE.api('GET', '/plans/' + PE.state.planId).then(function (plan) { PE.show(plan); PE.refreshPanels(); });
      }).catch(function (err) {
        close();
        if (err.status === 409 && err.body && err.body.conflicts) {
          PE.conflictNote(err.body.conflicts);
          PE.say('发布被拒绝：冲突 Publish refused: conflict — ' + err.message, true);
          PE.reload().then(function () { PE.conflictNote(err.body.conflicts); });
        } else {
          PE.say('发布被拒绝 Publish refused: ' + err.message, true);
        }
      });
    };
    dialog.hidden = false;
    ok.focus();
  };
}());
