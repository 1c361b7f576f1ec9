/* Swipe compare in the editor: a slider splits the map; left of it the draft's grids, right of it
 * the current boundaries. Written here rather than vendoring leaflet-side-by-side (npm 2.2.0, last
 * released 2021): that plugin clips a layer through its getContainer(), which tile layers have and
 * vector (GeoJSON in SVG) layers do not. The draft's layers go to their own pane while the swipe is
 * on (PE.redraw reads S.swipe), the current boundaries to another; each pane is clipped with CSS
 * `clip` in layer-point coordinates, redone when the map moves, as that plugin does. */
(function () {
  'use strict';

  var PE = window.PlanEditor, el = PE.el;
  var DRAFT_PANE = 'pe-draft', CURRENT_PANE = 'pe-current';
  var map, slider, range, current;

  function panes() {
    [CURRENT_PANE, DRAFT_PANE].forEach(function (name) {
      // Just above overlayPane (400), as the draft is brought to the front there without the swipe.
      if (!map.getPane(name)) map.createPane(name).style.zIndex = 401;
    });
  }

  /** Clip the draft pane to the left of the slider and the current pane to its right. */
  function clip() {
    if (!PE.state.swipe) return;
    var nw = map.containerPointToLayerPoint([0, 0]), se = map.containerPointToLayerPoint(map.getSize());
    var x = nw.x + map.getSize().x * Number(range.value) / 100;
    map.getPane(DRAFT_PANE).style.clip = 'rect(' + [nw.y, x, se.y, nw.x].join('px,') + 'px)';
    map.getPane(CURRENT_PANE).style.clip = 'rect(' + [nw.y, se.x, se.y, x].join('px,') + 'px)';
    slider.style.left = (Number(range.value)) + '%';
    document.body.dataset.swipeAt = range.value;
  }

  function currentLayer() {
    var base = PE.state.base || {};
    return L.geoJSON({ type: 'FeatureCollection', features: Object.keys(base).map(function (c) { return base[c]; }) }, {
      pane: CURRENT_PANE, interactive: false,
      style: function (f) { var s = PE.unitStyle(L.extend({}, f.properties, { change: 'unchanged' }), false); s.fillOpacity = 0.15; return s; }
    });
  }

  function set(on) {
    var S = PE.state;
    S.swipe = on;
    if (current) { map.removeLayer(current); current = null; }
    if (on) { current = currentLayer().addTo(map); }
    [DRAFT_PANE, CURRENT_PANE].forEach(function (name) { map.getPane(name).style.clip = ''; });
    range.disabled = !on;
    slider.hidden = !on;
    PE.redraw();
    clip();
    document.body.dataset.swipe = on ? 'on' : 'off';
  }

  /** The swipe's switch and slider, under the map's layer control. */
  PE.swipe = function (theMap) {
    map = theMap;
    panes();
    var box = el('div', 'leaflet-bar pe-swipe');
    var toggle = el('label');
    var check = el('input');
    check.type = 'checkbox';
    check.dataset.action = 'swipe';
    toggle.appendChild(check);
    toggle.appendChild(el('span', null, ' 卷帘对比 Swipe: 草案 draft ← → 现状 current'));
    range = el('input');
    range.type = 'range';
    range.min = '0'; range.max = '100'; range.value = '50';
    range.disabled = true;
    range.setAttribute('aria-label', '卷帘位置 Swipe position (%)');
    box.appendChild(toggle);
    box.appendChild(range);
    L.DomEvent.disableClickPropagation(box);
    var control = L.control({ position: 'bottomright' });
    control.onAdd = function () { return box; };
    control.addTo(map);
    // The dividing line over the map, where the slider says.
    slider = el('div', 'pe-swipe-line');
    slider.hidden = true;
    map.getContainer().appendChild(slider);
    check.addEventListener('change', function () { set(check.checked); });
    range.addEventListener('input', clip);
    map.on('move zoomend resize', clip);
    // New current boundaries (another publish): the right-hand side follows.
    PE.swipe.refresh = function () { if (PE.state.swipe) set(true); };
  };
}());
