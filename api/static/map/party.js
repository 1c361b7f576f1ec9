/* Party cells (党组织) on the live map: clustered, in their own shape and colour.
 *
 * A purple diamond with 党, never a circle: case markers are circles coloured by traffic light
 * (a red circle is an overdue case), so a party cell cannot be read as one. Clustered like the
 * cases (Leaflet.markercluster) so that a county's central households keep panning smooth.
 * Loaded when switched on (GET /map/party).
 */
(function () {
  'use strict';
  var GridMap = window.GridMap;

  function partyIcon(p) {
    var household = p.kind === 'central_household';
    var glyph = GridMap.el('span', 'gm-party-glyph', '党');
    return L.divIcon({
      html: glyph,
      className: 'gm-party' + (household ? ' gm-party-household' : ''),
      iconSize: household ? [16, 16] : [20, 20]
    });
  }

  function partyClusterIcon(cluster) {
    var count = GridMap.el('span', null, cluster.getChildCount());
    return L.divIcon({ html: count, className: 'gm-party-cluster', iconSize: [30, 30] });
  }

  function describe(p) {
    var names = GridMap.PARTY_NAMES;
    if (p.kind === 'central_household') return names.central_household + ' · ' + p.unit_code;
    return Object.keys(p.counts).map(function (k) { return (names[k] || k) + ' ' + p.counts[k]; }).join(' · ') +
      ' · ' + p.unit_code;
  }

  /** The party-cell layer of the layer control (off until switched on; fetched once). */
  GridMap.partyLayer = function (map, control) {
    var cluster = L.markerClusterGroup({
      iconCreateFunction: partyClusterIcon,
      maxClusterRadius: 50,
      showCoverageOnHover: false,
      chunkedLoading: true,   // a county's households are added between frames, not in one long task
      removeOutsideVisibleBounds: true
    });
    GridMap.party = { cluster: cluster, markers: 0 };
    var loaded = false;
    cluster.on('add', function () {
      if (loaded) return;
      loaded = true;
      GridMap.getJson('/map/party' + (GridMap.config.tileQuery || '')).then(function (fc) {
        var markers = fc.features.map(function (f) {
          var c = f.geometry.coordinates;
          var m = L.marker([c[1], c[0]], { icon: partyIcon(f.properties), keyboard: false });
          m.bindTooltip(GridMap.el('span', null, describe(f.properties)));
          return m;
        });
        cluster.addLayers(markers);
        GridMap.party.markers = markers.length;
      });
    });
    control.addOverlay(cluster, '党组织 Party cells');
  };
}());
