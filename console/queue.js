// The console's waiting-room card: a queued sale's snapshot carries `queue` (the usher's board
// in figures); this draws them and a chart of places waiting against now serving. Loaded
// before console.js, whose render() calls renderQueue() with each snapshot.
'use strict';

const queueSeries = { waiting: [], serving: [] };

function renderQueue(snap, t) {
  const card = document.querySelector('#queue-card');
  if (!card) return;
  const q = snap.queue;
  const policy = snap.sale.admission || {};
  card.hidden = policy.mode !== 'queue';
  if (card.hidden) return;
  const n = (v) => (v === null || v === undefined ? '–' : Number(v).toLocaleString());
  const secs = (v) => (v === null || v === undefined ? '–' : `${Number(v).toFixed(1)} s`);
  const rows = q ? [
    ['queued, not admitted', n(q.waiting), 'waiting'],
    ['now serving', n(q.now_serving), 'now-serving'],
    ['joined', n(q.joined), 'joined'],
    ['admitted, not yet bought', n(q.active), 'active'],
    ['admission rate', `${q.admit_rate.toFixed(1)}/s of ${n(policy.admit_per_sec)}/s`, 'rate'],
    ['wait for the last in line', secs(q.eta_last_secs), 'eta-last'],
    ['estimated wait at join (mean of joins)', secs(q.estimated_wait_secs), 'estimated'],
    ['real wait, join to admission (mean of buyers)', secs(q.real_wait_secs), 'real'],
    ['units left', n(q.remaining), 'remaining'],
    ['sold out', q.sold_out ? 'yes: every poll answers sold_out' : 'no', 'sold-out'],
  ] : [['waiting room', 'unavailable (Redis did not answer)', 'error']];
  const dl = card.querySelector('dl');
  dl.replaceChildren(...rows.flatMap(([k, v, key]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.dataset.testid = `queue-${key}`;
    dd.textContent = v;
    return [dt, dd];
  }));
  if (!q) return;
  push(queueSeries.waiting, [t, q.waiting]);
  push(queueSeries.serving, [t, q.now_serving]);
  chart(card.querySelector('.chart'), [
    { cls: 'waiting', points: queueSeries.waiting },
    { cls: 'serving', points: queueSeries.serving },
  ], 0);
}
