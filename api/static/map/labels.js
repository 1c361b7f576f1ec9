/* Unit names on the live map, where they fit.
 *
 * The vector tiles carry outlines, not label points, so the page asks GET /map/labels for the
 * view's units (a label point inside each, and its extent) and writes a name only where the unit
 * is wider on screen than the name, without two names overlapping (smaller units win: at z13 the
 * communities and the larger grids are named, the county and streets are not repeated).
 */
(function () {
  'use strict';
  var GridMap = window.GridMap;
  var MIN_ZOOM = 11;  // below this even streets are too small for their names
  var DEPTH = { street: 0, community: 1, grid: 2 };
  var measure = document.createElement('canvas').getContext('2d');

  function textWidth(text, level) {
    measure.font = (level === 'grid' ? '11px' : '12px') + ' system-ui, sans-serif';
    return measure.measureText(text).width + 8;
  }

  function levelsAt(zoom) {
    if (zoom < 13) return ['street', 'community'];
    return ['community', 'grid'];
  }

  function overlaps(a, list) {
    return list.some(function (b) { return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]; });
  }

  /** Which labels fit: a unit wider than its name, deepest level first, none overlapping. */
  function fitting(map, labels) {
    var placed = [], boxes = [];
    labels.slice().sort(function (a, b) { return DEPTH[b.level] - DEPTH[a.level]; }).forEach(function (u) {
      var sw = map.latLngToContainerPoint([u.bbox[1], u.bbox[0]]);
      var ne = map.latLngToContainerPoint([u.bbox[3], u.bbox[2]]);
      var w = textWidth(u.name, u.level), unitWidth = Math.abs(ne.x - sw.x), unitHeight = Math.abs(sw.y - ne.y);
      if (unitWidth < w || unitHeight < 18) return;
      var p = map.latLngToContainerPoint([u.lat, u.lon]);
      var box = [p.x - w / 2, p.y - 9, p.x + w / 2, p.y + 9];
      if (overlaps(box, boxes)) return;
      boxes.push(box);
      placed.push(u);
    });
    return placed;
  }

  function labelMarker(u) {
    var text = GridMap.el('span', null, u.name);
    return L.marker([u.lat, u.lon], {
      icon: L.divIcon({ html: text, className: 'gm-name gm-name-' + u.level, iconSize: null }),
      interactive: false,
      keyboard: false,
      pane: 'gm-labels'
    });
  }

  /** The unit-name layer (on by default), redrawn after every move. */
  GridMap.labelLayer = function (map, control) {
    map.createPane('gm-labels').style.zIndex = 450;  // over the outlines, under markers and popups
    var group = L.layerGroup().addTo(map);
    var asked = 0, timer = null;
    GridMap.labels = { shown: 0, zoom: null };
    function draw() {
      var zoom = map.getZoom(), ticket = ++asked;
      if (!map.hasLayer(group)) return;
      if (zoom < MIN_ZOOM) { group.clearLayers(); GridMap.labels = { shown: 0, zoom: zoom }; return; }
      var b = map.getBounds();
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); });
      var q = '?bbox=' + bbox.join(',') + levelsAt(zoom).map(function (l) { return '&level=' + l; }).join('');
      GridMap.getJson('/map/labels' + q).then(function (body) {
        if (ticket !== asked) return;  // the map moved on meanwhile
        group.clearLayers();
        var shown = fitting(map, body.labels);
        shown.forEach(function (u) { labelMarker(u).addTo(group); });
        GridMap.labels = { shown: shown.length, zoom: zoom, codes: shown.map(function (u) { return u.code; }) };
      }).catch(function () { /* names are a help, not a must: the outlines still show */ });
    }
    function soon() { clearTimeout(timer); timer = setTimeout(draw, 150); }
    map.on('moveend', soon);
    group.on('add', soon);
    group.on('remove', function () { group.clearLayers(); });
    control.addOverlay(group, '名称 Names');
    soon();
  };
}());
