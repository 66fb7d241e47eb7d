// The merchant's back office: a live feed of payments and refunds (Server-Sent Events)
// with an optional spoken announcement of each payment received ("收款 12.50 元"),
// payments with search, filter and refunds (of money or of items, which puts their stock
// back), the daily statement, charts by hour, day, terminal and product with fees and
// net, products with stock and low-stock alerts, settlements, terminals, keys, webhook
// settings and the delivery log. Everything is read from and done through the API.
'use strict';

(() => {
  const { t, api, money, parseAmount, announce, errorText, el, time, newRef } = Saoma;
  const $ = (id) => document.getElementById(id);
  const currency = document.body.dataset.currency || 'CNY';
  const charts = {};
  let paymentsCursor = null;
  let payments = [];

  // ---- tabs ----
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  function select(tab) {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute('aria-selected', String(on));
      other.tabIndex = on ? 0 : -1;
      $(other.getAttribute('aria-controls')).hidden = !on;
    }
    const loaders = { 'tab-payments': () => loadPayments(true), 'tab-reports': loadReport, 'tab-products': loadProducts, 'tab-money': loadSettlements, 'tab-settings': loadSettings, 'tab-live': loadKpis };
    (loaders[tab.id] || (() => {}))();
  }
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (ev) => {
      const next = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (next) { const to = tabs[(i + next + tabs.length) % tabs.length]; to.focus(); select(to); }
    });
  });

  function kpi(label, value) {
    return el('div', { class: 'kpi' }, el('span', {}, label), el('strong', {}, value));
  }

  function kpis(totals) {
    return [kpi(t('bo_count'), String(totals.count)), kpi(t('bo_sales'), money(totals.amount, currency)),
      kpi(t('bo_fee'), money(totals.fee, currency)), kpi(t('bo_refunded'), money(totals.refunded, currency)),
      kpi(t('bo_net'), money(totals.net, currency))];
  }

  async function loadKpis() {
    try {
      const r = await api('GET', '/v1/merchant/reports/sales?days=1');
      $('kpis').replaceChildren(...kpis(r.report.totals));
    } catch (e) { announce(errorText(e)); }
    loadLowStock();
  }

  async function loadLowStock() {
    try {
      const low = await api('GET', '/v1/merchant/products?low_stock=true&limit=20');
      const box = $('low-stock-alert');
      box.hidden = !low.data.length;
      box.textContent = t('bo_low_stock_alert', { list: low.data.map((p) => p.name + ' (' + p.stock + ')').join(', ') });
    } catch (e) { /* products are optional */ }
  }

  // ---- live feed ----
  function speak(text) {
    if (!$('speak').checked || !window.speechSynthesis) return;
    const u = new SpeechSynthesisUtterance(text);
    u.lang = Saoma.lang.startsWith('zh') ? 'zh-CN' : 'en-US';
    window.speechSynthesis.speak(u);
  }

  function spokenAmount(minor, cur) {
    const e = Saoma.exponent(cur);
    const major = (minor / 10 ** e).toFixed(e);
    return t('bo_spoken', { amount: major });
  }

  function feedItem(kind, p, extra) {
    const label = t('feed_' + kind.replace('.', '_'));
    return el('li', { class: 'item', 'data-payment-id': p.id },
      el('div', { class: 'grow' },
        el('strong', { class: 'amount' }, (kind === 'refund.succeeded' ? '−' : '') + money(extra !== undefined ? extra : p.amount, p.currency)), ' ',
        el('span', { class: 'badge ' + (kind === 'payment.succeeded' ? 'succeeded' : kind === 'refund.succeeded' ? 'refunded' : 'closed') }, label),
        el('div', { class: 'muted small' }, time(p.paid_at || p.created_at) + ' · ' + p.out_trade_no + (p.subject ? ' · ' + p.subject : ''))));
  }

  function connectFeed() {
    const source = new EventSource('/v1/events/stream');
    source.onopen = () => { $('feed-state').textContent = t('bo_feed_live'); };
    source.onerror = () => { $('feed-state').textContent = t('bo_feed_reconnecting'); };
    const on = (kind) => source.addEventListener(kind, (ev) => {
      const e = JSON.parse(ev.data);
      const p = kind === 'refund.succeeded' ? e.data.payment : e.data;
      const extra = kind === 'refund.succeeded' ? e.data.refund.amount : undefined;
      $('feed').prepend(feedItem(kind, p, extra));
      while ($('feed').children.length > 50) $('feed').lastChild.remove();
      if (kind === 'payment.succeeded') {
        const words = spokenAmount(p.amount, p.currency);
        $('feed').dataset.lastSpoken = words;
        speak(words);
        announce(t('bo_received', { amount: money(p.amount, p.currency) }));
      } else if (kind === 'refund.succeeded') {
        announce(t('bo_refund_done', { amount: money(extra, p.currency) }));
      }
      loadKpis();
      if (!$('panel-payments').hidden) loadPayments(true);
      if (!$('panel-products').hidden) loadProducts();
    });
    on('payment.succeeded');
    on('refund.succeeded');
    on('payment.closed');
  }

  // ---- payments ----
  function statusText(p) {
    if (p.status === 'succeeded' && p.refunded_amount > 0) return t('status_part_refunded');
    return t('status_' + p.status);
  }

  function renderPayments() {
    const q = $('pay-q').value.trim().toLowerCase();
    const status = $('pay-status').value;
    const shown = payments.filter((p) => (!status || p.status === status) &&
      (!q || [p.id, p.out_trade_no, p.subject, p.customer_ref || ''].some((s) => s.toLowerCase().includes(q))));
    $('payments').replaceChildren(...shown.map((p) => el('tr', { 'data-payment-id': p.id },
      el('td', {}, time(p.paid_at || p.created_at)),
      el('td', {}, p.out_trade_no, el('div', { class: 'muted small' }, p.subject)),
      el('td', {}, p.terminal_id ? p.terminal_id.slice(-6) : '—'),
      el('td', {}, el('span', { class: 'badge ' + p.status }, statusText(p))),
      el('td', { class: 'num' }, money(p.amount, p.currency)),
      el('td', { class: 'num' }, money(p.fee, p.currency)),
      el('td', { class: 'num' }, p.refunded_amount ? money(p.refunded_amount, p.currency) : '—'),
      el('td', {}, p.status === 'succeeded' ? el('button', { type: 'button', class: 'small', 'aria-label': t('refund_for', { ref: p.out_trade_no }), onclick: () => askRefund(p) }, t('pos_refund')) : null))));
  }

  async function loadPayments(fresh) {
    try {
      if (fresh) { payments = []; paymentsCursor = null; }
      const page = await api('GET', '/v1/payments?limit=50' + (paymentsCursor ? '&cursor=' + encodeURIComponent(paymentsCursor) : ''));
      payments = payments.concat(page.data);
      paymentsCursor = page.next_cursor;
      $('more-payments').hidden = !paymentsCursor;
      renderPayments();
    } catch (e) { announce(errorText(e)); }
  }

  let refunding = null;
  function askRefund(p) {
    refunding = p;
    const left = p.amount - p.refunded_amount;
    $('refund-what').textContent = t('bo_refund_what', { ref: p.out_trade_no, left: money(left, p.currency) });
    $('refund-amount').value = (left / 10 ** Saoma.exponent(p.currency)).toFixed(Saoma.exponent(p.currency));
    const box = $('refund-items');
    box.replaceChildren(el('legend', {}, t('bo_refund_items')), ...p.items.filter((i) => i.sku).map((i) => el('label', { class: 'check' },
      el('input', { type: 'number', min: '0', max: String(i.quantity), value: '0', 'data-sku': i.sku, 'data-unit': String(i.unit_amount), class: 'refund-qty', 'aria-label': t('bo_units_back', { name: i.name }) }),
      i.name + ' × ' + i.quantity)));
    for (const input of box.querySelectorAll('.refund-qty')) {
      input.addEventListener('input', () => {
        const sum = Array.from(box.querySelectorAll('.refund-qty')).reduce((s, x) => s + (Number(x.value) || 0) * Number(x.dataset.unit), 0);
        if (sum > 0) $('refund-amount').value = (sum / 10 ** Saoma.exponent(p.currency)).toFixed(Saoma.exponent(p.currency));
      });
    }
    $('refund-dialog').showModal();
  }

  async function refund() {
    const p = refunding;
    const items = Array.from(document.querySelectorAll('.refund-qty')).filter((x) => Number(x.value) > 0)
      .map((x) => ({ sku: x.dataset.sku, quantity: Number(x.value) }));
    const body = { out_refund_no: newRef('bo'), reason: $('refund-reason').value.trim() || undefined };
    if (items.length) body.items = items;
    else {
      const amount = parseAmount($('refund-amount').value, p.currency);
      if (!amount) return announce(t('pos_enter_amount'));
      body.amount = amount;
    }
    try {
      const r = await api('POST', '/v1/payments/' + p.id + '/refunds', body);
      announce(t('bo_refund_done', { amount: money(r.amount, r.currency) }));
      $('refund-reason').value = '';
      loadPayments(true);
      loadProducts();
    } catch (e) { announce(errorText(e)); }
  }

  // ---- reports ----
  function chart(id, type, labels, datasets, horizontal) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), {
      type, data: { labels, datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, indexAxis: horizontal ? 'y' : 'x',
        plugins: { legend: { display: datasets.length > 1 }, tooltip: { callbacks: { label: (c) => c.dataset.label + ': ' + money(Math.round(c.raw * 10 ** Saoma.exponent(currency)), currency) } } },
        scales: { x: { grid: { display: false } }, y: { beginAtZero: true } },
      },
    });
  }

  const major = (minor) => minor / 10 ** Saoma.exponent(currency);

  async function loadReport() {
    const days = $('days').value;
    try {
      const r = await api('GET', '/v1/merchant/reports/sales?days=' + days);
      const rep = r.report;
      if (!$('bill-date').dataset.touched && r.days.length) {
        // The merchant's business day, in its own time zone.
        $('bill-date').value = r.days[r.days.length - 1];
        $('bill-date').dispatchEvent(new Event('change'));
      }
      $('report-kpis').replaceChildren(...kpis(rep.totals));
      chart('chart-hour', 'bar', rep.by_hour.map((b) => b.label), [{ label: t('bo_sales'), data: rep.by_hour.map((b) => major(b.amount)), backgroundColor: '#0f766e' }]);
      chart('chart-day', 'bar', rep.by_day.map((b) => b.label.slice(5)), [
        { label: t('bo_sales'), data: rep.by_day.map((b) => major(b.amount)), backgroundColor: '#0f766e' },
        { label: t('bo_net'), data: rep.by_day.map((b) => major(b.net)), backgroundColor: '#5eead4' },
        { label: t('bo_fee'), data: rep.by_day.map((b) => major(b.fee)), backgroundColor: '#f59e0b' }]);
      chart('chart-terminal', 'bar', rep.by_terminal.map((b) => b.label || t('bo_no_terminal')), [
        { label: t('bo_sales'), data: rep.by_terminal.map((b) => major(b.amount)), backgroundColor: '#0f766e' },
        { label: t('bo_net'), data: rep.by_terminal.map((b) => major(b.net)), backgroundColor: '#5eead4' }]);
      const top = rep.by_product.slice(0, 10);
      chart('chart-product', 'bar', top.map((b) => b.label), [{ label: t('bo_sales'), data: top.map((b) => major(b.amount)), backgroundColor: '#14b8a6' }], true);
    } catch (e) { announce(errorText(e)); }
  }

  function wireStatement() {
    const today = new Date();
    const d = new Date(today.getTime() - today.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
    $('bill-date').value = d;
    const update = () => { $('bill-link').href = '/v1/bills/' + $('bill-date').value; $('bill-link').setAttribute('download', 'statement-' + $('bill-date').value + '.csv'); };
    $('bill-date').addEventListener('change', update);
    $('bill-date').addEventListener('input', () => { $('bill-date').dataset.touched = '1'; });
    update();
  }

  // ---- products ----
  async function loadProducts() {
    try {
      const page = await api('GET', '/v1/merchant/products?limit=100');
      $('products').replaceChildren(...page.data.map((p) => el('tr', { 'data-sku': p.sku },
        el('td', {}, p.sku), el('td', {}, p.name), el('td', {}, p.barcode || '—'),
        el('td', { class: 'num' }, money(p.price, p.currency)),
        el('td', { class: 'num', 'data-stock': p.stock === null ? '' : String(p.stock) }, p.stock === null ? t('bo_untracked') : String(p.stock)),
        el('td', {}, p.low_stock ? el('span', { class: 'badge low' }, t('bo_low')) : null, ' ', el('span', { class: 'badge ' + (p.active ? 'active' : 'closed') }, p.active ? t('bo_active') : t('bo_inactive'))),
        el('td', {},
          p.stock !== null ? el('button', { type: 'button', class: 'small', 'aria-label': t('bo_adjust_for', { name: p.name }), onclick: () => askAdjust(p) }, t('bo_adjust')) : null, ' ',
          el('button', { type: 'button', class: 'small', 'aria-label': t('bo_movements_for', { name: p.name }), onclick: () => showMovements(p) }, t('bo_movements')), ' ',
          el('button', { type: 'button', class: 'small ghost', onclick: () => toggle(p) }, p.active ? t('bo_deactivate') : t('bo_activate'))))));
      loadLowStock();
    } catch (e) { announce(errorText(e)); }
  }

  async function showMovements(p) {
    try {
      const page = await api('GET', '/v1/merchant/products/' + p.id + '/movements?limit=20');
      $('movements-title').textContent = t('bo_movements_of', { name: p.name });
      $('movements').replaceChildren(...page.data.map((m) => el('li', { class: 'item' },
        el('strong', { class: 'num' }, (m.delta > 0 ? '+' : '') + m.delta), ' ',
        el('span', { class: 'badge' }, t('move_' + m.kind)),
        el('span', { class: 'grow muted small' }, time(m.created_at) + (m.reason ? ' · ' + m.reason : '') + (m.payment_id ? ' · ' + m.payment_id : '')),
        el('span', {}, m.stock_after === null ? '' : '→ ' + m.stock_after))));
      $('movements-box').hidden = false;
    } catch (e) { announce(errorText(e)); }
  }

  async function toggle(p) {
    try {
      await api('PATCH', '/v1/merchant/products/' + p.id, { active: !p.active });
      loadProducts();
    } catch (e) { announce(errorText(e)); }
  }

  let adjusting = null;
  function askAdjust(p) {
    adjusting = p;
    $('adjust-what').textContent = t('bo_adjust_what', { name: p.name, stock: p.stock });
    $('adjust-dialog').showModal();
  }

  async function adjust() {
    const delta = Number($('adjust-delta').value);
    const reason = $('adjust-reason').value.trim();
    $('adjust-form').reset();
    if (!Number.isInteger(delta) || !delta || !reason) return announce(t('bo_adjust_help'));
    try {
      const p = await api('POST', '/v1/merchant/products/' + adjusting.id + '/adjustments', { delta, reason });
      announce(t('bo_adjusted', { name: p.name, stock: p.stock }));
      loadProducts();
    } catch (e) { announce(errorText(e)); }
  }

  async function addProduct(ev) {
    ev.preventDefault();
    const f = ev.target;
    const price = f.price.value.trim() === '0' ? 0 : parseAmount(f.price.value, currency);
    if (price === null) return announce(t('bo_price_help'));
    const num = (v) => (v.trim() === '' ? undefined : Number(v));
    const body = { sku: f.sku.value.trim(), name: f.name.value.trim(), price, currency, stock: num(f.stock.value),
      barcode: f.barcode.value.trim() || undefined, low_stock_threshold: num(f.low_stock_threshold.value) };
    try {
      const p = await api('POST', '/v1/merchant/products', body);
      announce(t('bo_product_added', { name: p.name }));
      f.reset();
      loadProducts();
    } catch (e) { announce(errorText(e)); }
  }

  // ---- money ----
  async function loadSettlements() {
    try {
      const page = await api('GET', '/v1/merchant/settlements?limit=30');
      $('settlements').replaceChildren(...page.data.map((s) => el('tr', {},
        el('td', {}, s.business_date), el('td', {}, el('span', { class: 'badge ' + (s.status === 'paid_out' ? 'ok' : 'pending') }, t('settle_' + s.status))),
        el('td', { class: 'num' }, money(s.amount, s.currency)), el('td', { class: 'num' }, s.carried ? money(s.carried, s.currency) : '—'),
        el('td', {}, time(s.created_at)))));
      if (!page.data.length) $('settlements').replaceChildren(el('tr', {}, el('td', { colspan: '5', class: 'muted' }, t('bo_no_settlements'))));
    } catch (e) { announce(errorText(e)); }
  }

  // ---- settings ----
  async function loadSettings() {
    try {
      const tills = await api('GET', '/v1/merchant/terminals');
      $('terminals').replaceChildren(...tills.data.map((x) => el('li', { class: 'item' }, el('strong', { class: 'grow' }, x.name), el('span', { class: 'muted small' }, x.id))));
      if ($('key-terminal')) $('key-terminal').replaceChildren(...tills.data.map((x) => el('option', { value: x.id }, x.name)));
    } catch (e) { announce(errorText(e)); }
    try {
      const keys = await api('GET', '/v1/merchant/keys');
      $('keys').replaceChildren(...keys.data.map((k) => el('li', { class: 'item' },
        el('span', { class: 'grow' }, k.key_id, el('div', { class: 'muted small' }, time(k.created_at) + (k.terminal_id ? ' · ' + k.terminal_id : ''))),
        el('span', { class: 'badge' }, t('bo_role_' + k.role)),
        el('span', { class: 'badge ' + (k.revoked_at ? 'closed' : 'active') }, k.revoked_at ? t('bo_revoked') : t('bo_active')),
        k.revoked_at ? null : el('button', { type: 'button', class: 'small danger', 'aria-label': t('bo_revoke_key', { id: k.key_id }), onclick: () => revokeKey(k) }, t('bo_revoke')))));
    } catch (e) {
      $('keys').replaceChildren(el('li', { class: 'item muted' }, t('bo_owner_only')));
    }
    try {
      const d = await api('GET', '/v1/merchant/webhook/deliveries');
      const list = d.data || [];
      $('deliveries').replaceChildren(...list.slice(0, 20).map((x) => el('li', { class: 'item' },
        el('span', { class: 'grow' }, x.type + ' · ' + time(x.created_at)),
        el('span', { class: 'badge ' + x.status }, x.status), el('span', { class: 'muted small' }, t('bo_attempts', { n: x.attempt_count })))));
      if (!list.length) $('deliveries').replaceChildren(el('li', { class: 'item muted' }, t('bo_no_deliveries')));
    } catch (e) { announce(errorText(e)); }
  }

  async function revokeKey(k) {
    if (!window.confirm(t('bo_revoke_key', { id: k.key_id }) + '?')) return;
    try {
      await api('POST', '/v1/merchant/keys/' + k.key_id + '/revoke', {});
      announce(t('bo_key_revoked', { id: k.key_id }));
      loadSettings();
    } catch (e) { announce(errorText(e)); }
  }

  async function issueKey(ev) {
    ev.preventDefault();
    const role = $('key-role').value;
    const body = { role };
    if (role === 'terminal') body.terminal_id = $('key-terminal').value;
    try {
      const k = await api('POST', '/v1/merchant/keys', body);
      $('key-secret').textContent = t('bo_key_issued', { id: k.key_id, secret: k.secret });
      $('key-secret').hidden = false;
      announce(t('bo_key_issued_short', { id: k.key_id }));
      loadSettings();
    } catch (e) { announce(errorText(e)); }
  }

  async function saveWebhook(ev) {
    ev.preventDefault();
    try {
      const r = await api('PUT', '/v1/merchant/webhook', { url: $('webhook-url').value.trim() });
      $('webhook-secret').textContent = t('bo_webhook_secret', { secret: r.secret });
      $('webhook-secret').hidden = false;
      announce(t('bo_webhook_saved'));
    } catch (e) { announce(errorText(e)); }
  }

  function wire() {
    $('pay-filter').addEventListener('submit', (ev) => { ev.preventDefault(); renderPayments(); });
    $('pay-status').addEventListener('change', renderPayments);
    $('more-payments').addEventListener('click', () => loadPayments(false));
    $('days').addEventListener('change', loadReport);
    $('refund-form').addEventListener('submit', (ev) => { ev.preventDefault(); $('refund-dialog').close(); refund(); });
    $('refund-cancel').addEventListener('click', () => $('refund-dialog').close());
    $('adjust-form').addEventListener('submit', (ev) => { ev.preventDefault(); $('adjust-dialog').close(); adjust(); });
    $('adjust-cancel').addEventListener('click', () => $('adjust-dialog').close());
    if ($('product-form')) $('product-form').addEventListener('submit', addProduct);
    $('webhook-form').addEventListener('submit', saveWebhook);
    if ($('key-form')) $('key-form').addEventListener('submit', issueKey);
    $('speak').checked = localStorage.getItem('saoma.speak') === '1';
    $('speak').addEventListener('change', () => localStorage.setItem('saoma.speak', $('speak').checked ? '1' : '0'));
    wireStatement();
    connectFeed();
    loadKpis();
  }

  wire();
})();
