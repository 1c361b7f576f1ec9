/* The editor's tools: each produces one edit through POST /plans/{id}/edits (or removes the last). */
(function () {
  'use strict';

  var PE = window.PlanEditor, el = PE.el;
  var T = PE.tools = {};
  var drawing = null;  // 'Line' | 'Polygon' while the planner draws
  var TOOLS = [
    ['split', '拆分 Split'], ['merge', '合并 Merge'], ['reshape', '调整边界 Reshape'], ['create', '新建 Create'],
    ['retire', '撤销 Retire'], ['move', '移交微网格 Move'], ['attributes', '属性 Attributes'], ['undo', '撤回 Undo']
  ];
  var HINTS = {
    split: '点击要拆分的网格，再画一条穿过它的线，按“完成” Click the grid, draw a line across it, then Finish',
    merge: '点击两个或更多相邻网格 Click two or more adjacent grids',
    reshape: '点击两个相邻网格，再从共有边界上一点画到另一点 Click two neighbouring grids, then draw the new course between two points of their boundary',
    create: '在地图上画出新网格的范围，按“完成” Draw the new zone, then Finish',
    retire: '点击要撤销的网格 Click the grid to retire',
    move: '点击要移交的微网格 Click the micro-grid to move',
    attributes: '点击要修改的网格 Click the grid to edit'
  };

  function S() { return PE.state; }
  T.drawing = function () { return drawing !== null; };

  T.build = function (editable) {
    var bar = PE.clear(document.getElementById('tools'));
    document.getElementById('publish').hidden = !editable;
    document.getElementById('abandon').hidden = !editable;
    if (!editable) return;
    TOOLS.forEach(function (t) {
      var b = el('button', null, t[1]);
      b.type = 'button';
      b.dataset.tool = t[0];
      b.setAttribute('aria-pressed', 'false');
      b.addEventListener('click', function () { choose(t[0]); });
      bar.appendChild(b);
    });
    document.getElementById('publish').addEventListener('click', PE.askPublish);
    document.getElementById('abandon').addEventListener('click', abandon);
    PE.map.on('pm:create', created);
  };

  function choose(tool) {
    stopDrawing();
    if (tool === 'undo') { undo(); return; }
    var st = S();
    st.tool = st.tool === tool ? null : tool;
    if (st.tool !== 'move' && PE.state.layers.micro) PE.map.removeLayer(PE.state.layers.micro);
    st.selected = [];
    document.querySelectorAll('[data-tool]').forEach(function (b) {
      b.setAttribute('aria-pressed', String(b.dataset.tool === st.tool));
    });
    PE.redraw();
    form();
    if (st.tool === 'create') startDrawing('Polygon');
  }

  T.toggle = function (code) {
    var st = S();
    if (!st.tool) { PE.say('先选择工具 choose a tool first'); return; }
    var i = st.selected.indexOf(code);
    var multi = st.tool === 'merge' || st.tool === 'reshape';
    if (i >= 0) st.selected.splice(i, 1);
    else if (multi) st.selected.push(code);
    else st.selected = [code];
    PE.redraw();
    form();
    if ((st.tool === 'split' && st.selected.length === 1) || (st.tool === 'reshape' && st.selected.length === 2)) {
      startDrawing('Line');
    }
  };

  function unit(code) { return PE.state.draft[code] || PE.state.micro[code]; }

  function label(code) {
    var f = unit(code);
    return code + (f ? ' ' + f.properties.name : '');
  }

  // ------------------------------------------------------------------ drawing (Leaflet-Geoman)
  function startDrawing(shape) {
    stopDrawing();
    drawing = shape;
    // Snapping to the vertices and edges of the drawn grids: a course starts and ends on their boundary.
    PE.map.pm.enableDraw(shape, { snappable: true, snapDistance: 12, continueDrawing: false, allowSelfIntersection: false });
    var bar = document.getElementById('form');
    var finish = el('button', null, '完成 Finish');
    finish.type = 'button';
    finish.dataset.action = 'finish';
    finish.addEventListener('click', function () {
      var draw = PE.map.pm.Draw[drawing];
      if (draw && draw._layer && draw._layer.getLatLngs().length >= (drawing === 'Line' ? 2 : 3)) draw._finishShape();
      else PE.say('线至少两点、面至少三点 a line needs 2 points, an area 3', true);
    });
    var cancel = el('button', null, '取消 Cancel');
    cancel.type = 'button';
    cancel.addEventListener('click', function () { stopDrawing(); form(); });
    var row = el('div', 'pe-draw-actions');
    row.appendChild(el('div', 'pe-muted', shape === 'Line' ? '在地图上逐点画线 Click points on the map' : '在地图上逐点画面 Click the corners on the map'));
    row.appendChild(finish);
    row.appendChild(cancel);
    bar.appendChild(row);
  }

  function stopDrawing() {
    if (drawing) PE.map.pm.disableDraw();
    drawing = null;
  }

  function created(e) {
    var shape = drawing;
    drawing = null;
    var geometry = e.layer.toGeoJSON().geometry;
    PE.map.removeLayer(e.layer);
    var tool = S().tool;
    if (tool === 'split' && shape === 'Line') previewSplit(geometry);
    else if (tool === 'reshape' && shape === 'Line') submit({ operation: 'reshape', codes: S().selected.slice(), geometry: geometry });
    else if (tool === 'create' && shape === 'Polygon') createForm(geometry);
  }

  // ------------------------------------------------------------------ forms per tool
  function form() {
    var box = PE.clear(document.getElementById('form'));
    var st = S(), sel = st.selected;
    document.getElementById('selection').textContent = sel.length ? '已选 Selected: ' + sel.map(label).join('; ') : '';
    if (!st.tool) return;
    box.appendChild(el('div', 'pe-muted', HINTS[st.tool]));
    if (st.tool !== 'create') keyboardPick(box, st);
    if (st.tool === 'merge' && sel.length >= 2) {
      var into = select('merge-into', '保留编码 Keeps its code', sel.map(function (c) { return [c, label(c)]; }));
      box.appendChild(into.label); box.appendChild(into.input);
      var name = input('merge-name', '合并后名称 Name after merging (可空 optional)', '');
      box.appendChild(name.label); box.appendChild(name.input);
      box.appendChild(button('confirm', '合并 Merge', function () {
        var edit = { operation: 'merge', codes: sel.slice(), into: into.input.value };
        if (name.input.value.trim()) edit.name = name.input.value.trim();
        submit(edit);
      }));
    } else if (st.tool === 'retire' && sel.length === 1) {
      var others = Object.keys(st.draft).filter(function (c) { return c !== sel[0]; });
      var target = select('retire-into', '并入 Into (或留空 or leave a gap)',
        [['', '留空（产生空隙）leave a gap']].concat(others.map(function (c) { return [c, label(c)]; })));
      box.appendChild(target.label); box.appendChild(target.input);
      box.appendChild(button('confirm', '撤销 Retire', function () {
        var edit = { operation: 'retire', code: sel[0] };
        if (target.input.value) edit.into = target.input.value;
        submit(edit);
      }));
    } else if (st.tool === 'attributes' && sel.length === 1) {
      attributesForm(box, unit(sel[0]).properties);
    } else if (st.tool === 'move' && sel.length === 1) {
      var grids = Object.keys(st.draft).filter(function (c) { return sel[0].indexOf(c) !== 0; });
      var to = select('move-to', '移交给网格 To grid', grids.map(function (c) { return [c, label(c)]; }));
      box.appendChild(to.label); box.appendChild(to.input);
      box.appendChild(button('confirm', '移交 Move', function () { submit({ operation: 'move', code: sel[0], to: to.input.value }); }));
    }
  }

  function attributesForm(box, p) {
    var name = input('attr-name', '名称 Name', p.name);
    var kind = select('attr-kind', '类型 Kind', [['urban', PE.KIND_NAMES.urban], ['rural', PE.KIND_NAMES.rural], ['special', PE.KIND_NAMES.special]]);
    kind.input.value = p.kind || 'urban';
    var special = select('attr-special', '专属类型 Special type', [['', '—']].concat(PE.SPECIAL_TYPES));
    special.input.value = p.special_type || '';
    var households = input('attr-households', '户数 Households', p.households === null ? '' : p.households, 'number');
    var population = input('attr-population', '人口 Population', p.population === null ? '' : p.population, 'number');
    [name, kind, special, households, population].forEach(function (f) { box.appendChild(f.label); box.appendChild(f.input); });
    box.appendChild(button('confirm', '保存属性 Save attributes', function () {
      var edit = { operation: 'replace', code: p.code };
      if (name.input.value.trim() && name.input.value.trim() !== p.name) edit.name = name.input.value.trim();
      if (kind.input.value !== p.kind) edit.kind = kind.input.value;
      if (special.input.value && special.input.value !== (p.special_type || '')) edit.special_type = special.input.value;
      if (households.input.value !== '' && Number(households.input.value) !== p.households) edit.households = Number(households.input.value);
      if (population.input.value !== '' && Number(population.input.value) !== p.population) edit.population = Number(population.input.value);
      submit(edit);
    }));
  }

  /** The same choice as clicking on the map, for keyboards: a list of the draft's grids. */
  function keyboardPick(box, st) {
    var source = st.tool === 'move' ? st.micro : st.draft;
    var multi = st.tool === 'merge' || st.tool === 'reshape';
    var pick = select('pick-units', multi ? '或从列表选择（可多选）Or pick from the list (several)' : '或从列表选择 Or pick from the list',
      (multi ? [] : [['', '—']]).concat(Object.keys(source).sort().map(function (c) { return [c, label(c)]; })));
    pick.input.multiple = multi;
    if (multi) pick.input.size = 4;
    Array.prototype.forEach.call(pick.input.options, function (o) { o.selected = st.selected.indexOf(o.value) >= 0; });
    pick.input.addEventListener('change', function () {
      st.selected = Array.prototype.filter.call(pick.input.options, function (o) { return o.selected && o.value; })
        .map(function (o) { return o.value; });
      PE.redraw();
      form();
      document.getElementById('pick-units').focus();
      if ((st.tool === 'split' && st.selected.length === 1) || (st.tool === 'reshape' && st.selected.length === 2)) startDrawing('Line');
    });
    box.appendChild(pick.label);
    box.appendChild(pick.input);
  }

  function createForm(geometry) {
    var box = PE.clear(document.getElementById('form'));
    box.appendChild(el('div', 'pe-muted', '新网格 New unit'));
    var name = input('create-name', '名称 Name', '');
    var kind = select('create-kind', '类型 Kind', [['special', PE.KIND_NAMES.special], ['urban', PE.KIND_NAMES.urban], ['rural', PE.KIND_NAMES.rural]]);
    var special = select('create-special', '专属类型 Special type', [['', '—']].concat(PE.SPECIAL_TYPES));
    special.input.value = 'other';
    [name, kind, special].forEach(function (f) { box.appendChild(f.label); box.appendChild(f.input); });
    box.appendChild(el('div', 'pe-muted', '专属网格叠加在基础网格上；城镇/农村网格从相邻网格中切出 A special zone overlays; an urban/rural grid is carved from its siblings'));
    box.appendChild(button('confirm', '新建 Create', function () {
      if (!name.input.value.trim()) { PE.say('请填写名称 a name is needed', true); return; }
      var edit = { operation: 'create', geometry: geometry, name: name.input.value.trim(), kind: kind.input.value };
      if (kind.input.value === 'special' && special.input.value) edit.special_type = special.input.value;
      submit(edit);
    }));
  }

  /** Split: the server cuts (POST /preview); the pieces are shown, each gets a name, then the edit is made. */
  function previewSplit(line) {
    var code = S().selected[0];
    var edit = { operation: 'split', code: code, geometry: line };
    PE.api('POST', '/plans/' + S().planId + '/preview', edit).then(function (answer) {
      var level = unit(code).properties.level;
      var pieces = answer.features.filter(function (f) { return f.properties.level === level && f.properties.change !== 'retired'; });
      var layer = L.geoJSON({ type: 'FeatureCollection', features: pieces }, {
        style: function (f, i) { return { color: '#111', weight: 2, fillColor: PE.CHANGE_COLORS.created, fillOpacity: 0.35 }; },
        onEachFeature: function (f, l) { l.bindTooltip(el('span', null, f.properties.code), { permanent: true, className: 'pe-label' }); }
      }).addTo(PE.map);
      PE.state.layers.preview = layer;
      var box = PE.clear(document.getElementById('form'));
      box.appendChild(el('div', null, '拆分为 ' + pieces.length + ' 块 Split into ' + pieces.length + ' pieces: 请为每块命名 name every piece'));
      var names = pieces.map(function (f, i) {
        var field = input('piece-name-' + i, f.properties.code + (i === 0 ? '（保留编码 keeps the code）' : '（新 new）'),
          i === 0 ? f.properties.name : '');
        field.input.dataset.piece = f.properties.code;
        box.appendChild(field.label); box.appendChild(field.input);
        return field.input;
      });
      box.appendChild(button('confirm', '确认拆分 Confirm split', function () {
        var given = names.map(function (n) { return n.value.trim(); });
        if (given.some(function (n) { return !n; })) { PE.say('每块都需要名称 every piece needs a name', true); return; }
        submit(L.extend(edit, { name: given[0], names: given.slice(1) }));
      }));
      box.appendChild(button('cancel', '取消 Cancel', function () { dropPreview(); form(); }));
    }).catch(function (err) {
      PE.say('无法拆分 cannot split: ' + err.message, true);
      form();
    });
  }

  function dropPreview() {
    if (PE.state.layers.preview) PE.map.removeLayer(PE.state.layers.preview);
    PE.state.layers.preview = null;
  }

  function submit(edit) {
    dropPreview();
    return PE.addEdit(edit).then(function () { form(); }).catch(function (err) {
      PE.say('修改被拒绝 edit refused: ' + err.message, true);
    });
  }

  function undo() {
    var edits = (PE.state.plan && PE.state.plan.edits) || [];
    if (!edits.length) { PE.say('没有可撤回的修改 nothing to undo'); return; }
    PE.removeEdit(edits[edits.length - 1].id);
  }

  function abandon() {
    PE.api('POST', '/plans/' + S().planId + '/abandon').then(function (plan) {
      PE.say('草案已放弃 draft abandoned');
      T.build(false);
      PE.show(plan);
    }).catch(function (err) { PE.say(err.message, true); });
  }

  // ------------------------------------------------------------------ small form helpers
  function input(id, text, value, type) {
    var field = el('input');
    field.id = id;
    if (type) field.type = type;
    if (type === 'number') field.min = '0';
    field.value = value === undefined || value === null ? '' : value;
    var lab = el('label', null, text);
    lab.htmlFor = id;
    return { label: lab, input: field };
  }

  function select(id, text, options) {
    var field = el('select');
    field.id = id;
    options.forEach(function (o) { var opt = el('option', null, o[1]); opt.value = o[0]; field.appendChild(opt); });
    var lab = el('label', null, text);
    lab.htmlFor = id;
    return { label: lab, input: field };
  }

  function button(action, text, onClick) {
    var b = el('button', null, text);
    b.type = 'button';
    b.dataset.action = action;
    b.addEventListener('click', onClick);
    return b;
  }
}());
