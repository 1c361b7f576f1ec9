/* The planner's editor, shared parts: DOM helpers, the JSON client, the map and its styles.
 *
 * Every text a person wrote (unit names, plan titles, messages) reaches the DOM through
 * textContent only, never innerHTML. Rules live in Python behind the plan API: the page only
 * draws what the server answers and sends what the planner drew.
 */
(function () {
  'use strict';

  var PE = window.PlanEditor = {};

  PE.el = function (tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };

  PE.clear = function (node) { while (node.firstChild) node.removeChild(node.firstChild); return node; };

  /** fetch JSON; rejects with an Error carrying `status` and the parsed `body` on HTTP errors. */
  PE.api = function (method, url, body) {
    var options = { method: method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (r) {
      return r.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
        if (!r.ok) {
          var detail = parsed && parsed.detail;
          if (typeof detail !== 'string') detail = detail ? JSON.stringify(detail) : 'HTTP ' + r.status;
          var err = new Error(detail);
          err.status = r.status;
          err.body = parsed;
          throw err;
        }
        return parsed;
      });
    });
  };

  PE.say = function (text, isError) {
    var box = document.getElementById('status');
    box.textContent = text || '';
    box.classList.toggle('pe-error', !!isError);
  };

  PE.when = function (iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    if (isNaN(d)) return String(iso);
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes());
  };

  PE.KIND_NAMES = { urban: '城镇 urban', rural: '农村 rural', special: '专属 special' };
  PE.CHANGE_NAMES = { created: '新建 created', changed: '调整 changed', retired: '撤销 retired', unchanged: '未变 unchanged' };
  PE.OPERATION_NAMES = {
    split: '拆分 split', merge: '合并 merge', retire: '撤销 retire', replace: '修改 edit',
    create: '新建 create', move: '移交 move', reshape: '调整边界 reshape'
  };
  PE.SPECIAL_TYPES = [
    ['school', '学校 school'], ['hospital', '医院 hospital'], ['industrial_park', '工业园区 industrial park'],
    ['business_district', '商圈 business district'], ['government', '机关 government'],
    ['enterprise', '企业 enterprise'], ['other', '其他 other']
  ];
  PE.CHILD_LEVEL = { county: 'street', street: 'community', community: 'grid', grid: 'micro_grid' };

  // Grid kinds as on /map (gridmap.js); draft changes in colours apart from all three.
  PE.KIND_COLORS = { urban: '#4e79a7', rural: '#59a14f', special: '#e15759' };
  PE.CHANGE_COLORS = { created: '#b07aa1', changed: '#edc948', retired: '#333333' };

  PE.unitStyle = function (p, selected) {
    var kind = PE.KIND_COLORS[p.kind] || '#888';
    var change = p.change && p.change !== 'unchanged' ? PE.CHANGE_COLORS[p.change] : null;
    var style = {
      color: change || kind, weight: change ? 3.5 : 1, opacity: 0.95,
      fillColor: kind, fillOpacity: p.kind === 'special' ? 0.3 : 0.15,
      dashArray: p.kind === 'special' ? '4 3' : null
    };
    if (p.change === 'retired') { style.dashArray = '3 5'; style.fillOpacity = 0.05; style.fillColor = '#333'; }
    if (selected) { style.weight = 4; style.color = '#111'; style.fillOpacity = 0.35; }
    return style;
  };

  /** The Leaflet map (window.gridmapMap for tests), no background tiles (nothing outside the service). */
  PE.makeMap = function () {
    var map = L.map('map', { zoomSnap: 1, doubleClickZoom: false });
    map.setView([34.0, 114.0], 8);
    L.control.scale({ imperial: false }).addTo(map);
    window.gridmapMap = map;
    PE.map = map;
    return map;
  };

  PE.legend = function (map) {
    var control = L.control({ position: 'bottomright' });
    control.onAdd = function () {
      var box = PE.el('div', 'pe-legend');
      [['urban', '城镇网格 urban grid'], ['rural', '农村网格 rural grid'], ['special', '专属网格 special grid']]
        .forEach(function (k) {
          var line = PE.el('div', null, k[1]);
          var sw = PE.el('span', 'pe-swatch');
          sw.style.borderColor = PE.KIND_COLORS[k[0]];
          sw.style.background = PE.KIND_COLORS[k[0]] + '40';
          line.insertBefore(sw, line.firstChild);
          box.appendChild(line);
        });
      [['created', '草案 新建 created'], ['changed', '草案 调整 changed'], ['retired', '草案 撤销 retired']]
        .forEach(function (k) {
          var line = PE.el('div', null, k[1]);
          var sw = PE.el('span', 'pe-swatch');
          sw.style.borderColor = PE.CHANGE_COLORS[k[0]];
          if (k[0] === 'retired') sw.style.borderStyle = 'dashed';
          line.insertBefore(sw, line.firstChild);
          box.appendChild(line);
        });
      var problem = PE.el('div', null, '校验问题 problem');
      var sw = PE.el('span', 'pe-swatch');
      sw.style.borderColor = '#b00020';
      sw.style.background = '#ff000066';
      problem.insertBefore(sw, problem.firstChild);
      box.appendChild(problem);
      return box;
    };
    control.addTo(map);
  };

  PE.fit = function (layer) {
    var b = layer && layer.getBounds && layer.getBounds();
    if (b && b.isValid()) PE.map.fitBounds(b, { maxZoom: 17, animate: false });
  };
}());
