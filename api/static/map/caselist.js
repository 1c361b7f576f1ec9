/* The live map's open-case list: overdue first, then by light and due time; a click shows the case.
 * Moved out of gridmap.js (a module stays under 500 lines).
 */
(function () {
  'use strict';
  var GridMap = window.GridMap;
  var el = GridMap.el, when = GridMap.when, LIGHT_RANK = GridMap.LIGHT_RANK;

  function sortedCases() {
    var cases = Object.keys(GridMap.cases).map(function (id) { return GridMap.cases[id]; });
    return cases.filter(function (f) { return !GridMap.isCluster(f); }).sort(function (a, b) {
      var p = a.properties, q = b.properties;
      if (p.overdue !== q.overdue) return p.overdue ? -1 : 1;
      var lp = LIGHT_RANK[p.light], lq = LIGHT_RANK[q.light];
      if (lp !== lq) return (lp === undefined ? 9 : lp) - (lq === undefined ? 9 : lq);
      return String(p.stage_due_at).localeCompare(String(q.stage_due_at));
    });
  }

  /** The open-case list (bottom left), overdue first; a click shows the case on the map. */
  GridMap.caseListControl = function (map, cluster) {
    var control = L.control({ position: 'bottomleft' });
    var box, head, list;
    control.onAdd = function () {
      box = el('div', 'gm-panel gm-caselist');
      head = el('div', 'gm-panel-head', '待办事件 Open cases');
      list = el('ol', 'gm-list');
      box.appendChild(head);
      box.appendChild(list);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    control.refresh = function () {
      var all = sortedCases(), view = GridMap.caseView;
      var overdue = all.filter(function (f) { return f.properties.overdue; }).length;
      // By view: the counts of every case in the box (the server's), clusters far out.
      var total = view ? view.total : all.length;
      head.textContent = '待办事件 Open cases ' + total + ' · 超时 overdue ' + (view ? view.overdue : overdue);
      list.textContent = '';
      if (view && view.clustered) {
        list.appendChild(el('li', 'gm-muted', '放大地图以列出事件 zoom in to list the cases'));
        return;
      }
      all.slice(0, 30).forEach(function (f) {
        var p = f.properties, item = el('li', 'gm-light-' + (p.light || 'none'));
        item.dataset.caseId = f.id;
        item.appendChild(el('span', 'gm-mono', p.number));
        item.appendChild(el('span', null, ' ' + p.category_name + ' · ' + GridMap.statusName(p.status) +
          ' · ' + when(p.stage_due_at)));
        item.addEventListener('click', function () {
          var layer = GridMap.realtime.getLayer(f.id);
          if (layer) cluster.zoomToShowLayer(layer, function () { layer.openPopup(); });
        });
        list.appendChild(item);
      });
    };
    control.addTo(map);
    return control;
  };
}());
