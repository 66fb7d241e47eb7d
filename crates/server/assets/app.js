// Shared by every page: the strings of the page's language, calls to the /v1 API with
// the page's CSRF token, money formatting per currency, the status region, sign-in and
// sign-out. No business rule lives here: the server decides, the page shows.
'use strict';

const Saoma = (() => {
  const T = JSON.parse(document.getElementById('i18n').textContent || '{}');
  const meta = document.querySelector('meta[name="csrf-token"]');
  const CSRF = meta ? meta.content : '';
  const LANG = document.documentElement.lang || 'en';
  const EXPONENTS = { JPY: 0, KRW: 0, VND: 0, BHD: 3, KWD: 3 };

  /** The string `key` of the page's language, with `{name}` filled from `vars`. */
  function t(key, vars) {
    let s = T[key] !== undefined ? T[key] : key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split('{' + k + '}').join(String(v));
    return s;
  }

  /** Calls the API; resolves with the JSON answer, rejects with {status, code, message, sku, payment_id}. */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (CSRF && method !== 'GET') headers['X-CSRF-Token'] = CSRF;
    let resp;
    try {
      resp = await fetch(path, {
        method, headers, credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw { status: 0, code: 'network', message: t('err_network') };
    }
    if (resp.status === 204) return null;
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      throw { status: resp.status, code: err.code || 'error', message: err.message || text, sku: err.sku, payment_id: err.payment_id };
    }
    return data;
  }

  function exponent(currency) {
    return Object.prototype.hasOwnProperty.call(EXPONENTS, currency) ? EXPONENTS[currency] : 2;
  }

  /** Minor units as the page's language writes money: ¥12.50. */
  function money(minor, currency) {
    const e = exponent(currency);
    const neg = minor < 0;
    const abs = Math.abs(minor);
    const major = Math.floor(abs / 10 ** e);
    const frac = e ? String(abs % 10 ** e).padStart(e, '0') : '';
    const text = new Intl.NumberFormat(LANG, { style: 'currency', currency, minimumFractionDigits: e, maximumFractionDigits: e })
      .formatToParts(0).map((p) => {
        if (p.type === 'integer') return new Intl.NumberFormat(LANG).format(major);
        if (p.type === 'fraction') return frac;
        return p.value;
      }).join('');
    return (neg ? '−' : '') + text;
  }

  /** The minor units of a typed amount ("12.5" → 1250 for CNY), or null when it is not one. */
  function parseAmount(text, currency) {
    const e = exponent(currency);
    const s = String(text || '').trim().replace(/[,\s¥￥$]/g, '');
    const re = e ? new RegExp('^(\\d{1,12})(?:\\.(\\d{1,' + e + '}))?$') : /^(\d{1,12})$/;
    const m = re.exec(s);
    if (!m) return null;
    const minor = Number(m[1]) * 10 ** e + Number((m[2] || '').padEnd(e, '0') || 0);
    return minor > 0 ? minor : null;
  }

  /** Says an outcome in the status region (screen readers read it). */
  function announce(message) {
    const region = document.getElementById('status');
    if (!region) return;
    region.textContent = '';
    window.setTimeout(() => { region.textContent = message; }, 30);
  }

  /** The message a failed call shows: a known code in the page's language, else the server's words. */
  function errorText(e) {
    const key = 'err_' + (e && e.code);
    let s = T[key] !== undefined ? T[key] : (e && e.message) || t('err_unknown');
    if (e && e.sku) s += ' (' + e.sku + ')';
    return s;
  }

  /** Builds an element: el('li', {class: 'x', onclick: f}, 'text', child). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function time(iso) {
    if (!iso) return '';
    return new Date(iso).toLocaleString(LANG, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  /** A short random id for out_trade_no, out_refund_no and client_ref. */
  function newRef(prefix) {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return prefix + Date.now().toString(36) + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function wireSignIn() {
    const form = document.getElementById('sign-in');
    if (form) {
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const body = {};
        for (const input of form.querySelectorAll('input[name]')) body[input.name] = input.value;
        const button = form.querySelector('button[type="submit"]');
        button.disabled = true;
        try {
          await api('POST', form.dataset.path, body);
          announce(t('signed_in'));
          window.location.reload();
        } catch (e) {
          announce(errorText(e));
          const err = form.querySelector('.form-error') || form.appendChild(el('p', { class: 'form-error' }));
          err.textContent = errorText(e);
          button.disabled = false;
        }
      });
    }
    const out = document.getElementById('sign-out');
    if (out) {
      out.addEventListener('click', async () => {
        try { await api('POST', '/v1/web/sign-out', {}); } catch (e) { /* the cookie is cleared either way */ }
        window.location.reload();
      });
    }
  }

  document.addEventListener('DOMContentLoaded', wireSignIn);

  return { t, api, money, parseAmount, announce, errorText, el, time, newRef, exponent, signedIn: Boolean(CSRF), lang: LANG };
})();
