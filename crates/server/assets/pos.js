// The till: an amount or a basket of products (search, or an item barcode scanned into
// the focused field), the customer's code from a keyboard-wedge scanner (digits + Enter)
// or the camera, the customer's PIN confirmation with a countdown, a dynamic QR that flips
// to paid by itself, recent payments with a manager's refund, and the receipt as a QR.
// Like `saoma pos charge`, it saves the order number before sending, and when an answer
// is lost it queries by that number and cancels if the outcome stays unknown.
'use strict';

(() => {
  const { t, api, money, parseAmount, announce, errorText, el, time, newRef } = Saoma;
  const body = document.body;
  const currency = body.dataset.currency || 'CNY';
  const merchantName = body.dataset.merchant || '';
  const $ = (id) => document.getElementById(id);
  const CONFIRM_SECONDS = 60;
  const basket = [];
  let busy = false;
  let watching = null;

  function basketTotal() {
    return basket.reduce((s, b) => s + b.price * b.quantity, 0);
  }

  function renderBasket() {
    const tbody = $('basket');
    tbody.replaceChildren(...basket.map((b, i) => el('tr', {},
      el('td', {}, b.name, el('small', { class: 'muted' }, ' ' + b.sku)),
      el('td', {}, el('div', { class: 'qty' },
        el('button', { type: 'button', class: 'small', 'aria-label': t('pos_less', { name: b.name }), onclick: () => change(i, -1) }, '−'),
        el('span', { 'aria-label': t('quantity') }, String(b.quantity)),
        el('button', { type: 'button', class: 'small', 'aria-label': t('pos_more', { name: b.name }), onclick: () => change(i, 1) }, '+'))),
      el('td', { class: 'num' }, money(b.price * b.quantity, currency)),
      el('td', {}, el('button', { type: 'button', class: 'small ghost', 'aria-label': t('pos_remove', { name: b.name }), onclick: () => change(i, -b.quantity) }, '✕')))));
    const amount = $('amount');
    if (basket.length) {
      $('total').textContent = money(basketTotal(), currency);
      amount.value = '';
      amount.disabled = true;
    } else {
      $('total').textContent = '—';
      amount.disabled = false;
    }
  }

  function change(i, by) {
    basket[i].quantity += by;
    if (basket[i].quantity <= 0) basket.splice(i, 1);
    renderBasket();
  }

  function add(p) {
    const line = basket.find((b) => b.sku === p.sku);
    if (line) line.quantity += 1;
    else basket.push({ sku: p.sku, name: p.name, price: p.price, quantity: 1 });
    renderBasket();
    $('product-results').replaceChildren();
    announce(t('pos_added', { name: p.name, total: money(basketTotal(), currency) }));
  }

  async function findProducts(q, scanned) {
    if (!q) return;
    try {
      const page = await api('GET', '/v1/merchant/products?active=true&limit=10&q=' + encodeURIComponent(q));
      const exact = page.data.filter((p) => p.barcode === q || p.sku === q);
      if (exact.length === 1) return add(exact[0]);
      if (scanned || !page.data.length) {
        announce(t('pos_no_product', { q }));
        $('product-results').replaceChildren();
        return;
      }
      $('product-results').replaceChildren(...page.data.map((p) => el('li', {},
        el('button', { type: 'button', onclick: () => add(p) },
          el('span', {}, p.name), el('small', { class: 'muted' }, ' ' + p.sku + (p.stock === null ? '' : ' · ' + t('in_stock', { n: p.stock }))),
          el('strong', {}, ' ' + money(p.price, currency))))));
      announce(t('pos_found', { n: page.data.length }));
    } catch (e) {
      announce(errorText(e));
    }
  }

  /** What is being sold now: {amount, items, subject}, or null. */
  function order() {
    if (basket.length) {
      const items = basket.map((b) => ({ sku: b.sku, quantity: b.quantity }));
      const subject = (merchantName ? merchantName + ' · ' : '') + basket.map((b) => b.name).join(', ').slice(0, 200);
      return { amount: basketTotal(), items, subject };
    }
    const amount = parseAmount($('amount').value, currency);
    if (!amount) return null;
    return { amount, subject: merchantName || t('pos_sale') };
  }

  function showResult(kind, main, detail, actions) {
    const r = $('result');
    r.className = 'result ' + kind;
    r.replaceChildren(...[el('p', { class: 'result-main' }, main), detail ? el('p', { class: 'result-detail' }, detail) : null, actions].filter(Boolean));
  }

  function paid(p) {
    $('qr-box').hidden = true;
    const actions = el('div', { class: 'row' },
      el('button', { type: 'button', onclick: () => showReceipt(p.id) }, t('receipt_qr')),
      el('button', { type: 'button', class: 'primary', onclick: newSale }, t('pos_new_sale')));
    showResult('paid', t('pos_paid', { amount: money(p.amount, p.currency) }), p.out_trade_no, actions);
    announce(t('pos_paid', { amount: money(p.amount, p.currency) }));
    basket.length = 0;
    renderBasket();
    loadRecent();
  }

  function declined(code, message) {
    const text = t('err_' + code) !== 'err_' + code ? t('err_' + code) : message;
    showResult('declined', t('pos_declined'), text);
    announce(t('pos_declined') + ': ' + text);
    loadRecent();
  }

  function notCharged(reason) {
    $('qr-box').hidden = true;
    showResult('declined', t('pos_not_charged'), reason);
    announce(t('pos_not_charged') + ': ' + reason);
    loadRecent();
  }

  function newSale() {
    basket.length = 0;
    renderBasket();
    $('amount').value = '';
    $('code').value = '';
    $('receipt-box').hidden = true;
    showResult('idle', t('pos_ready'));
    $('code').focus();
  }

  /** Waits while the customer confirms with the PIN, counting down; cancels if it does not come. */
  async function awaitConfirmation(p) {
    const deadline = Date.now() + CONFIRM_SECONDS * 1000;
    announce(t('pos_confirming'));
    const tick = () => {
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      showResult('confirming', t('pos_confirming'), t('pos_seconds_left', { n: left, amount: money(p.amount, p.currency) }));
    };
    tick();
    const timer = window.setInterval(tick, 1000);
    try {
      while (Date.now() < deadline) {
        const wait = Math.max(1, Math.min(5, Math.ceil((deadline - Date.now()) / 1000)));
        p = await api('GET', '/v1/payments/' + p.id + '?wait=' + wait);
        if (p.status !== 'pending') return p;
      }
      return await api('POST', '/v1/payments/' + p.id + '/cancel', {});
    } finally {
      window.clearInterval(timer);
    }
  }

  function finish(p) {
    if (p.status === 'succeeded') paid(p);
    else if (p.status === 'failed') declined(p.failure_code, p.failure_code);
    else notCharged(t('pos_customer_did_not_confirm'));
  }

  /** The outcome of an order whose answer was lost: query it, and cancel it if it stays unknown. */
  async function recover(outTradeNo) {
    for (let i = 0; i < 3; i++) {
      try {
        const p = await api('GET', '/v1/payments?out_trade_no=' + encodeURIComponent(outTradeNo) + '&wait=2');
        if (p.status !== 'pending') return p;
      } catch (e) {
        if (e.status === 404) break;
      }
    }
    return api('POST', '/v1/payments/cancel', { out_trade_no: outTradeNo });
  }

  async function charge(code) {
    if (busy) return;
    const o = order();
    if (!o) {
      announce(t('pos_enter_amount'));
      $('amount').focus();
      return;
    }
    busy = true;
    // The code is read: it leaves the screen at once.
    $('code').value = '';
    const outTradeNo = newRef('pos');
    // Saved before sending, so a reload can still find out what happened to it.
    localStorage.setItem('saoma.pos.last', outTradeNo);
    $('receipt-box').hidden = true;
    showResult('working', t('pos_charging', { amount: money(o.amount, currency) }));
    try {
      let p;
      try {
        p = await api('POST', '/v1/payments', { out_trade_no: outTradeNo, currency, payment_code: code, ...o });
      } catch (e) {
        if (e.status === 402) return declined(e.code, e.message);
        if (e.status !== 0) return notCharged(errorText(e));
        p = await recover(outTradeNo);
      }
      if (p.status === 'pending' && p.next_action === 'customer_confirm') p = await awaitConfirmation(p);
      finish(p);
    } catch (e) {
      notCharged(errorText(e));
    } finally {
      busy = false;
      $('code').value = '';
      localStorage.removeItem('saoma.pos.last');
    }
  }

  /** A dynamic code on the screen; it flips to paid by itself. */
  async function showQr() {
    if (busy) return;
    const o = order();
    if (!o) {
      announce(t('pos_enter_amount'));
      $('amount').focus();
      return;
    }
    busy = true;
    try {
      let p = await api('POST', '/v1/payments', { out_trade_no: newRef('qr'), currency, ...o });
      $('qr-img').src = p.qr_svg_url;
      $('qr-caption').textContent = t('pos_qr_caption', { amount: money(p.amount, p.currency) });
      $('qr-box').hidden = false;
      $('qr-box').dataset.paymentId = p.id;
      showResult('confirming', t('pos_waiting_scan'), money(p.amount, p.currency));
      announce(t('pos_waiting_scan'));
      const mine = Symbol('watch');
      watching = mine;
      while (watching === mine && p.status === 'pending') {
        p = await api('GET', '/v1/payments/' + p.id + '?wait=20');
      }
      if (watching === mine) finish(p);
    } catch (e) {
      notCharged(errorText(e));
    } finally {
      busy = false;
    }
  }

  async function cancelQr() {
    const id = $('qr-box').dataset.paymentId;
    watching = null;
    if (!id) return;
    try {
      await api('POST', '/v1/payments/' + id + '/cancel', {});
    } catch (e) {
      announce(errorText(e));
    }
    notCharged(t('pos_cancelled'));
  }

  async function showReceipt(id) {
    try {
      const r = await api('GET', '/v1/payments/' + id + '/receipt');
      $('receipt-img').src = '/v1/qr.svg?payload=' + encodeURIComponent(r.receipt_jws);
      $('receipt-box').hidden = false;
      announce(t('receipt_shown'));
      $('receipt-close').focus();
    } catch (e) {
      announce(errorText(e));
    }
  }

  function statusText(p) {
    if (p.status === 'succeeded' && p.refunded_amount > 0) return t('status_part_refunded');
    return t('status_' + p.status);
  }

  async function loadRecent() {
    try {
      const page = await api('GET', '/v1/payments?limit=8');
      $('recent').replaceChildren(...page.data.map((p) => el('li', { class: 'item' },
        el('div', { class: 'grow' },
          el('strong', {}, money(p.amount, p.currency)), ' ',
          el('span', { class: 'badge ' + p.status }, statusText(p)),
          el('div', { class: 'muted small' }, time(p.paid_at || p.created_at) + ' · ' + p.out_trade_no)),
        p.status === 'succeeded' ? el('button', { type: 'button', class: 'small', onclick: () => showReceipt(p.id), 'aria-label': t('receipt_for', { ref: p.out_trade_no }) }, t('receipt')) : null,
        p.status === 'succeeded' ? el('button', { type: 'button', class: 'small', onclick: () => askRefund(p), 'aria-label': t('refund_for', { ref: p.out_trade_no }) }, t('pos_refund')) : null)));
    } catch (e) {
      announce(errorText(e));
    }
  }

  let refunding = null;
  function askRefund(p) {
    refunding = p;
    $('manager-what').textContent = t('pos_refund_what', { amount: money(p.amount - p.refunded_amount, p.currency), ref: p.out_trade_no });
    $('manager').showModal();
  }

  async function refund(form) {
    const p = refunding;
    const key = { key_id: form.key_id.value.trim(), secret: form.secret.value.trim() };
    form.reset();
    try {
      await api('POST', '/v1/web/merchant/manager', key);
      const remaining = p.amount - p.refunded_amount;
      const skuLines = p.items.filter((i) => i.sku);
      let r;
      if (p.refunded_amount === 0 && skuLines.length && skuLines.length === p.items.length) {
        const items = skuLines.map((i) => ({ sku: i.sku, quantity: i.quantity }));
        try {
          r = await api('POST', '/v1/payments/' + p.id + '/refunds', { out_refund_no: newRef('rf'), items, reason: 'till' });
        } catch (e) {
          if (e.status !== 400) throw e;
        }
      }
      if (!r) r = await api('POST', '/v1/payments/' + p.id + '/refunds', { out_refund_no: newRef('rf'), amount: remaining, reason: 'till' });
      showResult('paid', t('pos_refunded', { amount: money(r.amount, r.currency) }), p.out_trade_no);
      announce(t('pos_refunded', { amount: money(r.amount, r.currency) }));
    } catch (e) {
      announce(errorText(e));
      showResult('declined', t('pos_refund_failed'), errorText(e));
    } finally {
      try { await api('DELETE', '/v1/web/merchant/manager'); } catch (e) { /* it lapses by itself */ }
      loadRecent();
    }
  }

  function wire() {
    $('scan-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const raw = $('code').value.replace(/\s/g, '');
      if (/^\d{18}$/.test(raw)) return charge(raw);
      if (raw) {
        // Anything else scanned into this field is an item's barcode.
        $('code').value = '';
        return findProducts(raw, true);
      }
      announce(t('pos_scan_code'));
    });
    $('product-search').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const q = $('product-query').value.trim();
      $('product-query').value = '';
      findProducts(q, false);
    });
    $('camera').addEventListener('click', async () => {
      if (Scanner.active()) return Scanner.stop($('video'));
      try {
        announce(t('camera_on'));
        await Scanner.start($('video'), (text) => {
          const digits = text.replace(/\s/g, '');
          if (/^\d{18}$/.test(digits)) charge(digits);
          else findProducts(digits, true);
        });
      } catch (e) {
        announce(t('camera_unavailable'));
      }
    });
    $('show-qr').addEventListener('click', showQr);
    $('qr-cancel').addEventListener('click', cancelQr);
    $('clear').addEventListener('click', newSale);
    $('receipt-close').addEventListener('click', () => { $('receipt-box').hidden = true; $('code').focus(); });
    $('manager-cancel').addEventListener('click', () => $('manager').close());
    $('manager-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      $('manager').close();
      refund(ev.target);
    });
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') Scanner.stop($('video'));
      if (ev.key === 'F2') { ev.preventDefault(); $('amount').focus(); }
      if (ev.key === 'F3') { ev.preventDefault(); $('product-query').focus(); }
      if (ev.key === 'F4') { ev.preventDefault(); $('code').focus(); }
    });
    renderBasket();
    loadRecent();
    const lost = localStorage.getItem('saoma.pos.last');
    if (lost) {
      // A sale whose answer never came before the page closed: settle it now.
      localStorage.removeItem('saoma.pos.last');
      recover(lost).then(finish).catch(() => {});
    }
  }

  wire();
})();
