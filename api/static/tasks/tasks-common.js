/* Shared by the tasks page (tasks.js): status and move labels, times; the field pages' helpers
 * (field/field.js) passed on. */
'use strict';

window.GridmapTasks = (() => {
  const STATUS = {
    reported: '已上报 reported', verified: '已核实 verified', filed: '已立案 filed',
    dispatched: '已派遣 dispatched', reassigned: '已改派 reassigned', accepted: '已签收 accepted',
    in_progress: '处置中 in progress', extended: '已延期 extended', suspended: '缓办 suspended',
    handled: '已处置 handled', checked: '已核查 checked', closed: '已结案 closed',
    revisited: '已回访 revisited', returned: '已退回 returned', voided: '已作废 voided', merged: '已合并 merged',
  };
  const MOVE = {
    accepted: '签收 Accept', in_progress: '开始处置 Start', handled: '处置完成 Handled',
    returned: '退回 Return', suspended: '缓办 Suspend', extended: '延期 Extend',
  };
  const LIGHT = { green: '绿 green', yellow: '黄 yellow', red: '红 red' };

  function timeText(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString('zh-CN', { hour12: false });
  }

  const { el, newKey, errorText, readJson, writeJson } = window.GridmapField; // field/field.js
  return { STATUS, MOVE, LIGHT, el, newKey, errorText, timeText, readJson, writeJson };
})();
