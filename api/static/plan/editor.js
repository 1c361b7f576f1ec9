/* The planner's editor: /plan (pick a unit, open or resume a draft) and /plan/{id} (the draft). */
(function () {
  'use strict';

  var PE = window.PlanEditor, el = PE.el;
  var S = PE.state = { plan: null, selected: [], tool: null, draft: {}, micro: {}, layers: {} };
  var map = PE.makeMap();
  PE.legend(map);
  var planMatch = location.pathname.match(/^\/plan\/(\d+)\/?$/);

  PE.api('GET', '/auth/me').then(function (me) {
    document.getElementById('who').textContent = me.username + ' · ' + me.role + ' · ' + (me.unit_code || '全部 all');
    S.me = me;
  }).catch(function () { /* the page itself needs a session; the server sent it to /login if absent */ });

  // ------------------------------------------------------------------ /plan: pick a unit
  function startPage() {
    var section = document.getElementById('pick');
    section.hidden = false;
    var input = document.getElementById('search'), results = document.getElementById('results');
    var timer = null;
    input.addEventListener('input', function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (!q) { PE.clear(results); return; }
      timer = setTimeout(function () {
        PE.api('GET', '/map/search?q=' + encodeURIComponent(q)).then(function (body) {
          if (input.value.trim() !== q) return;
          PE.clear(results);
          body.units.filter(function (u) { return PE.CHILD_LEVEL[u.level]; }).forEach(function (u) {
            var li = el('li', 'pe-click');
            li.tabIndex = 0;
            li.dataset.code = u.code;
            li.appendChild(el('strong', null, u.name));
            li.appendChild(el('span', 'pe-mono', ' ' + u.code));
            li.appendChild(el('span', 'pe-muted', ' ' + u.level));
            li.addEventListener('click', function () { choose(u.code, u.name); });
            li.addEventListener('keydown', function (e) { if (e.key === 'Enter') choose(u.code, u.name); });
            results.appendChild(li);
          });
          if (!results.firstChild) results.appendChild(el('li', 'pe-muted', '无结果 nothing found'));
        }).catch(function (err) { PE.say('搜索失败 search failed: ' + err.message, true); });
      }, 200);
    });
    // Communities to click on (the user's jurisdiction answers for itself on the server).
    PE.api('GET', '/grids?level=community').then(function (fc) {
      var layer = L.geoJSON(fc, {
        style: { color: '#6a3d9a', weight: 1.5, fillOpacity: 0.05 },
        onEachFeature: function (f, l) {
          l.bindTooltip(el('span', null, f.properties.name + ' ' + f.properties.code));
          l.on('click', function () { choose(f.properties.code, f.properties.name); });
        }
      }).addTo(map);
      S.layers.pick = layer;
      PE.fit(layer);
    });
    document.getElementById('new-draft').addEventListener('submit', function (e) {
      e.preventDefault();
      var title = document.getElementById('draft-title').value.trim();
      if (!S.chosen || !title) return;
      PE.api('POST', '/plans', { unit: S.chosen, title: title }).then(function (plan) {
        location.href = '/plan/' + plan.id;
      }).catch(function (err) { PE.say('无法新建草案 could not open a draft: ' + err.message, true); });
    });
  }

  function choose(code, name) {
    S.chosen = code;
    document.getElementById('chosen').hidden = false;
    document.getElementById('chosen-name').textContent = name + ' ' + code;
    var drafts = PE.clear(document.getElementById('drafts'));
    PE.api('GET', '/grids/' + encodeURIComponent(code)).then(function (unit) {
      var level = PE.CHILD_LEVEL[unit.properties.level];
      if (S.layers.children) map.removeLayer(S.layers.children);
      if (!level) return;
      return PE.api('GET', '/grids?level=' + level + '&parent=' + encodeURIComponent(code)).then(function (fc) {
        S.layers.children = L.geoJSON(fc, {
          style: function (f) { return PE.unitStyle(f.properties, false); },
          onEachFeature: function (f, l) {
            l.bindTooltip(el('span', null, f.properties.name + ' ' + f.properties.code));
            if (level === 'grid') l.on('click', function (e) { L.DomEvent.stop(e); choose(f.properties.code, f.properties.name); });
          }
        }).addTo(map);
        PE.fit(S.layers.children);
      });
    }).catch(function (err) { PE.say(err.message, true); });
    PE.api('GET', '/plans?status=draft&unit=' + encodeURIComponent(code)).then(function (plans) {
      plans.filter(function (p) { return p.unit === code; }).forEach(function (p) {
        var li = el('li');
        var a = el('a', null, '#' + p.id + ' ' + p.title);
        a.href = '/plan/' + p.id;
        li.appendChild(a);
        li.appendChild(el('div', 'pe-muted', '作者 author ' + p.author + ' · ' + PE.when(p.created_at) +
          ' · ' + p.status + ' · ' + p.edits + ' 项修改 edits'));
        drafts.appendChild(li);
      });
      if (!drafts.firstChild) drafts.appendChild(el('li', 'pe-muted', '无草案 no drafts yet'));
    }).catch(function (err) {
      drafts.appendChild(el('li', 'pe-error', err.status === 403 ? '需规划权限 planning permission needed' : err.message));
      document.getElementById('new-draft').hidden = err.status === 403;
    });
  }

  // ------------------------------------------------------------------ /plan/{id}: the draft
  function draftPage(planId) {
    S.planId = planId;
    PE.api('GET', '/plans/' + planId).then(function (plan) {
      S.plan = plan;
      document.getElementById('draft').hidden = false;
      return PE.api('GET', '/grids/' + encodeURIComponent(plan.unit)).then(function (unit) {
        S.unit = unit.properties;
        S.childLevel = PE.CHILD_LEVEL[unit.properties.level];
        return loadCurrent();
      }).then(function (found) {
        S.control = L.control.layers(null, {}, { collapsed: false }).addTo(map);
        S.control.addOverlay(S.layers.current, '现状边界 Current boundaries');
        PE.swipe(map);
        show(plan);
        PE.fit(L.geoJSON(found[0]));
        PE.tools.build(plan.status === 'draft');
        PE.refreshPanels();
        // Another plan published (or an import): the current units, the draft over them and its
        // conflicts are drawn again, without a reload.
        window.GridMapBoundaries.watch(function () {
          loadCurrent().then(PE.reload).then(PE.swipe.refresh).then(function () { PE.say('边界已更新 boundaries changed elsewhere: redrawn'); });
        });
      });
    }).catch(function (err) {
      document.getElementById('draft').hidden = true;
      PE.say(err.status === 403 ? '只读：需规划权限 Read only: planning permission needed (' + err.message + ')' :
        '无法加载草案 could not load the plan: ' + err.message, true);
    });
  }

  /** The current units below the plan's unit (its children, and micro-grids for a community). */
  function loadCurrent() {
    var unit = encodeURIComponent(S.plan.unit);
    var loads = [PE.api('GET', '/grids?level=' + S.childLevel + '&parent=' + unit)];
    if (S.childLevel === 'grid') loads.push(PE.api('GET', '/grids?level=micro_grid&parent=' + unit));
    return Promise.all(loads).then(function (found) {
      S.base = {};
      found[0].features.forEach(function (f) { S.base[f.properties.code] = f; });
      S.baseMicro = {};
      (found[1] ? found[1].features : []).forEach(function (f) { S.baseMicro[f.properties.code] = f; });
      var shown = S.layers.current && map.hasLayer(S.layers.current);
      if (S.layers.current) { map.removeLayer(S.layers.current); if (S.control) S.control.removeLayer(S.layers.current); }
      S.layers.current = L.geoJSON(found[0], {
        interactive: false, style: { color: '#555', weight: 1, dashArray: '2 3', fill: false }
      });
      if (S.control) S.control.addOverlay(S.layers.current, '现状边界 Current boundaries');
      if (shown) S.layers.current.addTo(map);
      return found;
    });
  }

  /** Draw the draft (current units with the plan's changes) and the list of edits. */
  function show(plan) {
    S.plan = plan;
    document.getElementById('plan-title').textContent = '#' + plan.id + ' ' + plan.title;
    document.getElementById('plan-meta').textContent = '单元 unit ' + plan.unit + ' · 作者 author ' + plan.author +
      ' · ' + PE.when(plan.created_at) + ' · 状态 state ' + plan.status;
    var changes = {};
    ((plan.changes && plan.changes.features) || []).forEach(function (f) { changes[f.properties.code] = f; });
    S.draft = {};
    S.micro = {};
    var retired = [];
    function place(f, into) {
      var c = changes[f.properties.code];
      if (c && c.properties.change === 'retired') { retired.push(c); return; }
      into[f.properties.code] = c || { type: 'Feature', geometry: f.geometry, properties: L.extend({}, f.properties, { change: 'unchanged' }) };
    }
    Object.keys(S.base).forEach(function (code) { place(S.base[code], S.draft); });
    Object.keys(S.baseMicro || {}).forEach(function (code) { place(S.baseMicro[code], S.micro); });
    Object.keys(changes).forEach(function (code) {
      var f = changes[code];
      if (f.properties.change !== 'created') return;
      (f.properties.level === 'micro_grid' ? S.micro : S.draft)[code] = f;
    });
    S.selected = S.selected.filter(function (c) { return S.draft[c] || S.micro[c]; });
    S.retired = retired;
    redraw();
    edits(plan);
    conflictNote(plan.conflicts);
  }
  PE.show = show;

  function features(byCode) { return Object.keys(byCode).sort().map(function (c) { return byCode[c]; }); }

  function redraw() {
    ['draft', 'micro', 'retired'].forEach(function (name) {
      if (S.layers[name]) { map.removeLayer(S.layers[name]); S.control.removeLayer(S.layers[name]); }
    });
    var pick = function (f, l) {
      l.bindTooltip(el('span', null, f.properties.name + ' ' + f.properties.code + ' · ' +
        (PE.CHANGE_NAMES[f.properties.change] || '')), { sticky: true });
      l.on('click', function (e) {
        if (PE.tools.drawing()) return;
        L.DomEvent.stop(e);
        PE.tools.toggle(f.properties.code);
      });
    };
    var style = function (f) { return PE.unitStyle(f.properties, S.selected.indexOf(f.properties.code) >= 0); };
    var pane = S.swipe ? 'pe-draft' : 'overlayPane';  // the swipe (swipe.js) clips the draft's own pane
    S.layers.retired = L.geoJSON({ type: 'FeatureCollection', features: S.retired }, { style: style, interactive: false, pane: pane }).addTo(map);
    S.layers.draft = L.geoJSON({ type: 'FeatureCollection', features: features(S.draft) }, { style: style, onEachFeature: pick, pane: pane }).addTo(map);
    S.layers.micro = L.geoJSON({ type: 'FeatureCollection', features: features(S.micro) }, {
      pane: pane,
      style: function (f) {
        var s = PE.unitStyle(f.properties, S.selected.indexOf(f.properties.code) >= 0);
        s.weight = Math.min(s.weight, 1.5); s.fillOpacity = s.fillOpacity / 2;
        return s;
      },
      onEachFeature: pick
    });
    if (S.tool === 'move') S.layers.micro.addTo(map);
    S.control.addOverlay(S.layers.draft, '草案网格 Draft grids');
    S.control.addOverlay(S.layers.micro, '草案微网格 Draft micro-grids');
    S.control.addOverlay(S.layers.retired, '草案撤销 Retired in draft');
    S.layers.draft.bringToFront();
    if (S.tool === 'move') S.layers.micro.bringToFront();  // micro-grids lie inside grids: on top to be clicked
    document.body.dataset.draftUnits = Object.keys(S.draft).length;
  }
  PE.redraw = redraw;

  function edits(plan) {
    var list = PE.clear(document.getElementById('edits'));
    (plan.edits || []).forEach(function (e) {
      var li = el('li');
      li.dataset.editId = e.id;
      var p = e.params || {};
      var what = [PE.OPERATION_NAMES[e.operation] || e.operation, p.code || (p.codes || []).join('+'),
        p.into ? '→ ' + p.into : '', p.to ? '→ ' + p.to : '', p.name || '', (p.allocated || []).join(', ')];
      li.appendChild(el('span', null, e.seq + '. ' + what.filter(Boolean).join(' ')));
      if (plan.status === 'draft') {
        var remove = el('button', null, '删除 Remove');
        remove.type = 'button';
        remove.dataset.action = 'remove-edit';
        remove.setAttribute('aria-label', '删除修改 Remove edit ' + e.seq);
        remove.addEventListener('click', function () { PE.removeEdit(e.id); });
        li.appendChild(remove);
      }
      list.appendChild(li);
    });
    if (!list.firstChild) list.appendChild(el('li', 'pe-muted', '尚无修改 no edits yet'));
  }

  function conflictNote(conflicts) {
    var box = PE.clear(document.getElementById('conflict'));
    box.hidden = !(conflicts && conflicts.length);
    if (box.hidden) return;
    box.appendChild(el('strong', null, '冲突 Conflict: 草案已保留 the draft is kept'));
    conflicts.forEach(function (c) {
      var text = '单元 unit ' + c.code + ': ' + c.reason + ' · 版本 versions ' + (c.base_version === undefined ? '—' : c.base_version) +
        ' → ' + (c.current_version === null || c.current_version === undefined ? '—' : c.current_version) +
        (c.by_plan ? ' · 规划 plan #' + c.by_plan + ' ' + (c.by_plan_title || '') : '');
      box.appendChild(el('div', 'pe-conflict-line', text));
    });
  }
  PE.conflictNote = conflictNote;

  /** After every edit: the plan (its changes and edits), then validation, impact and balance. */
  PE.reload = function () {
    return PE.api('GET', '/plans/' + S.planId).then(function (plan) {
      show(plan);
      return PE.refreshPanels();
    });
  };

  PE.addEdit = function (edit) {
    PE.say('保存中… saving');
    return PE.api('POST', '/plans/' + S.planId + '/edits', edit).then(function (plan) {
      S.selected = [];
      show(plan);
      PE.say('已保存修改 edit saved (' + (PE.OPERATION_NAMES[edit.operation] || edit.operation) + ')');
      return PE.refreshPanels();
    });
  };

  PE.removeEdit = function (editId) {
    return PE.api('DELETE', '/plans/' + S.planId + '/edits/' + editId).then(function (plan) {
      show(plan);
      PE.say('已删除修改 edit removed');
      return PE.refreshPanels();
    }).catch(function (err) { PE.say('无法删除 could not remove: ' + err.message, true); });
  };

  if (planMatch) draftPage(Number(planMatch[1])); else startPage();
}());
