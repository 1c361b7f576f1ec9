/* Open cases by view: the case layer asks GET /map/cases for the map's box and zoom, and draws the
 * server's clusters (far out, where many cases are in view) as numbered circles coloured by their
 * worst light; a click on one zooms to its cases. Close in, or with few cases, every case comes.
 *
 * leaflet-realtime polls through GridMap.caseSource: one request at a time (a slow answer is not
 * overtaken by the next poll, which Realtime would otherwise throw away), asked again at once when
 * the map moved while it was under way, and after every move (debounced).
 */
(function () {
  'use strict';
  var GridMap = window.GridMap;
  var el = GridMap.el;
  var MOVE_DEBOUNCE_MS = 250;
  var INDIVIDUAL_ZOOM = 15;  // services/map_cases.py: from this zoom every case comes one by one

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  /** The map's box and zoom as /map/cases reads them (bbox=minlon,minlat,maxlon,maxlat&zoom=z). */
  GridMap.viewQuery = function (map) {
    var b = map.getBounds();
    var box = [clamp(b.getWest(), -180, 179.9999), clamp(b.getSouth(), -85, 84.9999),
      clamp(b.getEast(), -179.9999, 180), clamp(b.getNorth(), -84.9999, 85)];
    return 'bbox=' + box.map(function (v) { return v.toFixed(5); }).join(',') + '&zoom=' + map.getZoom();
  };

  function casesUrl() {
    var base = GridMap.config.casesUrl;
    if (!GridMap.config.casesByView) return base;
    return base + (base.indexOf('?') < 0 ? '?' : '&') + GridMap.viewQuery(GridMap.map);
  }

  var inFlight = false, waiting = null;

  function fetchCases() {
    var url = casesUrl();
    inFlight = true;
    fetch(url, { headers: { Accept: 'application/geo+json' }, cache: 'no-store' }).then(function (r) {
      if (!r.ok) { var e = new Error(url + ': HTTP ' + r.status); e.status = r.status; throw e; }
      return r.json();
    }).then(function (body) {
      inFlight = false;
      if (url !== casesUrl()) { fetchCases(); return; }  // the map moved meanwhile: ask for the new view
      var w = waiting;
      waiting = null;
      GridMap.caseView = { total: body.total, overdue: body.overdue, clustered: body.clustered };
      if (w) w.success(body);
    }).catch(function (err) {
      inFlight = false;
      var w = waiting;
      waiting = null;
      if (w) w.error(err, err.message);
    });
  }

  /** leaflet-realtime's source: the latest poll's callbacks get the answer of the current view. */
  GridMap.caseSource = function (success, error) {
    waiting = { success: success, error: error };
    if (!inFlight) fetchCases();
  };

  /** Ask again after the map moved (debounced): the box and the zoom decide what comes. */
  GridMap.followView = function (map, realtime) {
    if (!GridMap.config.casesByView) return;
    var timer = null;
    map.on('moveend', function () {
      GridMap.movedAt = Date.now();  // tests wait for an answer newer than the move
      clearTimeout(timer);
      timer = setTimeout(function () { realtime.update(); }, MOVE_DEBOUNCE_MS);
    });
  };

  GridMap.isCluster = function (feature) { return !!(feature && feature.properties && feature.properties.cluster); };

  /** Zoom to a cluster's cases, no deeper than where cases come one by one (a street's zoom, 16:
   * two cases 20 m apart would otherwise fill the screen), and at least one zoom in. */
  function zoomTo(map, p, latlng) {
    var b = p.bbox, deepest = Math.min(Math.max(map.getZoom() + 1, INDIVIDUAL_ZOOM + 1), map.getMaxZoom());
    if (b[0] === b[2] && b[1] === b[3]) map.setView(latlng, deepest);
    else map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [40, 40], maxZoom: deepest });
  }

  function clusterIcon(p) {
    var size = Math.round(30 + Math.min(18, 5 * Math.log10(p.count)));
    return L.divIcon({
      html: el('span', null, p.count),
      className: 'gm-cluster gm-server-cluster gm-light-' + (p.light || 'none'),
      iconSize: [size, size]
    });
  }

  /** A server cluster as a marker: its count in a circle of its worst light; click (or Enter) zooms in. */
  GridMap.clusterMarker = function (feature, latlng) {
    var p = feature.properties;
    var marker = L.marker(latlng, {
      icon: clusterIcon(p),
      title: p.count + ' 件事件，点击放大 ' + p.count + ' cases, click to zoom in',
      zIndexOffset: p.overdue ? 1000 : 0
    });
    function zoom() { zoomTo(GridMap.map, marker.feature.properties, marker.getLatLng()); }
    marker.on('click', zoom);
    marker.on('keypress', function (e) { if (e.originalEvent.key === 'Enter') zoom(); });  // by keyboard too
    marker.on('add', function () {
      var node = marker.getElement();
      if (node) node.dataset.clusterCount = marker.feature.properties.count;
    });
    return marker;
  };

  /** A poll's cluster: the same marker if nothing changed but its place, else a new one. */
  GridMap.updateCluster = function (feature, oldLayer) {
    var before = oldLayer.feature.properties, p = feature.properties;
    if (before.count !== p.count || before.light !== p.light) return undefined;
    var c = feature.geometry.coordinates;
    oldLayer.setLatLng([c[1], c[0]]);
    oldLayer.feature = feature;
    return oldLayer;
  };

  /** What a marker of the client's clusters stands for: a case, or a server cluster's count. */
  GridMap.markerCount = function (marker) {
    var f = marker.feature;
    return GridMap.isCluster(f) ? f.properties.count : 1;
  };

  /** The legend's line on clusters (Chinese first, English beside). */
  GridMap.clusterLegend = function (info) {
    if (!GridMap.config.casesByView) return;
    var line = info.note('数字圆圈：该处事件数，点击放大 numbered circle: cases there, click to zoom in', 'gm-legend-row');
    line.insertBefore(el('span', 'gm-dot gm-cluster-key', 'n'), line.firstChild);
  };
}());
