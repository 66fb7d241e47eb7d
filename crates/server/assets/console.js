// The operator's console: the merchant review queue (approve, reject with a reason, ask
// for more information), customers and wallets (freeze, sign out everywhere, tier), risk
// rules and recent risk decisions, the trial balance, reconciliation of a day,
// settlements, and the audit log with chain verification. The operator's role decides
// what the API allows; the page only asks.
'use strict';

(() => {
  const { t, api, money, announce, errorText, el, time } = Saoma;
  const $ = (id) => document.getElementById(id);

  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  function select(tab) {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute('aria-selected', String(on));
      other.tabIndex = on ? 0 : -1;
      $(other.getAttribute('aria-controls')).hidden = !on;
    }
    const loaders = { 'tab-review': loadMerchants, 'tab-customers': loadCustomers, 'tab-risk': loadRisk, 'tab-books': loadBooks, 'tab-audit': loadAudit };
    (loaders[tab.id] || (() => {}))();
  }
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => select(tab));
    tab.addEventListener('keydown', (ev) => {
      const next = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (next) { const to = tabs[(i + next + tabs.length) % tabs.length]; to.focus(); select(to); }
    });
  });

  /** Asks for a reason in a dialog; resolves with it, or null when cancelled. */
  function askReason(title, required) {
    return new Promise((resolve) => {
      $('reason-title').textContent = title;
      $('reason').value = '';
      $('reason').required = required;
      const dialog = $('reason-dialog');
      const done = (value) => { dialog.close(); resolve(value); };
      $('reason-form').onsubmit = (ev) => { ev.preventDefault(); const r = $('reason').value.trim(); if (required && !r) return; done(r); };
      $('reason-cancel').onclick = () => done(null);
      dialog.showModal();
      $('reason').focus();
    });
  }

  async function act(path, body, done) {
    try {
      await api('POST', path, body);
      announce(done);
      return true;
    } catch (e) {
      announce(errorText(e));
      return false;
    }
  }

  // ---- review ----
  async function decide(m, action) {
    const needs = action !== 'approve';
    const reason = await askReason(t('op_' + action.replace('-', '_') + '_title', { name: m.name }), needs);
    if (reason === null) return;
    const body = reason ? { reason } : {};
    if (await act('/v1/admin/merchants/' + m.id + '/' + action, body, t('op_done_' + action.replace('-', '_'), { name: m.name }))) loadMerchants();
  }

  async function loadMerchants() {
    try {
      const status = $('merchant-status').value;
      const page = await api('GET', '/v1/admin/merchants?limit=50' + (status ? '&status=' + status : ''));
      $('merchants').replaceChildren(...page.data.map(({ merchant: m, application: a }) => el('li', { class: 'item', 'data-merchant-id': m.id },
        el('div', { class: 'grow' },
          el('strong', {}, m.name), ' ', el('span', { class: 'badge ' + m.status }, t('mstatus_' + m.status)),
          el('div', { class: 'muted small' }, [m.id, m.city, m.country, 'MCC ' + m.mcc, m.currency, t('op_fee', { bps: m.fee_bps })].join(' · ')),
          a ? el('div', { class: 'small' }, t('op_application', { legal: a.legal_name, licence: a.licence_number, owner: a.owner_name }), ' ',
            el('span', { class: 'badge ' + a.status }, t('astatus_' + a.status)), a.reason ? ' · ' + a.reason : '') :
            el('div', { class: 'small muted' }, t('op_no_application'))),
        m.status === 'pending_review' ? el('button', { type: 'button', class: 'primary small', 'aria-label': t('op_approve_for', { name: m.name }), onclick: () => decide(m, 'approve') }, t('op_approve')) : null,
        m.status === 'pending_review' ? el('button', { type: 'button', class: 'small', 'aria-label': t('op_request_info_for', { name: m.name }), onclick: () => decide(m, 'request-info') }, t('op_request_info')) : null,
        m.status === 'pending_review' ? el('button', { type: 'button', class: 'small danger', 'aria-label': t('op_reject_for', { name: m.name }), onclick: () => decide(m, 'reject') }, t('op_reject')) : null,
        m.status === 'active' ? el('button', { type: 'button', class: 'small danger', onclick: () => decide(m, 'suspend') }, t('op_suspend')) : null,
        m.status === 'suspended' ? el('button', { type: 'button', class: 'small', onclick: () => decide(m, 'reinstate') }, t('op_reinstate')) : null)));
      if (!page.data.length) $('merchants').replaceChildren(el('li', { class: 'item muted' }, t('op_none')));
    } catch (e) { announce(errorText(e)); }
  }

  // ---- customers ----
  async function loadCustomers() {
    const q = $('customer-q').value.trim();
    try {
      const page = await api('GET', '/v1/admin/customers?limit=50' + (q ? '&q=' + encodeURIComponent(q) : ''));
      $('customers').replaceChildren(...page.data.map(({ customer: c, balances }) => el('tr', { 'data-customer-id': c.id },
        el('td', {}, c.name, el('div', { class: 'muted small' }, c.id)),
        el('td', {}, c.phone),
        el('td', { class: 'num' }, balances.map((b) => money(b.available, b.currency)).join(' ') || '—'),
        el('td', {}, tierSelect(c)),
        el('td', {}, el('span', { class: 'badge ' + (c.frozen ? 'frozen' : 'active') }, c.frozen ? t('wallet_frozen') : t('bo_active'))),
        el('td', {},
          el('button', { type: 'button', class: 'small ' + (c.frozen ? '' : 'danger'), 'aria-label': t(c.frozen ? 'op_unfreeze_for' : 'op_freeze_for', { name: c.name }), onclick: () => freeze(c) }, c.frozen ? t('op_unfreeze') : t('op_freeze')), ' ',
          el('button', { type: 'button', class: 'small', 'aria-label': t('op_sign_out_for', { name: c.name }), onclick: () => signOut(c) }, t('op_sign_out_everywhere'))))));
    } catch (e) { announce(errorText(e)); }
  }

  function tierSelect(c) {
    const s = el('select', { 'aria-label': t('op_tier_for', { name: c.name }) },
      ...['basic', 'standard', 'premium'].map((tier) => el('option', { value: tier, selected: tier === c.tier }, tier)));
    s.addEventListener('change', async () => {
      try {
        await api('PUT', '/v1/admin/customers/' + c.id + '/tier', { tier: s.value });
        announce(t('op_tier_done', { name: c.name, tier: s.value }));
      } catch (e) { announce(errorText(e)); loadCustomers(); }
    });
    return s;
  }

  async function freeze(c) {
    const action = c.frozen ? 'unfreeze' : 'freeze';
    const reason = await askReason(t('op_' + action + '_for', { name: c.name }), true);
    if (reason === null) return;
    if (await act('/v1/admin/customers/' + c.id + '/' + action, { reason }, t('op_done_' + action, { name: c.name }))) loadCustomers();
  }

  async function signOut(c) {
    const reason = await askReason(t('op_sign_out_for', { name: c.name }), true);
    if (reason === null) return;
    await act('/v1/admin/customers/' + c.id + '/sessions/revoke', { reason }, t('op_done_sign_out', { name: c.name }));
  }

  // ---- risk ----
  async function loadRisk() {
    try {
      const rules = await api('GET', '/v1/admin/risk/rules');
      $('rules').value = JSON.stringify(rules, null, 2);
    } catch (e) { announce(errorText(e)); }
    try {
      const d = await api('GET', '/v1/admin/risk/decisions?limit=30');
      $('decisions').replaceChildren(...d.data.map((x) => el('li', { class: 'item' },
        el('div', { class: 'grow' }, el('strong', {}, x.code), ' · ', x.rule,
          el('div', { class: 'muted small' }, time(x.created_at) + ' · ' + x.subject_id + ' · ' + t('op_observed', { observed: x.observed, threshold: x.threshold, version: x.rules_version }))))));
      if (!d.data.length) $('decisions').replaceChildren(el('li', { class: 'item muted' }, t('op_none')));
    } catch (e) { announce(errorText(e)); }
  }

  async function saveRules(ev) {
    ev.preventDefault();
    let rules;
    try { rules = JSON.parse($('rules').value); } catch (e) { return announce(t('op_rules_bad_json')); }
    delete rules.version;
    try {
      const saved = await api('PUT', '/v1/admin/risk/rules', rules);
      $('rules').value = JSON.stringify(saved, null, 2);
      announce(t('op_rules_saved', { version: saved.version }));
    } catch (e) { announce(errorText(e)); }
  }

  // ---- books ----
  function today() {
    const d = new Date();
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  }

  async function loadBooks() {
    if (!$('reconcile-date').value) $('reconcile-date').value = today();
    if (!$('settle-date').value) $('settle-date').value = today();
    try {
      const tb = await api('GET', '/v1/admin/ledger/trial-balance');
      $('trial-balance').replaceChildren(
        el('p', { class: 'alert ' + (tb.balanced ? 'ok' : 'bad') }, tb.balanced ? t('op_balanced') : t('op_not_balanced')),
        el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, t('op_currency')), el('th', { scope: 'col', class: 'num' }, t('op_debits')), el('th', { scope: 'col', class: 'num' }, t('op_credits')))),
          el('tbody', {}, ...tb.currencies.map((c) => el('tr', {}, el('td', {}, c.currency), el('td', { class: 'num' }, money(c.debits, c.currency)), el('td', { class: 'num' }, money(c.credits, c.currency)))))));
    } catch (e) { $('trial-balance').replaceChildren(el('p', { class: 'muted' }, errorText(e))); }
  }

  async function reconcile(ev) {
    ev.preventDefault();
    try {
      const r = await api('GET', '/v1/admin/reconciliation/' + $('reconcile-date').value);
      $('reconcile-result').replaceChildren(
        el('p', { class: 'alert ' + (r.balanced ? 'ok' : 'bad') }, r.balanced ? t('op_reconciled') : t('op_differences', { n: r.differences.length })),
        ...r.differences.slice(0, 20).map((d) => el('pre', {}, JSON.stringify(d))));
      announce(r.balanced ? t('op_reconciled') : t('op_differences', { n: r.differences.length }));
    } catch (e) { announce(errorText(e)); }
  }

  function showSettlements(rows) {
    $('settlements').replaceChildren(...rows.map((s) => el('tr', {}, el('td', {}, s.merchant_name || s.merchant_id),
      el('td', { class: 'num' }, money(s.amount, s.currency)), el('td', { class: 'num' }, s.carried ? money(s.carried, s.currency) : '—'))));
    if (!rows.length) $('settlements').replaceChildren(el('tr', {}, el('td', { colspan: '3', class: 'muted' }, t('bo_no_settlements'))));
  }

  async function settlements(ev) {
    ev.preventDefault();
    try {
      const r = await api('GET', '/v1/admin/settlements/' + $('settle-date').value);
      showSettlements(r.settlements || []);
    } catch (e) { announce(errorText(e)); }
  }

  async function settle() {
    try {
      const r = await api('POST', '/v1/admin/settlements', { date: $('settle-date').value });
      showSettlements(r.settlements || []);
      announce(t('op_settled'));
    } catch (e) { announce(errorText(e)); }
  }

  // ---- audit ----
  async function loadAudit() {
    try {
      const page = await api('GET', '/v1/admin/audit?limit=50');
      $('audit').replaceChildren(...page.data.map((r) => el('tr', {},
        el('td', {}, String(r.seq)), el('td', {}, time(r.created_at)), el('td', {}, r.actor),
        el('td', {}, el('strong', {}, r.action)), el('td', { class: 'small' }, r.object_id))));
    } catch (e) { $('audit').replaceChildren(el('tr', {}, el('td', { colspan: '5', class: 'muted' }, errorText(e)))); }
  }

  async function verify() {
    try {
      const v = await api('GET', '/v1/admin/audit/verify');
      $('verify-result').replaceChildren(el('p', { class: 'alert ' + (v.intact ? 'ok' : 'bad') },
        v.intact ? t('op_chain_intact', { n: v.records }) : t('op_chain_broken', { n: v.broken.length })),
        ...(v.broken || []).map((b) => el('pre', {}, JSON.stringify(b))));
      announce(v.intact ? t('op_chain_intact', { n: v.records }) : t('op_chain_broken', { n: v.broken.length }));
    } catch (e) { announce(errorText(e)); }
  }

  $('merchant-status').addEventListener('change', loadMerchants);
  $('customer-search').addEventListener('submit', (ev) => { ev.preventDefault(); loadCustomers(); });
  $('rules-form').addEventListener('submit', saveRules);
  $('reconcile-form').addEventListener('submit', reconcile);
  $('settle-form').addEventListener('submit', settlements);
  $('settle-run').addEventListener('click', settle);
  $('verify').addEventListener('click', verify);
  loadMerchants();
})();
