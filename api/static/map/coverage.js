/* Coverage findings on the planner's map (GET /coverage?unit=...): area findings (gap, overlap,
 * sliver, outside parent, special outside community) drawn with their area and units; findings
 * about a grid (no staff, no party cell, size norm) shown by highlighting the grid in the unit
 * tiles; a count and a switch per kind; clicking a finding zooms to it. Findings of the unit's last
 * saved report that are gone now (`resolved`) are outlined green and dashed, with their own count
 * and switch. Texts reach the DOM through textContent only. */
(function () {
  'use strict';

  var G = window.GridMap;
  if (!G) return;

  var COLORS = {
    gap: '#d62728', overlap: '#ff7f0e', sliver: '#8c564b', outside_parent: '#9467bd',
    special_outside_community: '#e377c2', case_in_gap: '#1f77b4',
    no_staff: '#17becf', no_party_cell: '#bcbd22', size_norm: '#555555', not_patrolled: '#7f7f7f'
  };
  // Resolved: green (no finding kind uses it) and dashed, an outline with nothing filled.
  var RESOLVED = { color: '#2ca02c', weight: 3, dashArray: '6 4', fill: false, opacity: 1 };
  var NAMES = {
    gap: '空隙 gap', overlap: '重叠 overlap', sliver: '狭长碎片 sliver', outside_parent: '超出上级 outside parent',
    special_outside_community: '专属网格超出社区 special outside community', case_in_gap: '空隙中的事件 case in a gap',
    no_staff: '缺网格员 no staff', no_party_cell: '缺党组织 no party cell', size_norm: '规模超出标准 size norm',
    not_patrolled: '久未巡查 not patrolled'
  };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function describe(p) {
    return (NAMES[p.kind] || p.kind) + ' · ' + (p.units || []).join(', ') +
      (p.area_m2 !== null && p.area_m2 !== undefined ? ' · ' + Math.round(p.area_m2).toLocaleString() + ' m²' : '');
  }

  /** The findings of `url` on `map`, a panel listing them; `units` is the unit tile layer (highlights). */
  G.coverageOverlay = function (map, control, info, url, units) {
    var note = info.note('覆盖分析加载中… coverage loading');
    fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) { var e = new Error('HTTP ' + r.status); e.status = r.status; throw e; }
      return r.json();
    }).then(function (body) {
      var features = (body.findings && body.findings.features) || [];
      var byKind = {};
      features.forEach(function (f) { (byKind[f.properties.kind] = byKind[f.properties.kind] || []).push(f); });
      var layers = {}, highlighted = {};
      Object.keys(byKind).forEach(function (kind) {
        var c = COLORS[kind] || '#9467bd';
        var drawn = byKind[kind].filter(function (f) { return f.geometry; });
        layers[kind] = L.geoJSON({ type: 'FeatureCollection', features: drawn }, {
          style: { color: c, weight: 2, fillColor: c, fillOpacity: 0.45 },
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 7 }); },
          onEachFeature: function (f, l) { l.bindTooltip(el('span', null, describe(f.properties))); }
        }).addTo(map);
        highlighted[kind] = byKind[kind].filter(function (f) { return !f.geometry; })
          .map(function (f) { return (f.properties.units || [])[0]; }).filter(Boolean);
      });
      function restyle() {
        var styles = {};
        Object.keys(highlighted).forEach(function (kind) {
          if (!map.hasLayer(layers[kind])) return;
          highlighted[kind].forEach(function (code) {
            styles[code] = { weight: 3, color: COLORS[kind] || '#555', fill: true, fillColor: COLORS[kind] || '#555', fillOpacity: 0.3, opacity: 1 };
          });
        });
        Object.keys(G.coverageHighlighted || {}).forEach(function (code) { if (!styles[code] && units) units.resetFeatureStyle(code); });
        Object.keys(styles).forEach(function (code) {
          // A function, as gridmap.js's level styles are: the grid still counts as drawn.
          if (units) units.setFeatureStyle(code, function (p) { if (G.drawn.grid) G.drawn.grid.add(p.code); return styles[code]; });
        });
        G.coverageHighlighted = styles;
      }
      restyle();
      var resolved = (body.resolved && body.resolved.features) || [];
      var resolvedLayer = L.geoJSON({ type: 'FeatureCollection', features: resolved.filter(function (f) { return f.geometry; }) }, {
        style: RESOLVED,
        pointToLayer: function (f, latlng) { return L.circleMarker(latlng, Object.assign({ radius: 7 }, RESOLVED)); },
        onEachFeature: function (f, l) { l.bindTooltip(el('span', null, '已解决 resolved · ' + describe(f.properties))); }
      }).addTo(map);
      panel(map, byKind, layers, restyle, features.length, body.previous_report, { features: resolved, layer: resolvedLayer });
      note.textContent = '覆盖问题 coverage findings: ' + features.length +
        (body.previous_report ? ' · 已解决 resolved: ' + resolved.length : '');
      var counts = {};
      Object.keys(byKind).forEach(function (k) { counts[k] = byKind[k].length; });
      G.coverage = { features: features.length, kinds: counts, resolved: resolved.length, previousReport: body.previous_report };
    }).catch(function (err) {
      note.textContent = '覆盖分析不可用 coverage analysis unavailable' + (err.status ? ' (HTTP ' + err.status + ')' : '');
      G.coverage = { unavailable: true };
    });
  };

  function kindLine(kind, text, count, swatchStyle, toggle) {
    var line = el('label', 'gm-coverage-kind');
    line.dataset.kind = kind;
    var input = el('input');
    input.type = 'checkbox';
    input.checked = true;
    input.addEventListener('change', function () { toggle(input.checked); });
    var swatch = el('span', 'gm-swatch');
    Object.keys(swatchStyle).forEach(function (k) { swatch.style[k] = swatchStyle[k]; });
    line.appendChild(input);
    line.appendChild(swatch);
    line.appendChild(el('span', null, text + ' '));
    line.appendChild(el('strong', 'gm-count', count));
    return line;
  }

  function listItem(map, f, kind, prefix) {
    var item = el('li', null, prefix + describe(f.properties));
    item.tabIndex = 0;
    item.dataset.kind = kind;
    item.dataset.unit = (f.properties.units || [])[0] || '';
    var go = function () { zoomTo(map, f); };
    item.addEventListener('click', go);
    item.addEventListener('keydown', function (e) { if (e.key === 'Enter') go(); });
    return item;
  }

  function panel(map, byKind, layers, restyle, total, previous, resolved) {
    var box = el('div', 'gm-panel gm-coverage');
    box.appendChild(el('div', 'gm-panel-head', '覆盖问题 Coverage findings ' + total));
    if (previous) {
      // `new`: not in the unit's last saved report (GET /coverage marks each finding).
      var fresh = 0;
      Object.keys(byKind).forEach(function (k) { byKind[k].forEach(function (f) { if (f.properties.new) fresh++; }); });
      box.appendChild(el('div', 'gm-muted', '较上次报告新增 new since the last saved report: ' + fresh));
    }
    var list = el('ol', 'gm-list');
    function toggler(layer) {
      return function (on) {
        if (on) layer.addTo(map); else map.removeLayer(layer);
        restyle();
        fill();
      };
    }
    Object.keys(byKind).sort().forEach(function (kind) {
      box.appendChild(kindLine(kind, NAMES[kind] || kind, byKind[kind].length,
        { background: COLORS[kind] || '#9467bd' }, toggler(layers[kind])));
    });
    if (previous) {
      // Findings of the last saved report that are gone now (GET /coverage `resolved`).
      box.appendChild(kindLine('resolved', '已解决 resolved', resolved.features.length,
        { border: '2px dashed ' + RESOLVED.color, background: 'transparent' }, toggler(resolved.layer)));
    }
    function fill() {
      list.textContent = '';
      Object.keys(byKind).sort().forEach(function (kind) {
        if (!map.hasLayer(layers[kind])) return;
        byKind[kind].slice(0, 50).forEach(function (f) {
          list.appendChild(listItem(map, f, kind, previous && f.properties.new ? '新 new · ' : ''));
        });
      });
      if (previous && map.hasLayer(resolved.layer)) {
        resolved.features.slice(0, 50).forEach(function (f) {
          list.appendChild(listItem(map, f, 'resolved', '已解决 resolved · '));
        });
      }
    }
    fill();
    box.appendChild(list);
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    var control = L.control({ position: 'topleft' });
    control.onAdd = function () { return box; };
    control.addTo(map);
  }

  function zoomTo(map, f) {
    if (f.geometry) { map.fitBounds(L.geoJSON(f).getBounds(), { maxZoom: 18 }); return; }
    var code = (f.properties.units || [])[0];
    if (!code) return;
    fetch('/grids/' + encodeURIComponent(code), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (unit) { if (unit) map.fitBounds(L.geoJSON(unit).getBounds(), { maxZoom: 17 }); });
  }
}());
