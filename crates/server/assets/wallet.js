// The customer's wallet, phone-sized: balances; the payment code as QR and Code 128,
// hidden until tapped and refreshed before it expires; paying a merchant's QR read by the
// camera or from an image (merchant and amount shown first, PIN above the limit);
// confirming a till's payment with the PIN; transfers to a phone or a friend's receive
// code (the recipient's name masked before confirming); history with receipts.
'use strict';

(() => {
  const { t, api, money, parseAmount, announce, errorText, el, time, newRef } = Saoma;
  const $ = (id) => document.getElementById(id);
  let currency = 'CNY';
  let passwordFreeMinor = Infinity;
  let codeTimer = null;
  let scanned = null;
  let transfer = null;

  async function loadWallet() {
    try {
      const w = await api('GET', '/v1/wallet');
      const b = w.balances.find((x) => x.currency === 'CNY') || w.balances[0] || { currency: 'CNY', available: 0 };
      currency = b.currency;
      passwordFreeMinor = w.limits.password_free_major_units * 10 ** Saoma.exponent(currency);
      $('balance').textContent = money(b.available, b.currency);
      $('limits').textContent = (w.frozen ? t('wallet_frozen') + ' · ' : '') +
        t('wallet_limits', { free: money(passwordFreeMinor, currency), tier: w.limits.tier });
    } catch (e) {
      announce(errorText(e));
    }
  }

  function kindText(kind) {
    return t('history_' + kind);
  }

  let newest = null;
  async function loadHistory() {
    try {
      const page = await api('GET', '/v1/wallet/transactions?limit=20');
      const top = page.data[0];
      if (top && newest !== null && top.id !== newest && top.type === 'payment' && !$('pay-panel').hidden) {
        // The code on the screen was just used: put it away and say so.
        hideCode();
        announce(t('wallet_paid', { amount: money(-top.amount, top.currency), merchant: top.description }));
        loadWallet();
      }
      newest = top ? top.id : '';
      $('history').replaceChildren(...page.data.map((h) => el('li', { class: 'item' },
        el('div', { class: 'grow' },
          el('strong', {}, h.description), ' ', el('span', { class: 'badge' }, kindText(h.type)),
          el('div', { class: 'muted small' }, time(h.created_at))),
        el('strong', { class: 'num' }, (h.amount > 0 ? '+' : '') + money(h.amount, h.currency)),
        h.receipt_jws ? el('button', { type: 'button', class: 'small', 'aria-label': t('receipt_for', { ref: h.description }), onclick: () => showReceipt(h.receipt_jws) }, t('receipt')) : null)));
      if (!page.data.length) $('history').replaceChildren(el('li', { class: 'item muted' }, t('wallet_no_history')));
    } catch (e) {
      announce(errorText(e));
    }
  }

  function showReceipt(jws) {
    $('receipt-img').src = '/v1/qr.svg?payload=' + encodeURIComponent(jws);
    $('receipt-box').hidden = false;
    $('receipt-close').focus();
  }

  function refresh() {
    loadWallet();
    loadHistory();
  }

  function only(panel) {
    for (const id of ['pay-panel', 'scan-panel', 'transfer-panel', 'receive-panel']) $(id).hidden = id !== panel;
    $('show-code').setAttribute('aria-expanded', String(panel === 'pay-panel'));
    if (panel !== 'pay-panel') hideCode();
    if (panel !== 'scan-panel') Scanner.stop($('scan-video'));
    if (panel !== 'transfer-panel') Scanner.stop($('to-video'));
  }

  // ---- the payment code ----

  async function showCode() {
    only('pay-panel');
    window.clearTimeout(codeTimer);
    try {
      const c = await api('POST', '/v1/wallet/payment-codes', {});
      $('code-qr').src = '/v1/qr.svg?payload=' + encodeURIComponent(c.code);
      $('code-barcode').src = '/v1/barcode.svg?code=' + encodeURIComponent(c.code);
      $('code-digits').textContent = c.code.replace(/(\d{4})(?=\d)/g, '$1 ');
      $('code-digits').dataset.code = c.code;
      const expires = new Date(c.expires_at).getTime();
      const tick = () => {
        const left = Math.max(0, Math.round((expires - Date.now()) / 1000));
        $('code-expiry').textContent = t('wallet_code_refresh', { n: left });
        // A fresh code shortly before this one expires, while the code is shown.
        if (left <= 10) return showCode();
        codeTimer = window.setTimeout(tick, 1000);
      };
      tick();
      announce(t('wallet_code_shown'));
    } catch (e) {
      announce(errorText(e));
    }
  }

  function hideCode() {
    window.clearTimeout(codeTimer);
    $('pay-panel').hidden = true;
    $('code-qr').removeAttribute('src');
    $('code-barcode').removeAttribute('src');
    $('code-digits').textContent = '';
    $('show-code').setAttribute('aria-expanded', 'false');
  }

  // ---- a till waiting for the PIN ----

  let confirming = null;
  async function pollPending() {
    if (!$('pay-panel').hidden) loadHistory();
    try {
      const page = await api('GET', '/v1/wallet/pending');
      const first = page.data[0];
      if (first && (!confirming || confirming.payment.id !== first.payment.id)) {
        confirming = first;
        $('confirm-what').textContent = t('wallet_confirm_what', { amount: money(first.payment.amount, first.payment.currency), merchant: first.merchant_name });
        $('confirm-panel').hidden = false;
        announce(t('wallet_confirm_title') + ': ' + $('confirm-what').textContent);
        $('confirm-pin').focus();
      } else if (!first) {
        confirming = null;
        $('confirm-panel').hidden = true;
      }
    } catch (e) {
      /* the next poll tries again */
    }
  }

  async function confirm(ev) {
    ev.preventDefault();
    if (!confirming) return;
    const pin = $('confirm-pin').value;
    $('confirm-pin').value = '';
    try {
      const p = await api('POST', '/v1/wallet/payments/' + confirming.payment.id + '/confirm', { pin });
      announce(t('wallet_paid', { amount: money(p.amount, p.currency), merchant: confirming.merchant_name }));
      confirming = null;
      $('confirm-panel').hidden = true;
      hideCode();
      refresh();
    } catch (e) {
      announce(errorText(e));
    }
  }

  // ---- paying a merchant's code ----

  async function resolve(payload) {
    if (payload.startsWith('saoma://receive/')) {
      only('transfer-panel');
      transfer = { qr_payload: payload };
      $('to-phone').value = '';
      announce(t('wallet_friend_scanned'));
      return;
    }
    try {
      const r = await api('POST', '/v1/wallet/qr/resolve', { qr_payload: payload });
      scanned = { payload, resolution: r };
      $('pay-form').hidden = false;
      $('pay-merchant').textContent = r.merchant_name;
      $('pay-warnings').replaceChildren(...(r.warnings || []).map((w) => el('li', { class: 'alert bad' }, w)));
      const fixed = r.amount !== undefined && r.amount !== null;
      $('pay-amount-fixed').hidden = !fixed;
      $('pay-amount-label').hidden = fixed;
      $('pay-amount-fixed').textContent = fixed ? money(r.amount, r.currency) : '';
      $('pay-pin-label').hidden = !(fixed && r.amount > passwordFreeMinor);
      announce(t('wallet_resolved', { merchant: r.merchant_name, amount: fixed ? money(r.amount, r.currency) : '' }));
      (fixed ? $('pay-confirm') : $('pay-amount')).focus();
    } catch (e) {
      announce(errorText(e));
    }
  }

  async function pay(ev) {
    ev.preventDefault();
    if (!scanned) return;
    const r = scanned.resolution;
    const body = { qr_payload: scanned.payload, client_ref: scanned.clientRef || (scanned.clientRef = newRef('w')) };
    if (r.amount === undefined || r.amount === null) {
      const amount = parseAmount($('pay-amount').value, r.currency);
      if (!amount) return announce(t('pos_enter_amount'));
      body.amount = amount;
      if (amount > passwordFreeMinor) $('pay-pin-label').hidden = false;
    }
    if (!$('pay-pin-label').hidden) {
      if (!$('pay-pin').value) return $('pay-pin').focus();
      body.pin = $('pay-pin').value;
    }
    $('pay-pin').value = '';
    try {
      const p = await api('POST', '/v1/wallet/qr/pay', body);
      $('pay-form').hidden = true;
      scanned = null;
      announce(t('wallet_paid', { amount: money(p.amount, p.currency), merchant: r.merchant_name }));
      $('pay-merchant').textContent = '';
      refresh();
    } catch (e) {
      if (e.code === 'pin_required') {
        $('pay-pin-label').hidden = false;
        $('pay-pin').focus();
      }
      announce(errorText(e));
    }
  }

  async function scanWith(video, onText) {
    try {
      announce(t('camera_on'));
      await Scanner.start(video, onText);
    } catch (e) {
      announce(t('camera_unavailable'));
    }
  }

  async function scanFile(input, onText) {
    const file = input.files && input.files[0];
    if (!file) return;
    const text = await Scanner.fromFile(file);
    input.value = '';
    if (text) onText(text);
    else announce(t('wallet_no_code_in_image'));
  }

  // ---- transfers ----

  async function submitTransfer(ev) {
    ev.preventDefault();
    const amount = parseAmount($('to-amount').value, currency);
    if (!amount) return announce(t('pos_enter_amount'));
    const phone = $('to-phone').value.trim();
    const target = phone ? { to_phone: phone } : transfer && transfer.qr_payload ? { qr_payload: transfer.qr_payload } : null;
    if (!target) return announce(t('wallet_to_whom'));
    if (!transfer || !transfer.who || JSON.stringify(transfer.target) !== JSON.stringify(target) || transfer.amount !== amount) {
      try {
        const who = await api('POST', '/v1/wallet/recipients/resolve', target);
        transfer = { ...(transfer || {}), target, amount, who, clientRef: newRef('t') };
        $('to-who').textContent = t('wallet_to_who', { name: who.name_masked, phone: who.phone_masked, amount: money(amount, currency) });
        $('to-who').hidden = false;
        $('to-pin-label').hidden = false;
        $('to-submit').textContent = t('wallet_send');
        announce($('to-who').textContent);
        $('to-pin').focus();
      } catch (e) {
        announce(errorText(e));
      }
      return;
    }
    const pin = $('to-pin').value;
    $('to-pin').value = '';
    try {
      await api('POST', '/v1/wallet/transfers', { ...target, amount, currency, pin, client_ref: transfer.clientRef });
      announce(t('wallet_sent', { amount: money(amount, currency), name: transfer.who.name_masked }));
      transfer = null;
      $('transfer-form').reset();
      $('to-who').hidden = true;
      $('to-pin-label').hidden = true;
      $('to-submit').textContent = t('wallet_continue');
      refresh();
    } catch (e) {
      announce(errorText(e));
    }
  }

  async function showReceive() {
    only('receive-panel');
    try {
      const r = await api('GET', '/v1/wallet/receive-code');
      $('receive-qr').src = '/v1/qr.svg?payload=' + encodeURIComponent(r.qr_payload);
    } catch (e) {
      announce(errorText(e));
    }
  }

  function wire() {
    $('show-code').addEventListener('click', () => ($('pay-panel').hidden ? showCode() : hideCode()));
    $('hide-code').addEventListener('click', hideCode);
    $('open-scan').addEventListener('click', () => { only('scan-panel'); $('scan-camera').focus(); });
    $('open-transfer').addEventListener('click', () => { only('transfer-panel'); $('to-phone').focus(); });
    $('open-receive').addEventListener('click', showReceive);
    $('scan-camera').addEventListener('click', () => scanWith($('scan-video'), resolve));
    $('scan-file').addEventListener('change', () => scanFile($('scan-file'), resolve));
    $('to-camera').addEventListener('click', () => scanWith($('to-video'), (text) => { transfer = { qr_payload: text }; $('to-phone').value = ''; announce(t('wallet_friend_scanned')); }));
    $('to-file').addEventListener('change', () => scanFile($('to-file'), (text) => { transfer = { qr_payload: text }; $('to-phone').value = ''; announce(t('wallet_friend_scanned')); }));
    $('pay-form').addEventListener('submit', pay);
    $('transfer-form').addEventListener('submit', submitTransfer);
    $('confirm-form').addEventListener('submit', confirm);
    $('receipt-close').addEventListener('click', () => { $('receipt-box').hidden = true; });
    refresh();
    pollPending();
    window.setInterval(pollPending, 2000);
    window.setInterval(loadWallet, 15000);
  }

  wire();
})();
