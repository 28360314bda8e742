// The seckill operator console: plain JavaScript, no dependencies, served by the binary.
// The admin token lives in this tab's sessionStorage and goes out only as an Authorization
// header (never a cookie), so no other site can make the browser act with it (no CSRF).
'use strict';

const state = { token: sessionStorage.getItem('seckill.token'), stream: null, series: {}, lag: [] };
const MAX_POINTS = 900;
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function mount(templateId) {
  const app = $('#app');
  app.replaceChildren($(templateId).content.cloneNode(true));
  return app;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = { detail: text }; }
  if (res.status === 401 && path !== '/admin/v1/sales?limit=1') logout('The admin token was refused; log in again.');
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

function logout(message) {
  sessionStorage.removeItem('seckill.token');
  state.token = null;
  route(message);
}

function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}
function num(v) { return v === null || v === undefined ? '–' : Number(v).toLocaleString(); }
function localInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

// ---------------------------------------------------------------------------------- routing
function route(message) {
  stopStream();
  $('#logout').hidden = !state.token;
  $('#who').textContent = state.token ? 'admin' : '';
  if (!state.token) return showLogin(typeof message === 'string' ? message : '');
  const m = location.hash.match(/^#\/sales\/(\d+)/);
  if (m) return showSale(Number(m[1]));
  return showSales();
}
window.addEventListener('hashchange', () => route());
$('#logout').addEventListener('click', () => logout());

// ------------------------------------------------------------------------------------ login
function showLogin(message) {
  const app = mount('#login-view');
  $('#login-error', app).textContent = message || '';
  $('#login-form', app).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    state.token = $('#token', app).value.trim();
    try {
      await api('GET', '/admin/v1/sales?limit=1');
      sessionStorage.setItem('seckill.token', state.token);
      route();
    } catch (e) {
      state.token = null;
      $('#login-error', app).textContent = e.status === 401 ? 'That token is not this service\'s admin token.' : `Login failed: ${e.message}`;
    }
  });
  $('#token', app).focus();
}

// ------------------------------------------------------------------------------------ sales
async function showSales() {
  const app = mount('#sales-view');
  const tbody = $('#sales-table tbody', app);
  try {
    const page = await api('GET', '/admin/v1/sales?limit=100');
    $('#sales-empty', app).hidden = page.sales.length > 0;
    for (const s of page.sales) {
      const phase = phaseOf(s);
      tbody.append(el('tr', { 'data-sale': s.id },
        el('td', {}, el('a', { href: `#/sales/${s.id}` }, s.id)),
        el('td', {}, el('a', { href: `#/sales/${s.id}` }, s.name)),
        el('td', {}, el('span', { class: `status ${phase}` }, `${phase} · ${s.status}`)),
        el('td', {}, `${fmtTime(s.starts_at)} → ${fmtTime(s.ends_at)}`),
        el('td', { class: 'num' }, s.item_count ?? (s.items ? s.items.length : '')),
      ));
    }
  } catch (e) {
    tbody.append(el('tr', {}, el('td', { colspan: 5, class: 'error' }, e.message)));
  }
  setUpCreateForm(app);
}

function phaseOf(sale) {
  const now = Date.now();
  if (now < Date.parse(sale.starts_at)) return 'upcoming';
  if (now < Date.parse(sale.ends_at)) return 'active';
  return 'ended';
}

function setUpCreateForm(app) {
  const form = $('#create-form', app);
  const now = new Date();
  form.starts_at.value = localInput(new Date(now.getTime() + 5 * 1000));
  form.ends_at.value = localInput(new Date(now.getTime() + 60 * 60 * 1000));
  const rows = $('#item-rows tbody', app);
  const addRow = () => {
    const i = rows.children.length;
    const cell = (name, value, type = 'text') => el('td', {}, el('input', { 'data-field': `items[${i}].${name}`, name, type, value }));
    rows.append(el('tr', {},
      cell('sku', `sku-${i + 1}`), cell('title', `Item ${i + 1}`), cell('price_cents', '9900', 'number'),
      cell('stock', '100', 'number'), cell('per_user_limit', '1', 'number'), cell('payment_window_secs', '', 'number'),
      el('td', {}, el('button', { type: 'button', class: 'secondary', onclick: (ev) => { ev.target.closest('tr').remove(); renumber(rows); } }, '×'))));
  };
  $('#add-item', app).addEventListener('click', addRow);
  addRow();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const n of form.querySelectorAll('.invalid')) n.classList.remove('invalid');
    for (const n of form.querySelectorAll('[data-error-for]')) n.textContent = '';
    $('#create-error', app).textContent = '';
    const toIso = (v) => (v ? new Date(v).toISOString() : v);
    const items = [...rows.children].map((tr) => {
      const v = (name) => tr.querySelector(`[name=${name}]`).value;
      const item = { sku: v('sku'), title: v('title'), price_cents: Number(v('price_cents')), stock: Number(v('stock')), per_user_limit: Number(v('per_user_limit')) };
      if (v('payment_window_secs') !== '') item.payment_window_secs = Number(v('payment_window_secs'));
      return item;
    });
    const body = { name: form.name.value, starts_at: toIso(form.starts_at.value), ends_at: toIso(form.ends_at.value), items };
    try {
      const sale = await api('POST', '/admin/v1/sales', body);
      location.hash = `#/sales/${sale.id}`;
    } catch (e) {
      const field = e.body && e.body.field;
      const input = field && form.querySelector(`[data-field="${CSS.escape(field)}"]`);
      if (input) {
        input.classList.add('invalid');
        input.setAttribute('aria-invalid', 'true');
      }
      const slot = field && form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
      const text = field ? `${field}: ${e.message}` : e.message;
      (slot || $('#create-error', app)).textContent = text;
    }
  });
}

function renumber(rows) {
  [...rows.children].forEach((tr, i) => {
    for (const input of tr.querySelectorAll('input')) input.setAttribute('data-field', `items[${i}].${input.name}`);
  });
}

// ------------------------------------------------------------------------------------- sale
function showSale(id) {
  const app = mount('#sale-view');
  state.series = {};
  state.lag = [];
  const status = $('#action-status', app);
  const output = $('#action-output', app);
  const run = async (button, label, fn) => {
    button.disabled = true;
    status.textContent = `${label}…`;
    try {
      await fn();
    } catch (e) {
      status.textContent = `${label} failed: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  };
  $('#reconcile', app).addEventListener('click', (ev) => run(ev.target, 'Reconciling', async () => {
    const r = await api('POST', `/admin/v1/sales/${id}/reconcile`);
    status.textContent = r.ok ? 'Reconciled: every check passes.' : `Reconciled: ${r.discrepancies} failing checks.`;
    renderReport(r);
  }));
  $('#repair', app).addEventListener('click', (ev) => {
    if (!window.confirm('Repair re-sends to Kafka every reservation Redis holds that MySQL lacks. Run it?')) return;
    run(ev.target, 'Repairing', async () => {
      const r = await api('POST', `/admin/v1/sales/${id}/reconcile?repair=true`);
      status.textContent = `Repair re-sent ${r.repaired} reservation(s).`;
      output.hidden = false;
      output.textContent = [`repaired: ${r.repaired}`, ...(r.repaired_ids || []).map((i) => `  re-sent ${i}`),
        ...(r.not_repaired || []).map((n) => `  left for a human: ${n}`)].join('\n');
      renderReport(r);
    });
  });
  $('#prewarm', app).addEventListener('click', (ev) => run(ev.target, 'Prewarming', async () => {
    const r = await api('POST', `/admin/v1/sales/${id}/prewarm`);
    status.textContent = 'Prewarm done.';
    output.hidden = false;
    output.textContent = JSON.stringify(r, null, 2);
  }));
  startStream(id, render, (text) => { $('#live-status').textContent = text; });
}

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
}

// Server-sent events read with fetch (EventSource cannot send the Authorization header).
async function startStream(id, onSnapshot, onStatus) {
  const ctrl = new AbortController();
  state.stream = ctrl;
  while (!ctrl.signal.aborted) {
    try {
      const res = await fetch(`/admin/v1/sales/${id}/events`, { headers: { Authorization: `Bearer ${state.token}` }, signal: ctrl.signal });
      if (res.status === 401) return logout('The admin token was refused; log in again.');
      if (res.status === 404) return onStatus(`Sale ${id} does not exist.`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      onStatus('live');
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let event = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (event === 'snapshot') onSnapshot(JSON.parse(data.join('\n')));
          else if (event === 'error') onStatus(`live view error: ${JSON.parse(data.join('\n')).detail}`);
        }
      }
      onStatus('stream ended; reconnecting…');
    } catch (e) {
      if (ctrl.signal.aborted) return;
      onStatus(`disconnected (${e.message}); reconnecting…`);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function render(snap) {
  if (!$('#sale-title')) return;
  const sale = snap.sale;
  $('#sale-title').textContent = `${sale.name} (sale ${sale.id})`;
  $('#sale-meta').replaceChildren(
    el('span', { class: `status ${sale.phase}` }, `${sale.phase} · ${sale.status}`),
    ` ${fmtTime(sale.starts_at)} → ${fmtTime(sale.ends_at)} · script ${sale.script_version || ''} · updated ${new Date(snap.at).toLocaleTimeString(undefined, { hour12: false })}`);
  const live = Object.fromEntries(snap.items.map((i) => [i.item_id, i]));
  const box = $('#items');
  const t = Date.parse(snap.at);
  for (const item of sale.items) {
    let block = box.querySelector(`[data-item="${item.id}"]`);
    if (!block) {
      block = el('div', { class: 'item', 'data-item': item.id },
        el('div', {}, el('h3', {}, `${item.title} (${item.sku}, item ${item.id})`), el('dl', { class: 'figures' })),
        el('div', {}, el('div', { class: 'chart' }), el('div', { class: 'legend' },
          el('span', { class: 'sw key-reserved' }), 'reserved units',
          el('span', { class: 'sw key-persisted' }), 'persisted units')));
      box.append(block);
    }
    const l = live[item.id] || {};
    const soldOut = l.sold_out_at
      ? el('span', { class: 'soldout', 'data-testid': `sold-out-${item.id}` }, `sold out at ${fmtTime(l.sold_out_at)}`)
      : el('span', { 'data-testid': `sold-out-${item.id}` }, '—');
    const rows = [
      ['initial stock', num(item.initial_stock), 'initial'],
      ['Redis remaining', num(item.redis_remaining), 'remaining'],
      ['reserved units', num(item.reserved_units), 'reserved'],
      ['reservations', num(item.reservations), 'reservations'],
      ['persisted units', num(item.persisted_units), 'persisted'],
      ['pending payment', num(item.pending_orders), 'pending'],
      ['paid', num(item.paid_orders), 'paid'],
      ['cancelled', num(item.cancelled_orders), 'cancelled'],
      ['expired', num(item.expired_orders), 'expired'],
      ['released units', num(item.released_units), 'released'],
      ['rejected', num(item.rejected_orders), 'rejected'],
      ['waiting for Kafka', num(item.undelivered), 'undelivered'],
      ['buy rate', `${(l.buy_rate_per_sec || 0).toFixed(1)}/s`, 'rate'],
    ];
    $('dl', block).replaceChildren(...rows.flatMap(([k, v, key]) => [el('dt', {}, k), el('dd', { 'data-testid': `item-${key}-${item.id}` }, v)]),
      el('dt', {}, 'sold out'), el('dd', {}, soldOut));
    const s = (state.series[item.id] ||= { reserved: [], persisted: [] });
    push(s.reserved, [t, item.reserved_units ?? 0]);
    push(s.persisted, [t, item.persisted_units ?? 0]);
    chart($('.chart', block), [{ cls: 'reserved', points: s.reserved }, { cls: 'persisted', points: s.persisted }], item.initial_stock);
  }
  $('[data-testid=consumer-lag]').textContent = num(snap.consumer_lag);
  $('[data-testid=outbox-backlog]').textContent = num(snap.outbox_backlog);
  push(state.lag, [t, snap.consumer_lag ?? 0]);
  chart($('#lag-chart'), [{ cls: 'lag', points: state.lag }], 0);
  renderQueue(snap, t);
  renderReport(snap.report);
  renderHistory(snap.history || []);
}

function push(points, p) {
  points.push(p);
  if (points.length > MAX_POINTS) points.shift();
}

function renderReport(report) {
  const box = $('#report');
  if (!box) return;
  if (!report) {
    box.replaceChildren(el('p', { class: 'muted', 'data-testid': 'report-status' }, 'no report yet: reconcile now'));
    return;
  }
  const failing = report.items.flatMap((it) => it.checks.filter((c) => !c.ok).map((c) => ({ ...c, item: it })));
  const passing = report.items.flatMap((it) => it.checks.filter((c) => c.ok).map((c) => ({ ...c, item: it })));
  const verdict = report.ok
    ? el('p', { class: 'verdict ok', 'data-testid': 'report-status' }, 'clean: every check passes')
    : el('p', { class: 'verdict bad', 'data-testid': 'report-status' }, `${report.discrepancies} failing`);
  const check = (c) => el('div', { class: `check ${c.ok ? 'ok' : 'bad'}`, 'data-testid': c.ok ? 'check-ok' : 'check-failing', 'data-check': c.name },
    el('div', {}, el('span', { class: 'name' }, `${c.ok ? '✓' : '✗'} ${c.name}`), ` · item ${c.item.item_id} (${c.item.sku})${c.count ? ` · ${c.count}` : ''}`),
    el('div', { class: 'muted' }, c.detail),
    c.sample_ids && c.sample_ids.length ? el('div', { class: 'ids' }, c.sample_ids.join(' ')) : null);
  box.replaceChildren(verdict,
    el('p', { class: 'muted' }, `taken ${fmtTime(report.generated_at)} · consumer lag ${num(report.kafka_consumer_lag)}${report.repair ? ` · repaired ${report.repaired}` : ''}`),
    ...failing.map(check), ...passing.map(check));
}

function renderHistory(history) {
  const tbody = $('#history tbody');
  if (!tbody) return;
  tbody.replaceChildren(...history.map((h) => el('tr', {},
    el('td', {}, fmtTime(h.created_at)),
    el('td', { class: h.ok ? '' : 'error' }, h.ok ? 'clean' : `${h.discrepancies} failing`),
    el('td', { class: 'num' }, h.repaired))));
}

// An SVG line chart of [time, value] series, scaled to fit, with the top value and time span.
function chart(container, series, floorMax) {
  const W = 600; const H = 140; const pad = { l: 44, r: 8, t: 8, b: 18 };
  const ns = 'http://www.w3.org/2000/svg';
  const all = series.flatMap((s) => s.points);
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  add('line', { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, class: 'axis' });
  add('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b, class: 'axis' });
  if (all.length) {
    const t0 = Math.min(...all.map((p) => p[0]));
    const t1 = Math.max(...all.map((p) => p[0]));
    const vmax = Math.max(1, floorMax || 0, ...all.map((p) => p[1]));
    const x = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - pad.l - pad.r);
    const y = (v) => H - pad.b - (v / vmax) * (H - pad.t - pad.b);
    for (const s of series) {
      if (!s.points.length) continue;
      add('polyline', { class: s.cls, points: s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ') });
    }
    add('text', { x: 2, y: pad.t + 8 }, vmax.toLocaleString());
    add('text', { x: 2, y: H - pad.b }, '0');
    add('text', { x: W - pad.r - 80, y: H - 4 }, `last ${Math.round((t1 - t0) / 1000)} s`);
  } else {
    add('text', { x: pad.l + 8, y: H / 2 }, 'waiting for data');
  }
  container.replaceChildren(svg);
}

route();
