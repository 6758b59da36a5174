// wirewatch board: the desk's live page. No library, no build step.
// Every string from an article or alert goes into the page as text (textContent / text
// nodes), never as markup; a link is live only when it is http(s).
'use strict';

(() => {
  const TOKEN_KEY = 'wirewatch-board-token';
  const state = {
    cards: new Map(),       // alert_id -> card view shown
    epoch: null, seq: 0,    // the last event seen: a reconnect replays what came after
    oldest: null,           // seq of the oldest card listed (paging)
    story: null,            // {story_id, alert_id} open in the side panel
    watches: [], writable: false, editing: null,
    source: null, loading: 0,
  };
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- building DOM ---
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child);  // a string becomes a text node
    }
    return node;
  }

  // replaceChildren without the absent parts (null would be written as the text "null").
  function fill(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  function safeHref(url) {
    if (typeof url !== 'string' || !url) return null;
    try {
      const parsed = new URL(url);
      return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(text, url) {
    const href = safeHref(url);
    if (!href) return el('span', {class: 'nolink', text});
    return el('a', {href, target: '_blank', rel: 'noopener noreferrer nofollow', text});
  }

  function when(ts) {
    if (!ts) return '';
    const date = new Date(ts * 1000);
    return date.toLocaleString(undefined, {dateStyle: 'medium', timeStyle: 'medium'});
  }

  function ago(ts) {
    if (!ts) return '';
    const s = Math.max(0, Date.now() / 1000 - ts);
    if (s < 45) return 'just now';
    if (s < 90) return '1 min ago';
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 5400) return '1 h ago';
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }

  function timeEl(ts, cls) {
    return el('time', {class: cls || 'age', 'data-ts': ts || '',
                       datetime: ts ? new Date(ts * 1000).toISOString() : null,
                       title: when(ts), text: ago(ts)});
  }

  // Fold as the server folds (lower case, no diacritics, words only) for the live filter.
  function fold(text) {
    return ' ' + String(text || '').normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase()
      .replace(/[^\p{L}\p{N}]+/gu, ' ').trim().split(' ').filter(Boolean).join(' ');
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({cache: 'no-store',
                                                      credentials: 'same-origin'}, options));
    let body = null;
    try { body = await response.json(); } catch (_) { body = {error: `HTTP ${response.status}`}; }
    if (!response.ok) {
      const error = new Error(body && body.error ? body.error : `HTTP ${response.status}`);
      error.status = response.status; error.body = body;
      throw error;
    }
    return body;
  }

  // --------------------------------------------------------------------- filters ---
  function filters() {
    const since = $('f-since').value;
    return {watch: $('f-watch').value, kind: $('f-kind').value,
            since: since ? Date.now() / 1000 - Number(since) : null, q: $('f-q').value.trim()};
  }

  function passes(card, f) {
    if (f.watch && card.watch_id !== f.watch) return false;
    if (f.kind && card.kind !== f.kind) return false;
    if (f.since && (card.updated_at || card.at) < f.since) return false;
    if (f.q) {
      const words = fold(f.q);
      if (words.trim()) {
        const snippets = card.matches.map((m) => m.parts.map((p) => p[0]).join('')).join(' ');
        const hay = fold([card.title, card.watch_name, card.source || '', card.sources.join(' '),
                          card.terms.join(' '), snippets].join(' '));
        if (!hay.includes(words)) return false;
      }
    }
    return true;
  }

  function query(extra) {
    const f = filters();
    const params = new URLSearchParams();
    if (f.watch) params.set('watch', f.watch);
    if (f.kind) params.set('kind', f.kind);
    if (f.since) params.set('since', f.since.toFixed(0));
    if (f.q) params.set('q', f.q);
    for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
    return params.toString();
  }

  // ---------------------------------------------------------------------- alerts ---
  function renderCard(card) {
    noteKind(card.kind);
    const prio = card.priority && card.priority !== 'routine'
      ? el('span', {class: `prio prio-${card.priority}`, text: card.priority,
                    title: card.priority_reason || null}) : null;
    const head = el('div', {class: 'card-head'},
      prio, el('span', {class: 'badge', text: card.kind}),
      el('span', {class: 'rev', text: `r${card.revision}`}),
      el('span', {class: 'watch', text: card.watch_name}),
      timeEl(card.updated_at || card.at));
    const title = el('h2', {class: 'title'}, link(card.title || '(no title)', card.url));
    const count = card.kind === 'summary'
      ? `${card.held_alerts} held alert(s) on ${card.story_ids.length} story(ies)`
      : `${card.article_count} article(s)`;
    const sources = el('div', {class: 'sources'},
      (card.sources.length ? card.sources.join(', ') : (card.source || 'unknown source')),
      ` · ${count} · opened ${ago(card.opened_at)}`);
    const snippets = el('ul', {class: 'snippets'});
    const rest = el('ul', {class: 'snippets'});
    card.matches.forEach((match, i) => {
      const line = el('li', {}, el('span', {class: 'field', text: match.field}));
      for (const [text, isTerm] of match.parts) {
        line.append(isTerm ? el('mark', {text}) : text);
      }
      (i < 3 ? snippets : rest).append(line);
    });
    if (rest.children.length) {
      snippets.append(el('li', {}, el('details', {class: 'more-matches'},
        el('summary', {text: `${rest.children.length} more match(es)`}), rest)));
    }
    const sig = card.signal;
    const signal = sig ? el('div', {class: 'signal',
      text: `${sig.name} ${sig.window}: ${sig.value} against a baseline of ${sig.baseline} (threshold ${sig.threshold})${sig.detail ? ' · ' + sig.detail : ''}`}) : null;
    const node = el('li', {class: `card kind-${card.kind}`, tabindex: 0,
                           'data-alert-id': card.alert_id, 'data-revision': card.revision,
                           'data-kind': card.kind, 'data-story-id': card.story_id,
                           'data-seq': card.seq},
      head, title, sources, signal, card.matches.length ? snippets : null);
    if (state.story && state.story.alert_id === card.alert_id) node.classList.add('selected');
    return node;
  }

  // A kind a newer alert stage sends (surge...) becomes a filter choice once seen.
  function noteKind(kind) {
    const select = $('f-kind');
    if (![...select.options].some((o) => o.value === kind)) select.append(el('option', {value: kind, text: kind}));
  }

  function showEmpty() {
    $('alerts-empty').hidden = $('alerts').children.length > 0;
  }

  function putCard(card, {top, fresh}) {
    const list = $('alerts');
    const old = list.querySelector(`li[data-alert-id="${CSS.escape(card.alert_id)}"]`);
    const node = renderCard(card);
    if (fresh) node.classList.add('fresh');
    if (old) old.remove();
    if (top) list.prepend(node); else list.append(node);
    state.cards.set(card.alert_id, card);
    showEmpty();
  }

  async function loadAlerts() {
    const ticket = ++state.loading;
    let body;
    try {
      body = await api(`/api/alerts?${query({limit: 100})}`);
    } catch (err) {
      setConn('error', `alerts: ${err.message}`);
      return;
    }
    if (ticket !== state.loading) return;  // a newer filter won
    state.epoch = body.epoch;
    state.seq = Math.max(state.seq, body.seq);
    if (!body.ready) setConn('rebuilding');
    $('alerts').replaceChildren();
    state.cards.clear();
    for (const card of body.alerts) putCard(card, {top: false, fresh: false});
    state.oldest = body.alerts.length ? body.alerts[body.alerts.length - 1].seq : null;
    $('more').hidden = body.alerts.length < 100;
    showEmpty();
  }

  async function loadOlder() {
    if (!state.oldest) return;
    const body = await api(`/api/alerts?${query({limit: 100, before: state.oldest})}`);
    for (const card of body.alerts) {
      if (!state.cards.has(card.alert_id)) putCard(card, {top: false, fresh: false});
    }
    state.oldest = body.alerts.length ? body.alerts[body.alerts.length - 1].seq : state.oldest;
    $('more').hidden = body.alerts.length < 100;
  }

  function onAlert(card) {
    state.seq = Math.max(state.seq, card.seq);
    if (passes(card, filters())) {
      putCard(card, {top: true, fresh: true});
    } else {
      const old = $('alerts').querySelector(`li[data-alert-id="${CSS.escape(card.alert_id)}"]`);
      if (old) { old.remove(); state.cards.delete(card.alert_id); showEmpty(); }
    }
    if (state.story && card.story_id && state.story.story_id === card.story_id) {
      openStory(card.story_id, state.story.alert_id, {quiet: true});
    }
    scheduleWatches();
  }

  // ----------------------------------------------------------------------- story ---
  function closeStory() {
    state.story = null;
    $('story').hidden = true;
    $('layout').classList.remove('with-story');
    for (const node of document.querySelectorAll('.card.selected')) node.classList.remove('selected');
  }

  function revisionLine(rev) {
    return el('li', {'data-revision': rev.revision},
      el('b', {text: `r${rev.revision} ${rev.kind}`}), ' ',
      timeEl(rev.updated_at || rev.at, 'rtime'), ' · ',
      link(rev.title || rev.article_id || '(no title)', rev.url),
      rev.source ? el('span', {class: 'src', text: rev.source}) : null,
      ` · ${rev.sources} source(s)`,
      rev.new_sources.length ? el('span', {class: 'added', text: ` +${rev.new_sources.join(', ')}`}) : null);
  }

  function renderSummaryCard(card) {
    const body = $('story-body');
    body.replaceChildren(
      el('h2', {text: card.title}),
      el('p', {class: 'meta', text: `${card.watch_name} · ${card.held_alerts} alert(s) held by the rate limit · ${when(card.updated_at)}`}),
      el('h3', {text: 'Stories held'}));
    const list = el('ol', {});
    for (const storyId of card.story_ids) {
      const button = el('button', {type: 'button', class: 'linkish', text: storyId});
      button.addEventListener('click', () => openStory(storyId, null, {}));
      list.append(el('li', {}, button));
    }
    body.append(list);
  }

  async function openStory(storyId, alertId, {quiet}) {
    state.story = {story_id: storyId, alert_id: alertId};
    for (const node of document.querySelectorAll('.card.selected')) node.classList.remove('selected');
    if (alertId) {
      const node = $('alerts').querySelector(`li[data-alert-id="${CSS.escape(alertId)}"]`);
      if (node) node.classList.add('selected');
    }
    $('story').hidden = false;
    $('layout').classList.add('with-story');
    const body = $('story-body');
    if (!storyId) {
      const card = state.cards.get(alertId);
      if (card) renderSummaryCard(card);
      return;
    }
    if (!quiet) body.replaceChildren(el('p', {class: 'note', text: 'loading the story…'}));
    let story;
    try {
      story = await api(`/api/stories/${encodeURIComponent(storyId)}`);
    } catch (err) {
      body.replaceChildren(el('p', {class: 'error', text: err.message}));
      return;
    }
    if (!state.story || state.story.story_id !== storyId) return;
    const articles = el('ol', {class: 'articles'});
    for (const a of story.articles) {
      articles.append(el('li', {'data-article-id': a.id},
        link(a.title || a.id, a.url),
        a.source ? el('span', {class: 'src', text: a.source}) : null,
        timeEl(a.received_at || a.at, 'atime'),
        a.duplicate_of ? el('span', {class: 'dup',
          text: `duplicate of ${a.duplicate_of_title ? '“' + a.duplicate_of_title + '”' : a.duplicate_of}`}) : null));
    }
    const more = story.articles_in_window > story.articles.length
      ? el('p', {class: 'note', text: `${story.articles_in_window - story.articles.length} older article(s) not listed`}) : null;
    const alerts = el('div', {class: 'alerts-of-story'});
    for (const alert of story.alerts) {
      const revisions = el('ol', {class: 'revisions'});
      for (const rev of alert.history) revisions.append(revisionLine(rev));
      alerts.append(el('div', {class: 'alert-block', 'data-alert-id': alert.alert_id},
        el('div', {class: 'card-head'}, el('span', {class: `badge kind-${alert.kind}`, text: alert.kind}),
          el('span', {class: 'watch', text: alert.watch_name}),
          el('span', {class: 'rev', text: `r${alert.revision}`})),
        revisions));
    }
    fill(body,
      el('h2', {}, link(story.articles.length ? story.articles[0].title : storyId,
                        story.articles.length ? story.articles[0].url : null)),
      el('p', {class: 'meta', text: `story ${storyId.slice(0, 8)} · first seen ${when(story.first_seen)} · last seen ${when(story.last_seen)}`}),
      el('p', {class: 'meta', text: `${story.article_count} article(s) · ${story.source_count} source(s)${story.sources.length ? ': ' + story.sources.join(', ') : ''}`}),
      el('h3', {text: 'Articles'}), articles, more,
      el('h3', {text: 'How the alerts evolved'}), alerts);
  }

  // ----------------------------------------------------------------- live events ---
  function setConn(kind, detail) {
    const node = $('conn');
    node.dataset.state = kind;
    node.textContent = {live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…',
                        rebuilding: 'rebuilding the window…', error: 'error'}[kind] || kind;
    node.title = detail || '';
  }

  function connect() {
    if (state.source) state.source.close();
    const url = state.epoch ? `/events?after=${encodeURIComponent(`${state.epoch}.${state.seq}`)}` : '/events';
    const source = new EventSource(url);
    state.source = source;
    source.addEventListener('hello', (e) => {
      const hello = JSON.parse(e.data);
      state.writable = hello.writable;
      if (state.epoch && hello.epoch !== state.epoch) {  // a restarted board
        state.epoch = hello.epoch; state.seq = 0;
        loadAlerts();
      }
      setConn(hello.ready ? 'live' : 'rebuilding');
    });
    source.addEventListener('alert', (e) => onAlert(JSON.parse(e.data)));
    source.addEventListener('health', (e) => renderHealth(JSON.parse(e.data)));
    source.addEventListener('watches', () => scheduleWatches());
    source.addEventListener('reset', () => { setConn('live'); loadAlerts(); loadWatches(); });
    source.addEventListener('error', () => setConn('reconnecting'));
  }

  // ---------------------------------------------------------------------- health ---
  function renderHealth(h) {
    const t = h.throughput;
    const tp = $('h-throughput');
    tp.replaceChildren('throughput ');
    if (t) {
      Object.entries(t).forEach(([stage, rate], i) => {
        tp.append(i ? ' · ' : '', `${stage} `, el('b', {text: `${rate.toFixed(1)}/s`}));
      });
    } else tp.append(el('b', {text: '–'}));
    const lag = $('h-lag');
    fill(lag, 'lag ', el('b', {text: `${h.lag_messages} msg`}),
         h.lag_seconds ? ` (${h.lag_seconds} s)` : null);
    lag.title = Object.entries(h.lag_by_topic).map(([k, v]) => `${k}: ${v}`).join('\n') || 'no lag reported';
    lag.classList.toggle('bad', h.lag_messages > 1000 || h.stalled_partitions > 0);
    const dead = $('h-dead');
    const d = h.dead_letters;
    dead.replaceChildren('dead letters 1 h ', el('b', {text: `${d.last_hour}${d.at_least ? '+' : ''}`}));
    dead.title = Object.entries(d.by_stage).map(([k, v]) => `${k}: ${v}`).join('\n') || 'none in the last hour';
    dead.classList.toggle('bad', d.last_hour > 0);
    const workers = $('h-workers');
    workers.replaceChildren('workers ', el('b', {text: `${h.workers_up}/${h.workers}`}));
    workers.title = h.errors.join('\n') || 'every worker answered';
    workers.classList.toggle('bad', h.workers_up < h.workers);
  }

  async function loadStatus() {
    try {
      const s = await api('/api/status');
      $('h-window').replaceChildren('window ', el('b', {text: `${s.window.alerts} alerts · ${s.window.articles} articles`}));
      $('h-window').title = `at most ${s.window.max_alerts} alerts and ${s.window.max_articles} story articles, ${s.window.window_seconds / 3600} h`;
    } catch (_) { /* shown by the connection state */ }
  }

  // --------------------------------------------------------------------- watches ---
  let watchTimer = null;
  function scheduleWatches() {
    clearTimeout(watchTimer);
    watchTimer = setTimeout(loadWatches, 400);
  }

  async function loadWatches() {
    let body;
    try {
      body = await api('/api/watches?limit=5000');
    } catch (err) {
      $('watches-note').textContent = err.message;
      return;
    }
    state.watches = body.watches; state.writable = body.writable;
    const select = $('f-watch');
    const chosen = select.value;
    select.replaceChildren(el('option', {value: '', text: 'all watches'}));
    for (const w of [...body.watches].sort((a, b) => a.name.localeCompare(b.name))) {
      select.append(el('option', {value: w.id, text: `${w.name} (${w.alerts})`}));
    }
    select.value = body.watches.some((w) => w.id === chosen) ? chosen : '';
    renderWatches();
    loadStatus();
  }

  function renderWatches() {
    const needle = $('w-filter').value.trim().toLowerCase();
    const rows = state.watches.filter((w) => !needle || w.name.toLowerCase().includes(needle));
    const tbody = $('watches').tBodies[0];
    tbody.replaceChildren();
    for (const w of rows.slice(0, 500)) {
      const edit = el('button', {type: 'button', class: 'edit', text: 'Edit'});
      edit.addEventListener('click', () => startEdit(w));
      const pending = (confirming.get(w.id) || 0) > Date.now();
      const remove = el('button', {type: 'button', class: 'remove danger',
                                   text: pending ? 'Confirm remove' : 'Remove'});
      remove.addEventListener('click', () => removeWatch(w, remove));
      tbody.append(el('tr', {'data-watch-id': w.id},
        el('td', {'data-label': 'watch'}, el('b', {text: w.name})),
        el('td', {'data-label': 'query'}, el('code', {text: w.query})),
        el('td', {class: 'num hits', 'data-label': 'alerts', text: w.alerts}),
        el('td', {class: 'num', 'data-label': 'revisions', text: w.revisions}),
        el('td', {'data-label': 'rate limit', text: w.rate_limit === null ? 'default' : w.rate_limit}),
        el('td', {'data-label': 'webhook'}, w.webhook_url ? el('code', {text: w.webhook_url}) : '–'),
        el('td', {class: 'acts'}, edit, remove)));
    }
    $('watches-note').textContent = `${state.watches.length} watch(es)` +
      (rows.length > 500 ? `; the first 500 of ${rows.length} shown` : '') +
      (state.writable ? '' : '. Changes are disabled: the board has no WIREWATCH_API_TOKEN.');
  }

  function watchBody() {
    const rate = $('w-rate').value.trim();
    const body = {name: $('w-name').value, query: $('w-query').value,
                  webhook_url: $('w-webhook').value.trim() || null,
                  rate_limit: rate === '' ? null : (/^-?\d+$/.test(rate) ? Number(rate) : rate)};
    return body;
  }

  function clearWatchError() {
    $('w-error').hidden = true; $('w-error').textContent = '';
    $('w-query-at').hidden = true; $('w-query-at').textContent = '';
    for (const id of ['w-name', 'w-query', 'w-webhook', 'w-rate']) $(id).removeAttribute('aria-invalid');
  }

  // A refused watch: the reason, and for a query that does not parse, a caret under the
  // position the parser reports (code points, as Python counts them).
  function showWatchError(body) {
    const fieldInput = {name: 'w-name', query: 'w-query', webhook_url: 'w-webhook', rate_limit: 'w-rate'}[body.field];
    $('w-error').hidden = false;
    $('w-error').textContent = body.error;
    if (fieldInput) $(fieldInput).setAttribute('aria-invalid', 'true');
    if (typeof body.position === 'number' && typeof body.text === 'string') {
      const chars = Array.from(body.text);
      const at = Math.min(body.position, chars.length);
      $('w-query-at').hidden = false;
      $('w-query-at').textContent = `${body.text}\n${' '.repeat(at)}^`;
      const input = $(fieldInput || 'w-query');
      const raw = input.value;
      const lead = raw.length - raw.trimStart().length;
      const offset = lead + chars.slice(0, at).join('').length;
      input.focus();
      try { input.setSelectionRange(offset, Math.min(raw.length, offset + 1)); } catch (_) { /* type=url */ }
    }
  }

  let checkTimer = null;
  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(async () => {
      const body = watchBody();
      if (!body.name.trim() && !body.query.trim()) { $('w-check').textContent = ''; return; }
      try {
        await api('/api/watches/check', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                         body: JSON.stringify(body)});
        clearWatchError();
        $('w-check').textContent = 'query OK'; $('w-check').className = 'check-result ok';
      } catch (err) {
        $('w-check').textContent = ''; $('w-check').className = 'check-result';
        if (err.body && err.body.error) { clearWatchError(); showWatchError(err.body); }
      }
    }, 400);
  }

  function token() {
    return $('w-token').value.trim();
  }

  function writeHeaders() {
    return {'Content-Type': 'application/json', Authorization: `Bearer ${token()}`};
  }

  async function saveWatch(event) {
    event.preventDefault();
    clearWatchError();
    const body = watchBody();
    if ($('w-backfill').checked) body.backfill = true;
    const button = $('w-save');
    button.disabled = true;
    try {
      const saved = await api('/api/watches', {method: 'POST', headers: writeHeaders(),
                                               body: JSON.stringify(body)});
      $('w-check').textContent = `saved ${saved.name}` + (saved.backfill ? ' (backfill started)' : '');
      $('w-check').className = 'check-result ok';
      stopEdit();
      await loadWatches();
    } catch (err) {
      showWatchError(err.body && err.body.error ? err.body : {error: err.message});
    } finally {
      button.disabled = false;
    }
  }

  // Watch id -> when its pending "Confirm remove" lapses: kept apart from the buttons, which
  // the table redraws whenever the watches change, so a redraw does not undo a first click.
  const confirming = new Map();

  async function removeWatch(w, button) {
    if ((confirming.get(w.id) || 0) <= Date.now()) {  // two clicks: no native dialog
      confirming.set(w.id, Date.now() + 4000);
      button.textContent = 'Confirm remove';
      setTimeout(() => {
        if ((confirming.get(w.id) || 0) <= Date.now()) { confirming.delete(w.id); renderWatches(); }
      }, 4100);
      return;
    }
    confirming.delete(w.id);
    try {
      await api(`/api/watches/${encodeURIComponent(w.id)}`, {method: 'DELETE', headers: writeHeaders()});
      await loadWatches();
    } catch (err) {
      showWatchError({error: err.message});
    }
  }

  function startEdit(w) {
    state.editing = w.id;
    $('w-name').value = w.name; $('w-name').readOnly = true;
    $('w-query').value = w.query;
    $('w-webhook').value = w.webhook_url || '';
    $('w-rate').value = w.rate_limit === null ? '' : String(w.rate_limit);
    $('w-backfill').checked = false;
    $('watch-form-title').textContent = `Edit watch “${w.name}”`;
    $('w-save').textContent = 'Save changes';
    $('w-cancel').hidden = false;
    clearWatchError();
    $('w-query').focus();
  }

  function stopEdit() {
    state.editing = null;
    $('watch-form').reset();
    $('w-token').value = sessionStorage.getItem(TOKEN_KEY) || '';
    $('w-name').readOnly = false;
    $('watch-form-title').textContent = 'Add a watch';
    $('w-save').textContent = 'Add watch';
    $('w-cancel').hidden = true;
  }

  // ------------------------------------------------------------------- the views ---
  function showView(name) {
    const alerts = name === 'alerts';
    $('alerts-view').hidden = !alerts; $('watches-view').hidden = alerts;
    $('tab-alerts').setAttribute('aria-pressed', String(alerts));
    $('tab-watches').setAttribute('aria-pressed', String(!alerts));
    if (!alerts) loadWatches();
  }

  function start() {
    $('w-token').value = sessionStorage.getItem(TOKEN_KEY) || '';
    $('w-token').addEventListener('input', () => sessionStorage.setItem(TOKEN_KEY, token()));
    $('tab-alerts').addEventListener('click', () => showView('alerts'));
    $('tab-watches').addEventListener('click', () => showView('watches'));
    $('filters').addEventListener('submit', (e) => { e.preventDefault(); loadAlerts(); });
    for (const id of ['f-watch', 'f-kind', 'f-since']) $(id).addEventListener('change', loadAlerts);
    let searchTimer = null;
    $('f-q').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(loadAlerts, 250); });
    $('more').addEventListener('click', loadOlder);
    $('story-close').addEventListener('click', closeStory);
    $('alerts').addEventListener('click', (e) => {
      if (e.target.closest('a')) return;  // the article link opens the article
      const node = e.target.closest('li.card');
      if (node) openStory(node.dataset.storyId, node.dataset.alertId, {});
    });
    $('alerts').addEventListener('keydown', (e) => {
      const node = e.target.closest('li.card');
      if (node && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); openStory(node.dataset.storyId, node.dataset.alertId, {}); }
    });
    $('watch-form').addEventListener('submit', saveWatch);
    $('w-cancel').addEventListener('click', () => { stopEdit(); clearWatchError(); });
    for (const id of ['w-name', 'w-query', 'w-webhook', 'w-rate']) $(id).addEventListener('input', scheduleCheck);
    $('w-filter').addEventListener('input', renderWatches);
    setInterval(() => {
      for (const node of document.querySelectorAll('time[data-ts]')) {
        const ts = Number(node.dataset.ts);
        if (ts) node.textContent = ago(ts);
      }
    }, 15000);
    setInterval(loadStatus, 30000);
    loadAlerts().then(connect);
    loadWatches();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
