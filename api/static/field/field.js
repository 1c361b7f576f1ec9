/* Shared by the field worker's pages (/report, /tasks and the patrol recorder on both): small DOM,
 * key and storage helpers, written once. Server and user text is only ever set with textContent.
 */
'use strict';

window.GridmapField = (() => {
  /** An element with its text (as text, never HTML) and class. */
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  /** A new Idempotency-Key (UUID v4). */
  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    // randomUUID needs a secure context; getRandomValues does not (plain http on an intranet).
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** The reason in an error body: a string, or pydantic errors listed with their fields. */
  function errorText(body, status) {
    const detail = body && body.detail;
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((e) => {
          if (!e || typeof e !== 'object') return String(e);
          const field = Array.isArray(e.loc) && e.loc.length ? `${e.loc[e.loc.length - 1]}: ` : '';
          return field + String(e.msg || JSON.stringify(e));
        })
        .join('；');
    }
    return `HTTP ${status}`;
  }

  /** A value kept in localStorage, or `fallback` (none kept, unreadable, storage off). */
  function readJson(key, fallback) {
    try {
      const v = localStorage.getItem(key);
      return v ? JSON.parse(v) : fallback;
    } catch (e) {
      return fallback;
    }
  }

  /** Keep `value` under `key` (null removes it); false when the storage is full or off. */
  function writeJson(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
      return true;
    } catch (e) {
      return false;
    }
  }

  return { el, newKey, errorText, readJson, writeJson };
})();
