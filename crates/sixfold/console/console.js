// Sixfold console: the pipeline picture (Server-Sent Events from /console/api/events) and one
// try-it panel per system, each calling the public API the way any client would.
'use strict';

const state = { key: null, config: null, picture: null };

const $ = (selector, root = document) => root.querySelector(selector);

/** Text for HTML and SVG: every name shown comes from outside (topics, users, messages). */
function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

/** One-decimal rates, plain counts. */
function rate(value) {
  if (!value) return '0';
  return value >= 100 ? Math.round(value).toLocaleString('en') : value.toFixed(1);
}

function count(value) {
  return Math.round(value || 0).toLocaleString('en');
}

/** Calls the ingress with the API key; answers {status, data, headers}. */
async function api(method, path, body) {
  const headers = {};
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: keep the text */ }
  return { status: response.status, data, headers: response.headers };
}

/** Shows an API error (the JSON error body) in a panel's error line. */
function fail(where, answer) {
  const message = answer && answer.data && answer.data.message
    ? `${answer.status} ${answer.data.error}: ${answer.data.message}`
    : String(answer && answer.status ? `${answer.status} ${JSON.stringify(answer.data)}` : answer);
  $(where).textContent = message;
}

function clearError(where) { $(where).textContent = ''; }

/** Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a mail header. */
function mimeHeader(text) {
  return String(text).replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=\s*/g, (whole, charset, kind, data) => {
    try {
      let bytes;
      if (kind.toLowerCase() === 'b') {
        bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      } else {
        const raw = data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
        bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
      }
      return new TextDecoder(charset).decode(bytes);
    } catch (_) {
      return whole;
    }
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Repeats `check` until it returns true or `seconds` pass. */
async function until(check, seconds = 60, every = 700) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    try { if (await check()) return true; } catch (_) { /* try again */ }
    await sleep(every);
  }
  return false;
}

// ---------------------------------------------------------------- the pipeline picture

const COLUMNS = { topic: 10, proc: 355, out: 700 };
const BOX_W = 230;
const PROC_H = 54;
const LINE = 30;

function box(cls, x, y, w, h, title, detail, testid) {
  return `<g class="${cls}"${testid ? ` data-testid="${escape(testid)}"` : ''}>`
    + `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="6"></rect>`
    + `<text x="${x + 8}" y="${y + 16}">${escape(title)}</text>`
    + (detail ? `<text class="small" x="${x + 8}" y="${y + h - 7}">${escape(detail)}</text>` : '')
    + '</g>';
}

function edge(x1, y1, x2, y2, perS) {
  const mid = (x1 + x2) / 2;
  return `<path class="edge${perS > 0 ? ' busy' : ''}" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}"></path>`
    + (perS > 0 ? `<text class="rate" x="${mid - 14}" y="${(y1 + y2) / 2 - 4}">${rate(perS)}/s</text>` : '');
}

function drawPipeline(picture) {
  const produced = Object.fromEntries(picture.topics.map((t) => [t.name, t]));
  const parts = [];
  let y = 8;
  for (const p of picture.processors) {
    const lines = Math.max(p.inputs.length, p.outputs.length, 2);
    const height = lines * LINE;
    const procY = y + height / 2 - PROC_H / 2;
    const procMid = procY + PROC_H / 2;
    const through = p.inputs.reduce((sum, f) => sum + f.per_s, 0);
    p.inputs.forEach((flow, i) => {
      const ty = y + i * LINE + (height - p.inputs.length * LINE) / 2;
      const made = produced[flow.name];
      parts.push(box('topic', COLUMNS.topic, ty, BOX_W, 26, flow.name,
        null, `topic-${flow.name}`));
      if (made && made.per_s > 0) {
        parts.push(`<text class="small" x="${COLUMNS.topic + BOX_W - 70}" y="${ty + 17}">+${rate(made.per_s)}/s</text>`);
      }
      parts.push(edge(COLUMNS.topic + BOX_W, ty + 13, COLUMNS.proc, procMid, flow.per_s));
    });
    const detail = `lag ${count(p.lag)} · retried ${count(p.retried.total)} · DLQ ${count(p.dead_lettered.total)}`;
    parts.push(box(`proc ${p.health}`, COLUMNS.proc, procY, BOX_W, PROC_H,
      `${p.name}  ${rate(through)}/s${p.mean_ms ? ` · ${p.mean_ms.toFixed(1)} ms` : ''}`,
      detail, `proc-${p.name}`));
    p.outputs.forEach((flow, i) => {
      const oy = y + i * LINE + (height - p.outputs.length * LINE) / 2;
      parts.push(edge(COLUMNS.proc + BOX_W, procMid, COLUMNS.out, oy + 13, flow.per_s));
      parts.push(box('out', COLUMNS.out, oy, BOX_W, 26, `${flow.name}  ${count(flow.total)}`,
        null, `out-${p.name}-${flow.name}`));
    });
    y += height + 14;
  }
  const svg = $('#pipeline');
  svg.setAttribute('viewBox', `0 0 940 ${y}`);
  svg.innerHTML = parts.join('');
  $('#http-rate').textContent = rate(picture.ingress.requests.per_s);
  $('#http-429').textContent = rate(picture.ingress.limited.per_s);
  $('#http-5xx').textContent = rate(picture.ingress.errors.per_s);
  $('#crawl-rate').textContent = rate(picture.crawler.fetched.per_s);
  $('#crawl-fetched').textContent = count(picture.crawler.fetched.total);
  updateDlqChoices(picture);
}

function watchPipeline() {
  const source = new EventSource('/console/api/events');
  const live = $('#live');
  source.addEventListener('pipeline', (event) => {
    state.picture = JSON.parse(event.data);
    drawPipeline(state.picture);
    live.textContent = 'live';
    live.classList.remove('off');
  });
  source.onerror = () => {
    live.textContent = 'reconnecting…';
    live.classList.add('off');
  };
}

// ---------------------------------------------------------------- URL shortener

function urlPanel() {
  let code = null;
  let clicks = 0;
  $('#shorten-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError('#urls-error');
    const answer = await api('POST', '/v1/urls', { long_url: $('#long-url').value });
    if (answer.status !== 201) return fail('#urls-error', answer);
    code = answer.data.short_code;
    clicks = 0;
    const link = $('#short-link');
    link.href = `/${encodeURIComponent(code)}`;
    link.textContent = answer.data.short_url;
    $('#clicks').textContent = '0';
    $('#short-result').hidden = false;
  });
  $('#follow').addEventListener('click', async () => {
    clearError('#urls-error');
    // `manual`: the browser stops at the redirect (the long URL may be anywhere).
    const followed = await fetch(`/${encodeURIComponent(code)}`, { redirect: 'manual' });
    if (followed.type !== 'opaqueredirect' && followed.status >= 400) {
      return fail('#urls-error', { status: followed.status, data: await followed.text() });
    }
    const expected = clicks + 1;
    const seen = await until(async () => {
      const stats = await api('GET', `/v1/urls/${encodeURIComponent(code)}`);
      if (stats.status !== 200) return false;
      clicks = stats.data.clicks_total;
      $('#clicks').textContent = String(clicks);
      return clicks >= expected;
    }, 60, 500);
    if (!seen) $('#urls-error').textContent = 'the click has not reached the view yet';
  });
}

// ---------------------------------------------------------------- rate limiter

function rateLimitPanel() {
  const totals = { ok: 0, limited: 0 };
  const shown = ['ratelimit', 'ratelimit-policy', 'retry-after', 'x-ratelimit-limit',
    'x-ratelimit-remaining', 'x-ratelimit-reset'];
  async function one() {
    const response = await fetch('/v1/users/console-visitor');
    if (response.status === 429) totals.limited += 1; else totals.ok += 1;
    return response;
  }
  function show(response) {
    $('#rl-ok').textContent = String(totals.ok);
    $('#rl-limited').textContent = String(totals.limited);
    const lines = [`HTTP ${response.status}`];
    for (const name of shown) {
      const value = response.headers.get(name);
      if (value !== null) lines.push(`${name}: ${value}`);
    }
    $('#rl-headers').textContent = lines.join('\n');
  }
  $('#rl-one').addEventListener('click', async () => show(await one()));
  $('#rl-burst').addEventListener('click', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, one));
    show(answers.find((r) => r.status === 429) || answers[answers.length - 1]);
  });
}

// ---------------------------------------------------------------- home timeline

function timelinePanel() {
  const reader = () => $('#tl-reader').value.trim();
  const author = () => $('#tl-author').value.trim();
  const names = () => {
    $('#timeline-panel .author-name').textContent = author();
    $('#timeline-panel .reader-name').textContent = reader();
  };
  $('#tl-reader').addEventListener('input', names);
  $('#tl-author').addEventListener('input', names);
  $('#tl-follow').addEventListener('click', async () => {
    clearError('#tl-error');
    const answer = await api('POST', '/v1/follows', { follower_id: reader(), followee_id: author() });
    if (answer.status !== 202) fail('#tl-error', answer);
    else $('#tl-error').textContent = '';
  });
  $('#tl-post').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError('#tl-error');
    const answer = await api('POST', '/v1/tweets', { author_id: author(), content: $('#tl-text').value });
    if (answer.status !== 201) return fail('#tl-error', answer);
    $('#tl-text').value = '';
  });
  async function refresh() {
    if (!state.key || document.hidden) return;
    const answer = await api('GET', `/v1/timeline/${encodeURIComponent(reader())}?limit=10`);
    if (answer.status !== 200) return;
    $('#tl-list').innerHTML = answer.data.tweets.map((t) => `<li><b>${escape(t.author_id)}</b> `
      + `${escape(t.content)} <span class="note">${new Date(t.created_at_ms).toLocaleTimeString()}</span></li>`).join('');
  }
  setInterval(refresh, 1500);
}

// ---------------------------------------------------------------- chat

function chatPanel() {
  const panes = { a: $('#pane-a'), b: $('#pane-b') };
  const sockets = {};
  let conversation = null;

  function enable(pane, on) {
    pane.querySelectorAll('form.send input, form.send button').forEach((el) => { el.disabled = !on; });
  }

  function bubble(pane, id, text, mine, meta) {
    let item = pane.querySelector(`li[data-id="${CSS.escape(id)}"]`);
    if (!item) {
      item = document.createElement('li');
      item.dataset.id = id;
      if (mine) item.classList.add('mine');
      item.innerHTML = `<span class="text"></span><span class="meta"></span>`;
      item.querySelector('.text').textContent = text;
      const list = pane.querySelector('.messages');
      list.appendChild(item);
      list.scrollTop = list.scrollHeight;
    }
    if (meta !== undefined) item.querySelector('.meta').textContent = meta;
    return item;
  }

  function connect(side, user, token) {
    const pane = panes[side];
    pane.querySelector('.who').textContent = user;
    pane.querySelector('.messages').innerHTML = '';
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/v1/chat/ws?token=${encodeURIComponent(token)}`);
    sockets[side] = socket;
    socket.onopen = () => enable(pane, true);
    socket.onclose = () => enable(pane, false);
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.conversation_id && frame.conversation_id !== conversation) return;
      switch (frame.type) {
        case 'message':
          if (frame.sender_id === user) {
            // Our own message (another device of ours, or the inbox): shown once, and not
            // beside the bubble still waiting for its ack.
            const pending = [...pane.querySelectorAll('li.mine')].some((item) => !item.dataset.seq
              && item.querySelector('.text').textContent === frame.content);
            if (!pending) {
              const item = bubble(pane, `seq-${frame.seq}`, frame.content, true, `✓ ${frame.seq}`);
              item.dataset.seq = frame.seq;
            }
          } else {
            bubble(pane, `seq-${frame.seq}`, `${frame.sender_id}: ${frame.content}`, false, `#${frame.seq}`);
            socket.send(JSON.stringify({ type: 'receipt', conversation_id: conversation, kind: 'read', up_to_seq: frame.seq }));
          }
          break;
        case 'ack': {
          const item = pane.querySelector(`li[data-id="${CSS.escape(frame.client_msg_id)}"]`);
          if (item) {
            item.dataset.id = `seq-${frame.seq}`;
            item.dataset.seq = frame.seq;
            item.querySelector('.meta').textContent = `✓ ${frame.seq}`;
          }
          break;
        }
        case 'receipt':
          if (frame.kind === 'read' && frame.user_id !== user) {
            pane.querySelectorAll('li.mine').forEach((item) => {
              if (Number(item.dataset.seq) <= frame.up_to_seq) item.querySelector('.meta').textContent = `✓✓ ${item.dataset.seq} read`;
            });
          }
          break;
        case 'presence': {
          const other = panes[side === 'a' ? 'b' : 'a'];
          if (frame.user === other.querySelector('.who').textContent) {
            const label = pane.querySelector('.presence');
            label.textContent = `${frame.user} is ${frame.status}`;
            label.classList.toggle('online', frame.status === 'online');
          }
          break;
        }
        case 'error':
          $('#chat-error').textContent = `${frame.code}: ${frame.message}`;
          break;
        default:
          break;
      }
    };
    pane.querySelector('form.send').onsubmit = (event) => {
      event.preventDefault();
      const input = pane.querySelector('form.send input');
      const id = `c-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
      bubble(pane, id, input.value, true, 'sending…');
      socket.send(JSON.stringify({
        type: 'send', client_msg_id: id, conversation_id: conversation, content: input.value, content_type: 'text',
      }));
      input.value = '';
    };
  }

  $('#chat-connect').addEventListener('click', async () => {
    clearError('#chat-error');
    const users = { a: $('#chat-a').value.trim(), b: $('#chat-b').value.trim() };
    const made = await api('POST', '/v1/chat/conversations', { members: [users.a, users.b] });
    if (made.status !== 201 && made.status !== 200) return fail('#chat-error', made);
    conversation = made.data.conversation_id;
    $('#chat-conversation').textContent = `conversation ${conversation}`;
    for (const side of ['a', 'b']) {
      if (sockets[side]) sockets[side].close();
      const token = await api('POST', '/v1/chat/tokens', { user_id: users[side] });
      if (token.status !== 201) return fail('#chat-error', token);
      connect(side, users[side], token.data.token);
    }
  });
}

// ---------------------------------------------------------------- web crawler

function crawlerPanel() {
  let polling = false;
  async function hosts() {
    const answer = await api('GET', '/v1/crawl/hosts');
    if (answer.status !== 200) return;
    $('#crawl-hosts tbody').innerHTML = answer.data.map((h) => `<tr><td>${escape(h.host)}</td>`
      + `<td>${count(h.queued)}</td><td>${h.next_fetch_in_ms === null ? '-' : `${count(h.next_fetch_in_ms)} ms`}</td>`
      + `<td>${h.backoff_ms === null ? '-' : `${count(h.backoff_ms)} ms`}</td></tr>`).join('');
  }
  $('#crawl-go').addEventListener('click', async () => {
    clearError('#crawl-error');
    const answer = await api('POST', '/v1/crawl/seeds', {
      urls: [$('#crawl-seed').value], max_depth: Number($('#crawl-depth').value),
    });
    if (answer.status !== 202) return fail('#crawl-error', answer);
    if (answer.data.refused && answer.data.refused.length) {
      $('#crawl-error').textContent = `refused: ${JSON.stringify(answer.data.refused)}`;
    }
    if (!polling) {
      polling = true;
      setInterval(() => { if (!document.hidden) hosts(); }, 2000);
    }
    hosts();
  });
}

// ---------------------------------------------------------------- notifications

function notifyPanel() {
  $('#nt-send').addEventListener('click', async () => {
    clearError('#nt-error');
    const user = $('#nt-user').value.trim();
    const contact = await api('PUT', `/v1/users/${encodeURIComponent(user)}/contact`, { email: $('#nt-email').value });
    if (contact.status !== 200) return fail('#nt-error', contact);
    const id = `console-${Date.now()}`;
    $('#nt-id').textContent = id;
    $('#nt-status').innerHTML = '';
    const sent = await api('POST', '/v1/notifications', {
      notification_id: id, user_id: user, template_id: 'welcome', channels: ['email'], data: { name: user },
    });
    if (sent.status !== 202) return fail('#nt-error', sent);
    let mailed = false;
    await until(async () => {
      const events = await api('GET', '/console/api/topics/notify.status/recent?limit=100');
      let done = false;
      if (events.status === 200) {
        const mine = events.data.filter((r) => r.value && r.value.notification_id === id);
        $('#nt-status').innerHTML = mine.map((r) => `<li><b>${escape(r.value.status)}</b> `
          + `${escape(r.value.channel || '')} ${escape(r.value.provider || '')} `
          + `<span class="note">${new Date(r.timestamp_ms).toLocaleTimeString()}</span></li>`).join('');
        done = mine.some((r) => ['SENT', 'FAILED', 'DROPPED_BY_PREFERENCE', 'DUPLICATE', 'RATE_LIMITED'].includes(r.value.status));
      }
      const mails = await api('GET', '/console/api/mailbox?limit=5');
      if (mails.status === 200) {
        $('#nt-mail').innerHTML = mails.data.map((m) => `<li>${escape(m.file)}: to ${escape(m.to)}, `
          + `${escape(mimeHeader(m.subject))}</li>`).join('') || '<li class="note">(empty)</li>';
        mailed = mails.data.some((m) => m.message_id.includes(id));
      }
      return done && mailed;
    }, 60, 1000);
  });
}

// ---------------------------------------------------------------- dead letters

function updateDlqChoices(picture) {
  const select = $('#dlq-processor');
  const chosen = select.value;
  const options = picture.processors.map((p) => `<option value="${escape(p.name)}">`
    + `${escape(p.name)} (${count(p.dead_lettered.total)} since start)</option>`).join('');
  if (select.dataset.options !== options) {
    select.innerHTML = options;
    select.dataset.options = options;
    if (chosen) select.value = chosen;
  }
}

function dlqPanel() {
  async function load() {
    clearError('#dlq-error');
    const processor = $('#dlq-processor').value;
    $('#dlq-total').textContent = 'reading…';
    const answer = await api('GET', `/console/api/dlq/${encodeURIComponent(processor)}?examples=1`);
    if (answer.status !== 200) { $('#dlq-total').textContent = ''; return fail('#dlq-error', answer); }
    const summary = answer.data;
    $('#dlq-total').textContent = `${summary.topic}: ${count(summary.total)} records`;
    const box = $('#dlq-classes');
    box.innerHTML = '';
    for (const cls of summary.classes) {
      const item = document.createElement('div');
      item.className = 'dlq-class';
      item.dataset.errorClass = cls.error_class;
      const example = cls.examples[0];
      item.innerHTML = `<b></b> — ${count(cls.count)} records, ${count(cls.redriven)} re-driven `
        + '<button class="redrive">Re-drive</button><pre></pre>';
      item.querySelector('b').textContent = cls.error_class;
      item.querySelector('pre').textContent = example ? JSON.stringify({
        from: example.original_topic, key: example.key, error: example.error,
        attempts: example.attempts, value: example.value,
      }, null, 2) : '';
      item.querySelector('button.redrive').addEventListener('click', async () => {
        const report = await api('POST', `/console/api/dlq/${encodeURIComponent(processor)}/redrive`, { error_class: cls.error_class });
        if (report.status !== 200) return fail('#dlq-error', report);
        $('#dlq-report').textContent = `re-drove ${report.data.redriven} of ${report.data.matched} `
          + `${cls.error_class} records (${report.data.already_redriven} re-driven before)`;
        load();
      });
      box.appendChild(item);
    }
    if (!summary.classes.length) box.innerHTML = '<p class="note">empty</p>';
  }
  $('#dlq-load').addEventListener('click', load);
}

// ---------------------------------------------------------------- start

async function start() {
  watchPipeline();
  urlPanel();
  rateLimitPanel();
  timelinePanel();
  chatPanel();
  crawlerPanel();
  notifyPanel();
  dlqPanel();
  const answer = await api('GET', '/console/api/config');
  if (answer.status === 200) {
    state.config = answer.data;
    state.key = answer.data.api_key || sessionStorage.getItem('sixfold-key');
  }
  if (!state.key) {
    $('#keybar').hidden = false;
    $('#key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      state.key = $('#key-input').value;
      sessionStorage.setItem('sixfold-key', state.key);
      $('#keybar').hidden = true;
    });
  }
  document.body.dataset.ready = 'true';
}

document.addEventListener('DOMContentLoaded', start);
