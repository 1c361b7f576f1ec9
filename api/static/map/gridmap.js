/* The live map's page code: unit styles and popups, open cases, search, overlays, controls.
 *
 * folium builds the map, its layers and the layer control, then calls GridMap.start(...) with
 * them. Everything users or operators wrote (names, case descriptions, addresses) reaches the DOM
 * through textContent only, never innerHTML: `<img src=x onerror=alert(1)>` stays text.
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ small helpers
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function row(parent, label, value) {
    var line = el('div', 'gm-row');
    line.appendChild(el('span', 'gm-label', label));
    line.appendChild(el('span', 'gm-value', value === null || value === undefined ? '—' : value));
    parent.appendChild(line);
    return line;
  }

  function getJson(url) {
    return fetch(url, { headers: { Accept: 'application/json' } }).then(function (r) {
      if (!r.ok) { var e = new Error(url + ': HTTP ' + r.status); e.status = r.status; throw e; }
      return r.json();
    });
  }

  function when(iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    if (isNaN(d)) return String(iso);
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  var KIND_NAMES = { urban: '城镇 urban', rural: '农村 rural', special: '专属 special' };
  var LEVEL_NAMES = {};  // level -> "网格 Grid": from the page's config (geo.codes.LEVEL_NAMES), see start()
  var ROLE_NAMES = {
    grid_chief: '网格长', full_time: '专职网格员', part_time: '兼职网格员',
    volunteer: '志愿者', building_head: '楼栋长'
  };
  var PARTY_NAMES = {
    branch: '网格党支部', group: '党小组', central_household: '党员中心户', instructor: '党建指导员'
  };
  var LIGHT_NAMES = { green: '绿 on time', yellow: '黄 due soon', red: '红 overdue' };
  var LIGHT_RANK = { red: 0, yellow: 1, green: 2 };

  // ------------------------------------------------------------------ state the tests read
  var GridMap = window.GridMap = {
    el: el, row: row, getJson: getJson, when: when, PARTY_NAMES: PARTY_NAMES, LEVEL_NAMES: LEVEL_NAMES,
    LIGHT_RANK: LIGHT_RANK,
    wgs84ToGcj02: window.GridMapCrs.wgs84ToGcj02,  // crs.js
    gcj02ToWgs84: window.GridMapCrs.gcj02ToWgs84,
    drawn: {},        // level -> Set of unit codes the renderer drew
    cases: {},        // case id -> latest GeoJSON feature
    readyAt: null,    // performance.now() when every default layer had drawn
    config: null
  };

  // ------------------------------------------------------------------ unit layers
  var STYLES = {
    province: function () { return { weight: 4, color: '#111', opacity: 0.9, fill: false }; },
    city: function () { return { weight: 3.5, color: '#444', opacity: 0.9, dashArray: '10 4', fill: false }; },
    county: function () { return { weight: 3, color: '#333', opacity: 0.9, fill: false }; },
    street: function () { return { weight: 2, color: '#6a3d9a', opacity: 0.8, fill: false }; },
    // Thick dark dashes: at z13 a community's outline must not read as one more grid line.
    // (Thinner below z12: there the county view shows hundreds of them.)
    community: function (p, zoom) {
      var near = zoom === undefined || zoom >= 12;
      return { weight: near ? 2.5 : 1.2, color: '#3f007d', opacity: 0.85, dashArray: near ? '8 4' : '4 3', fill: false };
    },
    grid: function (p) {
      var colors = { urban: '#4e79a7', rural: '#59a14f', special: '#e15759' };
      var c = colors[p.kind] || '#999';
      var mine = GridMap.config && p.code === GridMap.config.grid;
      return {
        weight: mine ? 3 : (p.kind === 'special' ? 1.5 : 0.6),
        color: mine ? '#d62728' : c,
        opacity: 0.9,
        dashArray: p.kind === 'special' ? '3 2' : null,
        fill: true,
        fillColor: c,
        fillOpacity: p.kind === 'special' ? 0.3 : (mine ? 0.3 : 0.12)
      };
    },
    micro_grid: function () {
      return { weight: 0.5, color: '#888', opacity: 0.8, fill: true, fillColor: '#bbb', fillOpacity: 0.1 };
    }
  };
  GridMap.styles = STYLES;
  var hidden = new Set();  // levels switched off in the layer control

  /** VectorGrid options of the units layer (folium passes them to L.vectorGrid.protobuf). */
  GridMap.tileOptions = function (bounds, generation) {
    var styles = {};
    Object.keys(STYLES).forEach(function (level) {
      var drawn = GridMap.drawn[level] = new Set();
      styles[level] = function (properties, zoom) {
        if (hidden.has(level)) return [];  // VectorGrid draws nothing for an empty list
        drawn.add(properties.code);
        return STYLES[level](properties, zoom);
      };
    });
    return {
      rendererFactory: L.svg.tile,
      vectorTileLayerStyles: styles,
      interactive: true,
      getFeatureId: function (f) { return f.properties.code; },
      // 512 px tiles (the server sends the 256 px tile of the zoom above): a quarter of the requests,
      // and fewer features cut in pieces at tile edges.
      tileSize: 512,
      minNativeZoom: 1,
      maxNativeZoom: 17,   // deeper zooms scale the z17 tile: nothing finer is worth a request
      maxZoom: 21,
      g: generation || 0,  // the boundary generation in every tile URL (boundaries.js moves it on)
      bounds: bounds ? L.latLngBounds(bounds).pad(0.02) : undefined  // no requests where there is no data
    };
  };

  /** A switch per level in the layer control: the levels share one tile layer, so they are styles. */
  function levelSwitches(map, control, units, config) {
    config.levels.forEach(function (pair) {
      var level = pair[0], toggle = L.layerGroup().addTo(map);
      toggle.on('add remove', function (e) {
        if (e.type === 'add') hidden.delete(level); else hidden.add(level);
        GridMap.drawn[level].clear();
        units.redraw();
      });
      control.addOverlay(toggle, pair[1]);
    });
  }

  var dragging = false;  // no unit tooltip opens while the map is dragged or glides (it would stay behind)

  function closeTooltips(map) {
    map.eachLayer(function (l) { if (l instanceof L.Tooltip) map.closeTooltip(l); });
  }

  // A touch screen has no hover: a tooltip opened by a tap would stay where the finger left it.
  var touchOnly = window.matchMedia && window.matchMedia('(hover: none)').matches;

  function unitTooltip(map, e) {
    if (dragging || touchOnly) return;
    var p = e.layer.properties || {};
    var box = el('div', 'gm-tip');
    box.appendChild(el('strong', null, p.name));
    box.appendChild(el('div', 'gm-mono', p.code));
    if (p.kind) box.appendChild(el('div', null, KIND_NAMES[p.kind] || p.kind));
    map.openTooltip(box, e.latlng, { direction: 'top', offset: [0, -6], className: 'gm-tooltip' });
  }

  /** Popup options of a fixed, readable width that fits the map (a phone is 390 px wide). */
  GridMap.popupOptions = function (map) {
    var width = Math.max(200, Math.min(300, map.getSize().x - 60));
    // On a phone the controls take the top 190 px: the popup pans below them, its name in sight.
    var top = GridMap.narrow(map) ? [12, 190] : [12, 12];
    return {
      minWidth: width, maxWidth: width, autoPanPaddingTopLeft: top, autoPanPaddingBottomRight: [12, 12],
      className: 'gm-fixed-popup'
    };
  };
  GridMap.unitExtras = [];  // functions (unit, body, map) adding rows to a unit's popup (patrols.js)

  function unitPopup(map, code, latlng) {
    var box = el('div', 'gm-popup gm-unit');
    var head = el('div', 'gm-popup-head');  // name and code stay in sight: only the body scrolls
    var body = el('div', 'gm-popup-body');
    body.style.maxHeight = Math.max(120, Math.round(map.getSize().y * 0.4)) + 'px';
    head.appendChild(el('h3', null, code));
    body.appendChild(el('div', 'gm-muted', '加载中… loading'));
    box.appendChild(head);
    box.appendChild(body);
    var popup = L.popup(GridMap.popupOptions(map)).setLatLng(latlng).setContent(box).openOn(map);
    getJson('/map/units/' + encodeURIComponent(code)).then(function (u) {
      head.textContent = '';
      body.textContent = '';
      box.dataset.code = u.code;
      head.appendChild(el('h3', null, u.name));
      head.appendChild(el('div', 'gm-mono', u.code));
      body.appendChild(el('div', 'gm-chain', (u.parents || []).map(function (p) { return p.name; }).join(' › ')));
      row(body, '层级 Level', LEVEL_NAMES[u.level] || u.level);
      if (u.kind) row(body, '类型 Kind', (KIND_NAMES[u.kind] || u.kind) + (u.special_type ? ' · ' + u.special_type : ''));
      row(body, '户数 Households', u.households);
      row(body, '人口 Population', u.population);
      var staff = Object.keys(ROLE_NAMES).map(function (r) {
        return ROLE_NAMES[r] + ' ' + (u.staff_counts[r] || 0);
      }).join(' · ');
      row(body, '人员 Staff', staff);
      var party = Object.keys(u.party_cell_counts || {}).map(function (k) {
        return (PARTY_NAMES[k] || k) + ' ' + u.party_cell_counts[k];
      }).join(' · ');
      row(body, '党组织 Party cells', party || '无 none');
      var cases = row(body, '事件 Cases', '待办 open ' + u.open_cases + ' · 超时 overdue ' + u.overdue_cases);
      if (u.overdue_cases > 0) cases.classList.add('gm-overdue');
      if (GridMap.config.reportUrl) {
        var a = el('a', 'gm-button', '在此上报事件 Report a case');
        a.href = GridMap.config.reportUrl;
        body.appendChild(a);
      }
      GridMap.unitExtras.forEach(function (extra) { extra(u, body, popup); });
      popup.update();  // it grew: lay it out and pan it into view again
    }).catch(function (err) {
      body.textContent = '';
      body.appendChild(el('div', 'gm-error', '无法加载 could not load ' + code + ' (' + err.message + ')'));
    });
  }

  function watchUnits(map, layer, pending) {
    layer.on('click', function (e) {
      L.DomEvent.stop(e);
      unitPopup(map, e.layer.properties.code, e.latlng);
    });
    layer.on('mouseover', function (e) { unitTooltip(map, e); });
    layer.on('mouseout', function () { closeTooltips(map); });
    map.on('dragstart', function () { dragging = true; closeTooltips(map); });
    // Not at dragend: the map glides on (inertia) until moveend, and a hover handled late on a busy
    // page would open a tooltip that rides away from the pointer with the gliding map.
    map.on('moveend', function () { dragging = false; });
    map.on('zoomstart', function () { closeTooltips(map); });
    pending.add('units');
    layer.once('load', function () { pending.done('units'); });
  }

  // ------------------------------------------------------------------ open cases
  GridMap.caseId = function (f) { return f.id; };

  /** A stored status in Chinese with its English key: "已派遣 dispatched" (cases/vocabulary.py). */
  GridMap.statusName = function (status) {
    var names = (GridMap.config && GridMap.config.statusNames) || {};
    return names[status] ? names[status] + ' ' + status : status;
  };

  /** Case clusters: 40 px apart up to z14; from z15 only cases at the same spot (they fan out). */
  GridMap.clusterRadius = function (zoom) { return zoom >= 15 ? 1 : 40; };

  /** A click on a case cluster: fan out cases at one spot (or at the deepest zoom), else zoom in. */
  function fanOrZoom(map, e) {
    var key = e.originalEvent && e.originalEvent.key;
    if (e.type === 'clusterkeypress' && key !== 'Enter') return;
    var b = e.layer.getBounds();
    if (b.getNorthEast().equals(b.getSouthWest()) || map.getZoom() >= map.getMaxZoom()) e.layer.spiderfy();
    else e.layer.zoomToBounds({ padding: [24, 24] });
  }

  function caseIcon(p) {
    var glyph = el('span', 'gm-case-glyph', (p.top_name || p.category_name || '?').charAt(0));
    return L.divIcon({
      html: glyph,
      className: 'gm-case gm-light-' + (p.light || 'none') + (p.urgent ? ' gm-urgent' : ''),
      iconSize: [24, 24],
      iconAnchor: [12, 12],
      popupAnchor: [0, -12]
    });
  }

  function casePopup(layer) {
    var p = layer.feature.properties;
    var box = el('div', 'gm-popup gm-case-popup');
    box.dataset.caseId = layer.feature.id;
    box.appendChild(el('h3', null, p.number));
    row(box, '类别 Category', p.category_name + ' (' + p.category + ')');
    row(box, '状态 Status', GridMap.statusName(p.status) + ' · ' + (LIGHT_NAMES[p.light] || '—'));
    row(box, '时限 Due', when(p.stage_due_at));
    row(box, '网格 Grid', p.grid_code);
    if (p.address) row(box, '地址 Address', p.address);
    box.appendChild(el('p', 'gm-description', p.description));
    var why = el('p', 'gm-explanation gm-muted', '派单依据加载中… loading assignment');
    box.appendChild(why);
    getJson('/cases/' + encodeURIComponent(layer.feature.id)).then(function (c) {
      why.classList.remove('gm-muted');
      why.textContent = '派单依据 Assigned: ' + ((c.assignment && c.assignment.explanation) || c.assign_status);
    }).catch(function () { why.textContent = '派单依据不可用 assignment unavailable'; });
    return box;
  }

  GridMap.caseMarker = function (feature, latlng) {
    if (GridMap.isCluster(feature)) return GridMap.clusterMarker(feature, latlng);  // caseclusters.js
    var p = feature.properties;
    var marker = L.marker(latlng, {
      icon: caseIcon(p),
      title: p.number,
      zIndexOffset: p.overdue ? 1000 : 0,  // overdue cases stay on top
      riseOnHover: true
    });
    marker.bindPopup(casePopup, GridMap.popupOptions(GridMap.map));
    marker.on('add', function () { if (marker.getElement()) marker.getElement().dataset.caseId = marker.feature.id; });
    return marker;
  };

  GridMap.updateCase = function (feature, oldLayer) {
    if (!oldLayer) return undefined;  // Realtime makes a new marker with caseMarker
    if (GridMap.isCluster(feature) || GridMap.isCluster(oldLayer.feature)) {
      return GridMap.isCluster(feature) && GridMap.isCluster(oldLayer.feature) ? GridMap.updateCluster(feature, oldLayer) : undefined;
    }
    var before = oldLayer.feature.properties, p = feature.properties;
    var c = feature.geometry.coordinates, was = oldLayer.feature.geometry.coordinates;
    // Only a case that moved is moved: setLatLng on a fanned-out marker would fold its fan every poll.
    if (c[0] !== was[0] || c[1] !== was[1]) oldLayer.setLatLng([c[1], c[0]]);
    if (before.light !== p.light || before.status !== p.status || before.urgent !== p.urgent) {
      oldLayer.setIcon(caseIcon(p));
      oldLayer.setZIndexOffset(p.overdue ? 1000 : 0);
    }
    oldLayer.feature = feature;
    return oldLayer;
  };

  GridMap.clusterIcon = function (cluster) {
    var worst = 'green', total = 0;
    cluster.getAllChildMarkers().forEach(function (m) {  // a server cluster among them counts its cases
      var light = m.feature && m.feature.properties.light;
      if (light && LIGHT_RANK[light] < LIGHT_RANK[worst]) worst = light;
      total += GridMap.markerCount(m);
    });
    var count = el('span', null, total);
    return L.divIcon({ html: count, className: 'gm-cluster gm-light-' + worst, iconSize: [32, 32] });
  };

  // ------------------------------------------------------------------ overlays
  /** A phone-sized map (the panels rearrange so that none covers the case list). */
  GridMap.narrow = function (map) { return map.getSize().x < 600; };

  function infoControl(map) {
    var narrow = GridMap.narrow(map);
    // On a phone the legend sits top right, closed, under the layer list; the case list has the bottom.
    var control = L.control({ position: narrow ? 'topright' : 'bottomright' });
    var box;
    control.onAdd = function () {
      box = el('details', 'gm-panel gm-info');
      box.open = !narrow;
      box.appendChild(el('summary', 'gm-panel-head', narrow ? '图例 Legend' : GridMap.config.title + ' · 图例 Legend'));
      if (narrow) box.appendChild(el('div', 'gm-muted', GridMap.config.title));
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    control.addTo(map);
    control.note = function (text, className) {
      var line = el('div', className || 'gm-muted', text);
      box.appendChild(line);
      return line;
    };
    return control;
  }

  function legend(info) {
    [['urban', '城镇网格 urban grid'], ['rural', '农村网格 rural grid'], ['special', '专属网格 special grid']]
      .forEach(function (k) {
        var line = info.note(k[1], 'gm-legend-row');
        line.insertBefore(el('span', 'gm-swatch gm-kind-' + k[0]), line.firstChild);
      });
    var party = info.note('党组织 party cell', 'gm-legend-row gm-legend-party');
    party.insertBefore(el('span', 'gm-party-key'), party.firstChild);
    [['green', '事件 正常 on time'], ['yellow', '事件 临期 due soon'], ['red', '事件 超时 overdue']]
      .forEach(function (k) {
        var line = info.note(k[1], 'gm-legend-row');
        line.insertBefore(el('span', 'gm-dot gm-light-' + k[0]), line.firstChild);
      });
  }

  // `change` of a draft's units (geo/plans.py): created, changed (geometry or attributes), retired.
  // Apart from the grid kinds (urban blue, rural green, special red); the same as the editor's.
  var CHANGE_COLORS = { created: '#b07aa1', changed: '#edc948', retired: '#333333' };

  /** A plan's changes (GET /plans/{id}: `changes`, a FeatureCollection with property `change`). */
  function planOverlay(map, control, info, url) {
    var note = info.note('规划草案加载中… draft plan loading');
    getJson(url).then(function (body) {
      var changes = body.changes;
      if (!changes) {  // null while the draft conflicts with published units; absent once not a draft
        note.textContent = '规划 plan ' + body.title + ': ' + (body.status === 'draft' ? '冲突 conflicts' : body.status);
        GridMap.plan = { changes: null, status: body.status };
        return;
      }
      var layer = L.geoJSON(changes, {
        style: function (f) {
          var change = f.properties.change, c = CHANGE_COLORS[change];
          return { color: c, weight: 2.5, dashArray: change === 'retired' ? '2 4' : null, fillColor: c, fillOpacity: 0.2 };
        },
        onEachFeature: function (f, l) {
          l.bindTooltip(el('span', null, [f.properties.change, f.properties.code, f.properties.name || ''].join(' ')));
        }
      }).addTo(map);
      control.addOverlay(layer, '规划草案 Draft plan');
      note.textContent = '规划草案 draft plan ' + body.title + ': ' + changes.features.length + ' changes';
      if (changes.features.length) map.fitBounds(layer.getBounds(), { maxZoom: 16 });
      GridMap.plan = { changes: changes.features.length };
    }).catch(function (err) {
      note.textContent = '规划草案不可用 draft plan unavailable' + (err.status ? ' (HTTP ' + err.status + ')' : '');
      GridMap.plan = { unavailable: true };
    });
  }

  /** Links to the planner view of each draft plan on the unit. */
  function planList(info, url) {
    getJson(url).then(function (plans) {
      if (!plans.length) { info.note('无规划草案 no draft plans'); return; }
      info.note('规划草案 Draft plans:');
      plans.slice(0, 10).forEach(function (p) {
        var a = el('a', 'gm-plan-link', '#' + p.id + ' ' + p.title);
        a.href = '/map?view=planner&plan=' + encodeURIComponent(p.id);
        var edit = el('a', 'gm-plan-link', ' 编辑 edit');
        edit.href = '/plan/' + encodeURIComponent(p.id);
        var line = info.note('');
        line.appendChild(a);
        line.appendChild(edit);
      });
    }).catch(function () { info.note('规划草案不可用 draft plans unavailable'); });
  }

  function reportButton(map, url) {
    var control = L.control({ position: 'topleft' });
    control.onAdd = function () {
      var a = el('a', 'gm-panel gm-button gm-report', '上报事件 Report a case');
      a.href = url;
      return a;
    };
    control.addTo(map);
  }

  // ------------------------------------------------------------------ start
  function readiness(onReady) {
    var waiting = new Set();
    return {
      add: function (name) { waiting.add(name); },
      done: function (name) {
        if (!waiting.delete(name) || waiting.size) return;
        onReady();
      }
    };
  }

  /** Wire folium's map and layers to the page's behaviour. */
  GridMap.start = function (o) {
    var map = o.map, config = GridMap.config = o.config;
    config.levels.forEach(function (pair) { LEVEL_NAMES[pair[0]] = pair[1]; });
    GridMap.map = map;
    GridMap.realtime = o.cases;
    GridMap.caseCluster = o.cluster;
    var control = o.layerControl;
    var pending = readiness(function () {
      GridMap.readyAt = performance.now();
      document.body.dataset.ready = 'true';
    });
    pending.add('cases');
    watchUnits(map, o.units, pending);
    if (GridMap.watchBoundaries) GridMap.watchBoundaries(o.units);
    levelSwitches(map, control, o.units, config);
    var info = infoControl(map);
    GridMap.searchControl(map, GridMap.outline(map));  // search.js
    var list = GridMap.caseListControl(map, o.cluster);  // caselist.js
    o.cluster.on('clusterclick clusterkeypress', function (e) { fanOrZoom(map, e); });
    // Leaflet closes a popup on Escape only while the map's own box has the focus; a clicked marker
    // or a popup's link takes it, and Escape did nothing.
    document.addEventListener('keydown', function (e) { if (e.key === 'Escape') map.closePopup(); });
    o.cases.on('update', function (e) {
      Object.keys(e.exit || {}).forEach(function (id) { delete GridMap.cases[id]; });
      Object.keys(e.features || {}).forEach(function (id) { GridMap.cases[id] = e.features[id]; });
      list.refresh();
      o.cluster.refreshClusters();
      GridMap.casesUpdatedAt = Date.now();
      pending.done('cases');
    });
    o.cases.on('error', function () { info.note('事件刷新失败 cases could not be refreshed', 'gm-error'); });
    GridMap.followView(map, o.cases);  // caseclusters.js: the box and zoom decide what comes
    o.cases.start();  // not before: its source reads the map's view
    GridMap.partyLayer(map, control);
    GridMap.labelLayer(map, control);
    GridMap.patrolLayer(map, control, info);
    if (GridMap.narrow(map)) {  // the layer list opens on a tap and closes on the map (Leaflet's collapsed mode)
      control.collapse();
      map.on('click', control.collapse, control);
    }
    if (GridMap.locateControl) GridMap.locateControl(map, info);
    if (config.reportUrl) reportButton(map, config.reportUrl);
    if (config.overlays.coverage) GridMap.coverageOverlay(map, control, info, config.overlays.coverage, o.units);
    if (config.overlays.plan) planOverlay(map, control, info, config.overlays.plan);
    else if (config.plan) info.note('规划草案需规划权限 draft plans need the planning permission');
    if (config.overlays.plans) planList(info, config.overlays.plans);
    legend(info);
    GridMap.clusterLegend(info);
  };
}());
