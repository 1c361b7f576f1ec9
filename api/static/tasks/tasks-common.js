/* Shared by the tasks page (tasks.js): status and move labels, small DOM and storage helpers. */
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

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function errorText(body, status) {
    const detail = body && body.detail;
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) return detail.map((e) => (e && e.msg) || JSON.stringify(e)).join('；');
    return `HTTP ${status}`;
  }

  function timeText(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString('zh-CN', { hour12: false });
  }

  function readJson(key, fallback) {
    try {
      const v = localStorage.getItem(key);
      return v ? JSON.parse(v) : fallback;
    } catch (e) {
      return fallback;
    }
  }

  function writeJson(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full: the page still works online */
    }
  }

  return { STATUS, MOVE, LIGHT, el, newKey, errorText, timeText, readJson, writeJson };
})();
