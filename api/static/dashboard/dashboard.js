/* The command dashboard's page code: fetch the figures, write them into the page, draw the charts.
 *
 * Every number comes from GET /stats/dashboard (and the outlines from /stats/dashboard/map): this
 * file formats and draws, it computes no figure. Names (units, categories) reach the DOM through
 * textContent only, and the charts draw them on a canvas with canvas-rendered tooltips
 * (renderMode 'richText'): ECharts' HTML tooltips would put them through innerHTML.
 * Live: the page follows the case stream (SSE) and asks again a moment after cases change, at
 * most every MIN_GAP_MS, and once a minute anyway (overdue counts grow with time alone).
 */
(function () {
  'use strict';

  var STAGES = [
    ['verify', '核实', 'Verify'], ['file', '立案', 'File'], ['dispatch', '派遣', 'Dispatch'],
    ['accept', '签收', 'Accept'], ['handle', '处置', 'Handle'], ['check', '核查', 'Check'],
    ['close', '结案', 'Close'], ['revisit', '回访', 'Revisit']
  ];
  var TIERS = [
    ['grid', '网格', 'Grid'], ['community', '社区/村', 'Community'], ['street', '街道/镇', 'Street'],
    ['county', '区县', 'County'], ['department', '部门', 'Department']
  ];
  var RATINGS = [
    ['satisfied', '满意', 'satisfied'], ['basically_satisfied', '基本满意', 'basically'],
    ['unsatisfied', '不满意', 'unsatisfied']
  ];
  var LEVELS = { county: '区县', street: '街道/镇', community: '社区/村', grid: '网格', micro_grid: '微网格' };
  var REFRESH_MS = 60000;  // time alone makes cases overdue: ask again at least this often
  var MIN_GAP_MS = 5000;   // a busy county changes cases many times a second: at most one request per gap
  var SETTLE_MS = 1000;    // wait for a burst of changes to end before asking
  var TEXT = '#d7e9ff';
  var MUTED = '#7fa6d1';
  var GRID_LINE = 'rgba(127, 166, 209, 0.18)';

  var unit = new URLSearchParams(window.location.search).get('unit');
  var charts = {};
  var outlinesOf = null;
  var lastAsked = 0;
  var pending = null;
  var lastShown = null;  // the figures on screen, drawn again at a new size
  var resizing = null;

  // ------------------------------------------------------------------ formatting (display only)
  function count(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('zh-CN'); }
  function percent(r) { return r === null || r === undefined ? '—' : (r * 100).toFixed(1) + '%'; }
  function pct(r) { return r === null || r === undefined ? null : Math.round(r * 1000) / 10; }

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function valueAttr(value) { return value === null || value === undefined ? '' : String(value); }

  function setFigure(name, value, text) {
    document.querySelectorAll('[data-figure="' + name + '"]').forEach(function (node) {
      node.textContent = text;
      node.setAttribute('data-value', valueAttr(value));
    });
  }

  function fillTable(id, rows) {
    var body = document.querySelector('#' + id + ' tbody');
    body.replaceChildren.apply(body, rows);
  }

  function cell(text, name, value) {
    var td = el('td', text);
    if (name) { td.setAttribute('data-col', name); td.setAttribute('data-value', valueAttr(value)); }
    return td;
  }

  // ------------------------------------------------------------------ fetching
  function signIn() {
    window.location.assign('/login?next=' + encodeURIComponent(window.location.pathname + window.location.search));
  }

  function getJson(url) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } }).then(function (r) {
      if (r.status === 401) { signIn(); throw new Error('请登录 sign in'); }
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(typeof body.detail === 'string' ? body.detail : ('HTTP ' + r.status));
        return body;
      });
    });
  }

  function say(message) {
    var box = document.getElementById('message');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function refresh() {
    lastAsked = Date.now();
    var q = unit ? '?unit=' + encodeURIComponent(unit) : '';
    // The first time, the outlines are asked for at once, beside the figures: both routes take
    // the same unit (the user's own when none is named), so the map need not wait for the figures.
    var outlines = outlinesOf === null ? getJson('/stats/dashboard/map' + q) : Promise.resolve(null);
    return Promise.all([getJson('/stats/dashboard' + q), outlines]).then(function (answers) {
      var d = answers[0];
      if (answers[1] !== null) {
        echarts.registerMap('unit-' + d.unit.code, answers[1]);
        outlinesOf = d.unit.code;
      }
      say('');
      render(d);
    }).then(function () {
      if (!window.DashboardReadyAt) window.DashboardReadyAt = performance.now();  // first view (benchmark)
      document.body.setAttribute('data-ready', 'true');
    }).catch(function (e) { say('无法更新 Cannot update: ' + e.message); });
  }

  function schedule() {
    if (pending !== null) return;
    var wait = Math.max(SETTLE_MS, lastAsked + MIN_GAP_MS - Date.now());
    pending = window.setTimeout(function () { pending = null; refresh(); }, wait);
  }

  function setLive(state, text) {
    var live = document.getElementById('live');
    live.setAttribute('data-state', state);
    live.textContent = text;
  }

  function follow() {
    if (!window.EventSource) { setLive('off', '定时刷新 Every minute'); return; }
    var stream = new EventSource('/cases/stream');
    stream.addEventListener('open', function () { setLive('live', '实时 Live'); });
    stream.addEventListener('error', function () { setLive('connecting', '重连中 Reconnecting'); });
    stream.addEventListener('created', schedule);
    stream.addEventListener('updated', schedule);
  }

  // ------------------------------------------------------------------ figures and tables
  function render(d) {
    document.getElementById('unit-name').textContent = d.unit.name + ' ' + d.unit.code;
    document.title = d.unit.name + ' · 指挥大屏 Command dashboard';
    var now = new Date(d.now);
    var updated = document.getElementById('updated');
    updated.textContent = now.toLocaleTimeString('zh-CN', { hour12: false });
    updated.setAttribute('datetime', d.now);
    picker(d);

    setFigure('received_today', d.today.received, count(d.today.received));
    setFigure('closed_today', d.today.closed, count(d.today.closed));
    setFigure('overdue_now', d.overdue_now, count(d.overdue_now));
    setFigure('open_now', d.open_now, count(d.open_now));
    setFigure('received_month', d.month.received, count(d.month.received));
    setFigure('closed_month', d.month.closed, count(d.month.closed));
    setFigure('late_stages_month', d.month.late_stages, count(d.month.late_stages));
    setFigure('on_time_rate_month', d.month.on_time.rate, percent(d.month.on_time.rate));
    var stats = d.month_stats;
    setFigure('satisfaction_rate_month', stats.satisfaction.rate, percent(stats.satisfaction.rate));
    setFigure('local_share_month', stats.resolved_by_tier.local_share, percent(stats.resolved_by_tier.local_share));
    document.getElementById('satisfaction-counts').textContent = RATINGS.map(function (r) {
      return r[1] + ' ' + r[2] + ' ' + count(stats.satisfaction.counts[r[0]]);
    }).join(' · ');

    fillTable('table-stage', STAGES.map(function (s) {
      var f = stats.on_time[s[0]];
      var tr = el('tr', null, { 'data-stage': s[0] });
      tr.append(el('th', s[1] + ' ' + s[2]), cell(count(f.done), 'done', f.done),
        cell(count(f.on_time), 'on_time', f.on_time), cell(percent(f.rate), 'rate', f.rate));
      return tr;
    }));
    fillTable('table-tier', TIERS.map(function (t) {
      var tr = el('tr', null, { 'data-tier': t[0] });
      tr.append(el('th', t[1] + ' ' + t[2]),
        cell(count(stats.resolved_by_tier.counts[t[0]]), 'count', stats.resolved_by_tier.counts[t[0]]),
        cell(percent(stats.resolved_by_tier.shares[t[0]]), 'share', stats.resolved_by_tier.shares[t[0]]));
      return tr;
    }));
    fillTable('table-trend', d.trend.map(function (day) {
      var tr = el('tr', null, { 'data-day': day.date });
      tr.append(el('th', day.date), cell(count(day.received), 'received', day.received),
        cell(count(day.closed), 'closed', day.closed));
      return tr;
    }));
    fillTable('table-cats', d.top_categories.map(function (c) {
      var tr = el('tr', null, { 'data-category': c.code });
      tr.append(el('th', c.name + ' ' + c.name_en), cell(count(c.count), 'count', c.count));
      return tr;
    }));
    fillTable('table-rank', d.ranking.map(rankRow));

    drawCharts(d);
  }

  function drawCharts(d) {
    lastShown = d;
    drawStages(d.month_stats);
    drawTiers(d.month_stats);
    drawTrend(d.trend);
    drawCategories(d.top_categories);
    drawMap(d);
  }

  function rankRow(r) {
    var tr = el('tr', null, { 'data-unit': r.code });
    if (r.rank <= 3) tr.className = 'top' + r.rank;
    var name = el('td', null, { 'data-col': 'name' });
    name.appendChild(el('a', r.name, { href: '/dashboard?unit=' + encodeURIComponent(r.code), title: r.code }));
    var overdue = cell(count(r.overdue_now), 'overdue_now', r.overdue_now);
    if (r.overdue_now > 0) overdue.className = 'overdue';
    tr.append(cell(r.rank, 'rank', r.rank), name, cell(percent(r.on_time_rate), 'on_time_rate', r.on_time_rate),
      overdue, cell(count(r.received), 'received', r.received), cell(count(r.closed), 'closed', r.closed));
    return tr;
  }

  function picker(d) {
    var select = document.getElementById('unit-picker');
    var options = [el('option', d.unit.name + ' ' + d.unit.code + '（' + (LEVELS[d.unit.level] || d.unit.level) + '）',
      { value: d.unit.code })];
    d.ranking.slice().sort(function (a, b) { return a.code < b.code ? -1 : 1; }).forEach(function (r) {
      options.push(el('option', '↳ ' + r.name + ' ' + r.code, { value: r.code }));
    });
    select.replaceChildren.apply(select, options);
    select.value = d.unit.code;
  }

  // ------------------------------------------------------------------ charts (canvas)
  function chart(id) {
    if (!charts[id]) {
      charts[id] = echarts.init(document.getElementById(id), 'dark', { renderer: 'canvas' });
    }
    return charts[id];
  }

  function base() {
    var size = Math.max(11, Math.round(window.innerWidth / 130));
    return {
      backgroundColor: 'transparent',
      textStyle: { color: TEXT, fontSize: size, fontFamily: 'system-ui, "Noto Sans CJK SC", sans-serif' },
      tooltip: { renderMode: 'richText', confine: true },
      animationDuration: 400,
      aria: { enabled: true }
    };
  }

  function axisLabel() { return { color: MUTED, fontSize: Math.max(11, Math.round(window.innerWidth / 125)) }; }

  function drawStages(stats) {
    var o = base();
    o.tooltip.trigger = 'axis';
    o.grid = { left: 8, right: 16, top: 24, bottom: 8, containLabel: true };
    var small = Math.max(9, Math.round(axisLabel().fontSize * 0.75));
    o.xAxis = { type: 'category', data: STAGES.map(function (s) { return s[1] + ' ' + s[2]; }),
      axisLabel: Object.assign(axisLabel(), {
        interval: 0, rich: { zh: { color: TEXT }, en: { color: MUTED, fontSize: small } },
        formatter: function (name) { var p = name.split(' '); return '{zh|' + p[0] + '}\n{en|' + p[1] + '}'; }
      }) };
    o.yAxis = { type: 'value', max: 100, axisLabel: Object.assign(axisLabel(), { formatter: '{value}%' }),
      splitLine: { lineStyle: { color: GRID_LINE } } };
    o.series = [{
      type: 'bar', name: '按期率 On time %', barWidth: '55%',
      data: STAGES.map(function (s) { var r = pct(stats.on_time[s[0]].rate); return r === null ? '-' : r; }),
      label: { show: true, position: 'top', color: TEXT, fontSize: small, formatter: '{c}%' },
      itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 0, 1,
        [{ offset: 0, color: '#29e6ff' }, { offset: 1, color: '#1456c8' }]), borderRadius: [4, 4, 0, 0] }
    }];
    chart('chart-stage').setOption(o, true);
  }

  function drawTiers(stats) {
    var o = base();
    var names = TIERS.map(function (t) { return t[1] + ' ' + t[2]; });
    o.tooltip.trigger = 'item';
    o.color = ['#29e6ff', '#3ddc97', '#ffd166', '#ff8c42', '#c77dff'];
    o.legend = { data: names, bottom: 0, left: 'center', itemGap: 10, textStyle: { color: TEXT, fontSize: axisLabel().fontSize } };
    o.series = [{
      type: 'pie', radius: ['38%', '64%'], center: ['50%', '44%'], name: '结案层级 Closed at',
      label: { color: TEXT, formatter: '{b}\n{d}%', fontSize: axisLabel().fontSize },
      // Tiers that closed nothing stay in the legend but draw no slice (no pile of "0%" labels).
      data: TIERS.map(function (t, i) { return { name: names[i], value: stats.resolved_by_tier.counts[t[0]] }; })
        .filter(function (item) { return item.value > 0; })
    }];
    chart('chart-tier').setOption(o, true);
  }

  function drawTrend(days) {
    var o = base();
    o.tooltip.trigger = 'axis';
    o.color = ['#29e6ff', '#3ddc97'];
    o.legend = { top: 0, right: 8, textStyle: { color: TEXT } };
    o.grid = { left: 8, right: 16, top: 32, bottom: 8, containLabel: true };
    o.xAxis = { type: 'category', boundaryGap: false, axisLabel: axisLabel(),
      data: days.map(function (day) { return day.date.slice(5); }) };
    o.yAxis = { type: 'value', minInterval: 1, axisLabel: axisLabel(), splitLine: { lineStyle: { color: GRID_LINE } } };
    o.series = [
      { type: 'line', name: '受理 Received', smooth: true, symbolSize: 6, areaStyle: { opacity: 0.18 },
        data: days.map(function (day) { return day.received; }) },
      { type: 'line', name: '结案 Closed', smooth: true, symbolSize: 6, areaStyle: { opacity: 0.12 },
        data: days.map(function (day) { return day.closed; }) }
    ];
    chart('chart-trend').setOption(o, true);
  }

  function drawCategories(cats) {
    var o = base();
    o.tooltip.trigger = 'axis';
    o.grid = { left: 8, right: 40, top: 8, bottom: 8, containLabel: true };
    var shown = cats.slice().reverse();  // the largest on top
    o.yAxis = { type: 'category', axisLabel: axisLabel(), data: shown.map(function (c) { return c.name; }) };
    o.xAxis = { type: 'value', minInterval: 1, axisLabel: axisLabel(), splitLine: { lineStyle: { color: GRID_LINE } } };
    o.series = [{
      type: 'bar', name: '受理 Received', barWidth: '60%', data: shown.map(function (c) { return c.count; }),
      label: { show: true, position: 'right', color: TEXT },
      itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 1, 0,
        [{ offset: 0, color: '#1456c8' }, { offset: 1, color: '#ffb703' }]), borderRadius: [0, 4, 4, 0] }
    }];
    chart('chart-cats').setOption(o, true);
  }

  function drawMap(d) {
    if (outlinesOf !== d.unit.code) return;
    var cells = d.density.cells;
    var most = cells.reduce(function (m, c) { return Math.max(m, c[2]); }, 1);  // the colour scale's top
    var o = base();
    o.tooltip.trigger = 'item';
    o.geo = {
      map: 'unit-' + d.unit.code, roam: true, layoutCenter: ['50%', '50%'], layoutSize: '96%',
      label: { show: true, color: MUTED, fontSize: axisLabel().fontSize },
      itemStyle: { areaColor: '#0b2550', borderColor: '#3fa7ff', borderWidth: 1 },
      emphasis: { label: { color: '#ffffff' }, itemStyle: { areaColor: '#123a73' } }
    };
    o.visualMap = {
      min: 0, max: most, calculable: true, left: 8, bottom: 8, text: ['多 More', '少 Fewer'],
      textStyle: { color: TEXT }, inRange: { color: ['#0d47a1', '#00e5ff', '#ffe600', '#ff3d00'] }
    };
    o.series = [{ type: 'heatmap', coordinateSystem: 'geo', name: '案件 Cases', data: cells,
      pointSize: Math.max(8, Math.round(window.innerWidth / 110)), blurSize: Math.max(10, Math.round(window.innerWidth / 90)) }];
    chart('chart-map').setOption(o, true);
  }

  // ------------------------------------------------------------------ start
  document.getElementById('unit-picker').addEventListener('change', function (e) {
    window.location.assign('/dashboard?unit=' + encodeURIComponent(e.target.value));
  });
  window.addEventListener('resize', function () {
    // Sizes of text follow the screen's width: resize, then draw again with the new sizes.
    window.clearTimeout(resizing);
    resizing = window.setTimeout(function () {
      Object.keys(charts).forEach(function (id) { charts[id].resize(); });
      if (lastShown) drawCharts(lastShown);
    }, 150);
  });
  refresh();
  follow();
  window.setInterval(refresh, REFRESH_MS);
})();
