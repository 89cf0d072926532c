/**
 * Server-rendered HTML for the orchestration view: plain template strings, no build step. Every
 * value that comes from a user, an instance or its history goes through `esc` (or `json`, which
 * escapes too) before it lands in the page.
 */
import type { OrchestrationStatus, Schedule, WorkerInfo } from '@durabull/client';
import { type HistoryEvent, type RuntimeStatus, isTerminalStatus } from '@durabull/core';
import { type HubGauges, type HubStatsSeries, type LatencyKind, QUEUE_NAMES, QUEUE_STATES, STATUSES as STATUS_ORDER } from '@durabull/redis';

/** Escapes text for HTML element content and quoted attribute values. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON.stringify's replacer for payloads: BigInt (which msgpack round-trips) becomes a string. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** A payload as indented JSON, escaped for HTML; `max` cuts long values. */
function json(value: unknown, max = 20_000): string {
  if (value === undefined) return '<span class="muted">(none)</span>';
  let text = JSON.stringify(value, jsonReplacer, 2) ?? String(value);
  if (text.length > max) text = `${text.slice(0, max)}\n... (${text.length - max} more characters)`;
  return esc(text);
}

/** A short one-line rendering of a payload for the execution log. */
function brief(value: unknown, max = 160): string {
  if (value === undefined) return '';
  const text = JSON.stringify(value, jsonReplacer) ?? String(value);
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

const time = (d: Date | number | undefined): string => (d === undefined ? '' : new Date(d).toISOString().replace('T', ' ').replace('Z', ''));

/** What a page needs besides its content: a CSP nonce. (Never the API token: no page carries it.) */
export interface PageContext {
  nonce: string;
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header strong{font-size:16px}
main{padding:16px 24px;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#eef1f5;font-weight:600}
pre{background:#fff;border:1px solid #e3e6eb;padding:8px;overflow:auto;max-height:320px;margin:4px 0}
.muted{color:#7a8394}.error{color:#b3261e}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e3e6eb}
.s-Running,.s-Pending{background:#dbe8ff;color:#1848a0}.s-Completed{background:#d7f2df;color:#17622f}
.s-Failed{background:#fadbd8;color:#8c1d18}.s-Terminated{background:#ececec;color:#444}
.s-Suspended{background:#fff0c2;color:#6b5200}.s-ContinuedAsNew{background:#e8defa;color:#4b2a8a}
form{display:inline-flex;gap:6px;align-items:center;margin:4px 12px 4px 0}
fieldset{border:1px solid #e3e6eb;background:#fff;margin:8px 0;padding:8px 12px}
input,select,textarea,button{font:inherit}button{cursor:pointer}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
#msg{min-height:1.4em}
svg text{font:12px system-ui,sans-serif}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px}
.chart{background:#fff;border:1px solid #e3e6eb;padding:8px 10px}.chart h3{margin:0 0 4px;font-size:14px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:#4a5262}
`;

/** The page frame: header with navigation, a CSP nonce for style and script. */
export function layout(ctx: PageContext, title: string, body: string, script = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} - durabull</title><link rel="icon" href="data:,">
<style nonce="${ctx.nonce}">${STYLE}</style></head>
<body><header><strong>durabull</strong><a href="/">Orchestrations</a><a href="/ui/overview">Overview</a><a href="/ui/schedules">Schedules</a><a href="/ui/entities">Entities</a><a href="/ui/workers">Workers</a><a href="/queues">Queues (Bull Board)</a></header>
<main>${body}</main>
${script ? `<script nonce="${ctx.nonce}">${script}</script>` : ''}
</body></html>`;
}

const STATUSES: RuntimeStatus[] = ['Pending', 'Running', 'Completed', 'Failed', 'Terminated', 'ContinuedAsNew', 'Suspended'];

const badge = (s: string): string => `<span class="status s-${esc(s)}">${esc(s)}</span>`;

/** The filters of the instance list, as the page's query string carries them. */
export interface ListFilters {
  status?: RuntimeStatus;
  name?: string;
  scheduleId?: string;
  pageSize: number;
  cursor?: string;
}

function listHref(f: ListFilters, cursor?: string): string {
  const q = new URLSearchParams();
  if (f.status) q.set('status', f.status);
  if (f.name) q.set('name', f.name);
  if (f.scheduleId) q.set('scheduleId', f.scheduleId);
  if (f.pageSize !== 25) q.set('pageSize', String(f.pageSize));
  if (cursor) q.set('cursor', cursor);
  const s = q.toString();
  return s ? `/?${s}` : '/';
}

/** The instance list: filters, a table, and links to the first and next page. */
export function listPage(ctx: PageContext, f: ListFilters, instances: OrchestrationStatus[], nextCursor: string | undefined): string {
  const options = ['', ...STATUSES]
    .map((s) => `<option value="${s}"${s === (f.status ?? '') ? ' selected' : ''}>${s || 'any status'}</option>`)
    .join('');
  const rows = instances
    .map(
      (s) => `<tr>
<td><a href="/ui/instances/${esc(encodeURIComponent(s.instanceId))}">${esc(s.instanceId)}</a></td>
<td>${esc(s.name)}</td><td>${badge(s.runtimeStatus)}</td>
<td>${esc(time(s.createdAt))}</td><td>${esc(time(s.lastUpdatedAt))}</td>
<td>${s.customStatus === undefined ? '' : esc(brief(s.customStatus, 80))}</td></tr>`,
    )
    .join('\n');
  const body = `<h1>Orchestrations</h1>
<form method="get" action="/">
<label>Status <select name="status">${options}</select></label>
<label>Name <input name="name" value="${esc(f.name ?? '')}" placeholder="orchestrator name" size="24"></label>
<label>Schedule <input name="scheduleId" value="${esc(f.scheduleId ?? '')}" placeholder="schedule id" size="16"></label>
<label>Page size <input name="pageSize" type="number" min="1" max="1000" value="${f.pageSize}" size="5"></label>
<button type="submit">Filter</button></form>
<table><thead><tr><th>Instance</th><th>Name</th><th>Status</th><th>Created (UTC)</th><th>Last updated (UTC)</th><th>Custom status</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6" class="muted">No instances.</td></tr>'}</tbody></table>
<p>${f.cursor ? `<a href="${esc(listHref(f))}">First page</a> ` : ''}${nextCursor ? `<a id="next" href="${esc(listHref(f, nextCursor))}">Next page</a>` : ''}</p>`;
  return layout(ctx, 'Orchestrations', body);
}

/** One line of the execution log: the Durable Functions wording for a history event. */
export interface LogLine {
  timestamp: number;
  message: string;
  details: string;
  failed?: boolean;
}

/** The history as an execution log, in the words Durable Functions' logs use. */
export function executionLog(history: HistoryEvent[]): LogLine[] {
  const names = new Map<number, string>();
  const lines: LogLine[] = [];
  const add = (e: HistoryEvent, message: string, details = '', failed = false) => lines.push({ timestamp: e.timestamp, message, details, failed });
  for (const e of history) {
    switch (e.type) {
      case 'ExecutionStarted':
        add(e, 'Execution started', `input ${brief(e.input)}`);
        break;
      case 'OrchestratorStarted':
        add(e, 'Orchestration function started');
        break;
      case 'OrchestratorCompleted':
        add(e, 'Orchestration function completed');
        break;
      case 'TaskScheduled':
        names.set(e.taskId, e.name);
        add(e, `Activity function ${e.name} task scheduled`, `task ${e.taskId}, input ${brief(e.input)}`);
        break;
      case 'TaskCompleted':
        add(e, `Activity function ${names.get(e.taskScheduledId) ?? '?'} task completed`, `task ${e.taskScheduledId}, result ${brief(e.result)}`);
        break;
      case 'TaskFailed':
        add(e, `Activity function ${names.get(e.taskScheduledId) ?? '?'} task failed`, `task ${e.taskScheduledId}: ${e.failure.errorName}: ${e.failure.message}`, true);
        break;
      case 'TimerCreated':
        names.set(e.taskId, 'Timer');
        add(e, 'Timer created', `task ${e.taskId}, fires at ${time(e.fireAt)}`);
        break;
      case 'TimerFired':
        add(e, 'Timer fired', `task ${e.timerId}`);
        break;
      case 'EventRaised':
        add(e, `External event ${e.name} received`, `data ${brief(e.input)}`);
        break;
      case 'SubOrchestrationInstanceCreated':
        names.set(e.taskId, e.name);
        add(e, `Sub-orchestration ${e.name} scheduled`, `task ${e.taskId}, instance ${e.instanceId}`);
        break;
      case 'SubOrchestrationInstanceCompleted':
        add(e, `Sub-orchestration ${names.get(e.taskScheduledId) ?? '?'} completed`, `task ${e.taskScheduledId}, result ${brief(e.result)}`);
        break;
      case 'SubOrchestrationInstanceFailed':
        add(e, `Sub-orchestration ${names.get(e.taskScheduledId) ?? '?'} failed`, `task ${e.taskScheduledId}: ${e.failure.errorName}: ${e.failure.message}`, true);
        break;
      case 'ExecutionCompleted':
        if (e.status === 'Completed') add(e, 'Execution completed', `output ${brief(e.result)}`);
        else if (e.status === 'Failed') add(e, 'Execution failed', e.failure ? `${e.failure.errorName}: ${e.failure.message}` : '', true);
        else add(e, 'Execution continued as new', `next input ${brief(e.result)}`);
        break;
      case 'ExecutionTerminated':
        add(e, 'Execution terminated', `reason ${brief(e.reason)}`);
        break;
      case 'ExecutionSuspended':
        add(e, 'Execution suspended', `reason ${brief(e.reason)}`);
        break;
      case 'ExecutionResumed':
        add(e, 'Execution resumed', `reason ${brief(e.reason)}`);
        break;
      case 'PatchApplied':
        add(e, `Patch ${e.patchId} applied`);
        break;
    }
  }
  return lines;
}

/** A bar of the timeline: one activity, timer or sub-orchestration task, from scheduled to result. */
export interface TimelineBar {
  taskId: number;
  kind: 'activity' | 'timer' | 'sub-orchestration';
  name: string;
  start: number;
  end?: number;
  outcome: 'completed' | 'failed' | 'running';
}

/** The tasks of a history, each with when it was scheduled and when its result arrived. */
export function timelineBars(history: HistoryEvent[]): TimelineBar[] {
  const bars = new Map<number, TimelineBar>();
  const finish = (id: number, at: number, outcome: TimelineBar['outcome']) => {
    const bar = bars.get(id);
    if (bar) Object.assign(bar, { end: at, outcome });
  };
  for (const e of history) {
    if (e.type === 'TaskScheduled') bars.set(e.taskId, { taskId: e.taskId, kind: 'activity', name: e.name, start: e.timestamp, outcome: 'running' });
    else if (e.type === 'TimerCreated') bars.set(e.taskId, { taskId: e.taskId, kind: 'timer', name: 'Timer', start: e.timestamp, outcome: 'running' });
    else if (e.type === 'SubOrchestrationInstanceCreated') bars.set(e.taskId, { taskId: e.taskId, kind: 'sub-orchestration', name: e.name, start: e.timestamp, outcome: 'running' });
    else if (e.type === 'TaskCompleted' || e.type === 'SubOrchestrationInstanceCompleted') finish(e.taskScheduledId, e.timestamp, 'completed');
    else if (e.type === 'TaskFailed' || e.type === 'SubOrchestrationInstanceFailed') finish(e.taskScheduledId, e.timestamp, 'failed');
    else if (e.type === 'TimerFired') finish(e.timerId, e.timestamp, 'completed');
  }
  return [...bars.values()];
}

const FILL = { completed: '#3b8c5a', failed: '#c2413a', running: '#5b8def' } as const;

/** Rows the timeline draws at most (a fan-out of thousands would make a page nobody can read). */
const MAX_BARS = 500;

/**
 * The timeline as an SVG: one row per task (the first 500), a bar from TaskScheduled to its
 * result; open tasks run to `now`.
 */
export function timelineSvg(allBars: TimelineBar[], startedAt: number, now: number): string {
  if (allBars.length === 0) return '<p class="muted">No activities yet.</p>';
  const bars = allBars.slice(0, MAX_BARS);
  const end = bars.reduce((max, b) => Math.max(max, b.end ?? b.start), now);
  const span = Math.max(end - startedAt, 1);
  const labelW = 240;
  const plotW = 640;
  const rowH = 24;
  const top = 22;
  const x = (t: number) => labelW + ((t - startedAt) / span) * plotW;
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const tx = labelW + f * plotW;
      return `<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${top + bars.length * rowH}" stroke="#e3e6eb"/><text x="${tx}" y="${top - 8}" text-anchor="middle" fill="#7a8394">${esc(duration(f * span))}</text>`;
    })
    .join('');
  const rows = bars
    .map((b, i) => {
      const y = top + i * rowH;
      const x0 = x(b.start);
      const w = Math.max(x(b.end ?? now) - x0, 2);
      const took = (b.end ?? now) - b.start;
      const label = `${b.kind === 'activity' ? '' : `${b.kind} `}${b.name} #${b.taskId}`;
      return `<g class="bar" data-task-id="${b.taskId}" data-name="${esc(b.name)}" data-kind="${b.kind}" data-outcome="${b.outcome}">
<title>${esc(`${label}: ${duration(took)}, ${b.outcome}`)}</title>
<text x="${labelW - 8}" y="${y + 16}" text-anchor="end">${esc(label)}</text>
<rect x="${x0.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" rx="3" fill="${FILL[b.outcome]}"/>
<text x="${Math.min(x0 + w + 4, labelW + plotW + 4).toFixed(1)}" y="${y + 16}" fill="#7a8394">${esc(duration(took))}${b.outcome === 'running' ? ' (running)' : ''}</text></g>`;
    })
    .join('\n');
  const height = top + bars.length * rowH + 8;
  const more = allBars.length > bars.length ? `<p class="muted">${allBars.length - bars.length} more tasks not shown.</p>` : '';
  return `<svg id="timeline" role="img" aria-label="Activity timeline" width="${labelW + plotW + 120}" height="${height}" viewBox="0 0 ${labelW + plotW + 120} ${height}">${ticks}${rows}</svg>${more}`;
}

function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

/** The page of one instance: overview, payloads, timeline, execution log and the management forms. */
export function instancePage(ctx: PageContext, s: OrchestrationStatus, now: number): string {
  const history = s.history ?? [];
  // History opens with OrchestratorStarted, then ExecutionStarted (stamped earlier, at the start call).
  const startedAt = history.reduce((min, e) => Math.min(min, e.timestamp), s.createdAt.getTime());
  const finished = isTerminalStatus(s.runtimeStatus);
  const log = executionLog(history)
    .map(
      (l) => `<tr${l.failed ? ' class="error"' : ''}><td>${esc(time(l.timestamp))}</td><td class="muted">+${esc(duration(l.timestamp - startedAt))}</td><td>${esc(l.message)}</td><td>${esc(l.details)}</td></tr>`,
    )
    .join('\n');
  const failure = s.failure
    ? `<h2>Failure</h2><p class="error">${esc(s.failure.errorName)}: ${esc(s.failure.message)}</p>${s.failure.stack ? `<details><summary>Stack</summary><pre>${esc(s.failure.stack)}</pre></details>` : ''}`
    : '';
  const parent = s.parent ? `<a href="/ui/instances/${esc(encodeURIComponent(s.parent.instanceId))}">${esc(s.parent.instanceId)}</a>` : '';
  const body = `<h1>${esc(s.name)} <small class="muted">${esc(s.instanceId)}</small> ${badge(s.runtimeStatus)}</h1>
<table><tbody>
<tr><th>Instance id</th><td>${esc(s.instanceId)}</td><th>Execution</th><td>${esc(s.executionId)}</td></tr>
<tr><th>Created (UTC)</th><td>${esc(time(s.createdAt))}</td><th>Last updated (UTC)</th><td>${esc(time(s.lastUpdatedAt))}</td></tr>
<tr><th>Completed (UTC)</th><td>${esc(time(s.completedAt))}</td><th>Episodes</th><td>${s.episodes}</td></tr>
<tr><th>Custom status</th><td id="custom-status">${s.customStatus === undefined ? '' : esc(brief(s.customStatus))}</td><th>Parent</th><td>${parent}</td></tr>
${
  s.schedule || s.scheduledStartTime
    ? `<tr><th>Schedule</th><td id="schedule">${s.schedule ? `<a href="/?scheduleId=${esc(encodeURIComponent(s.schedule.scheduleId))}">${esc(s.schedule.scheduleId)}</a>, tick ${esc(time(s.schedule.tick))}` : ''}</td><th>Scheduled start (UTC)</th><td>${esc(time(s.scheduledStartTime))}</td></tr>`
    : ''
}
</tbody></table>
<div class="grid"><div><h2>Input</h2><pre id="input">${json(s.input)}</pre></div>
<div><h2>Output</h2><pre id="output">${json(s.output)}</pre></div></div>
${failure}
<h2>Actions</h2>
<p id="msg" role="status"></p>
<fieldset>
<form data-action="raise"><label>Event <input name="event" required placeholder="event name" size="18"></label>
<label>Data (JSON) <textarea name="data" rows="1" cols="28" placeholder='{"approved": true}'></textarea></label><button type="submit">Raise event</button></form>
<form data-action="terminate"><label>Reason <input name="reason" size="16"></label><button type="submit">Terminate</button></form>
<form data-action="suspend"><button type="submit">Suspend</button></form>
<form data-action="resume"><button type="submit">Resume</button></form>
<form data-action="restart"><button type="submit">Restart</button></form>
<form data-action="purge"><button type="submit">Purge</button></form>
</fieldset>
<h2>Timeline</h2>
${timelineSvg(timelineBars(history), startedAt, finished && s.completedAt ? s.completedAt.getTime() : now)}
<h2>Execution log</h2>
<table id="log"><thead><tr><th>Time (UTC)</th><th>Since start</th><th>Event</th><th>Details</th></tr></thead><tbody>${log}</tbody></table>
<div id="instance" data-id="${esc(s.instanceId)}" data-finished="${finished}" data-stamp="${esc(stamp(s))}" hidden></div>`;
  return layout(ctx, `${s.instanceId} (${s.name})`, body, INSTANCE_SCRIPT);
}

/** What the page's poller compares to notice that the instance moved on. */
function stamp(s: { runtimeStatus: string; lastUpdatedAt: Date | string; episodes: number }): string {
  return `${s.runtimeStatus}|${new Date(s.lastUpdatedAt).toISOString()}|${s.episodes}`;
}

/** A page for an instance that does not exist. */
export function notFoundPage(ctx: PageContext, instanceId: string): string {
  return layout(ctx, 'Not found', `<h1>Not found</h1><p>No instance <code>${esc(instanceId)}</code> exists in this task hub.</p><p><a href="/">All orchestrations</a></p>`);
}

/**
 * The instance page's script: the forms call the management API with fetch (same origin: the
 * browser sends the HttpOnly token cookie, and the script adds the X-Durabull-Csrf header that
 * the server asks of cookie-authenticated API calls), and while the instance has not finished the
 * page polls its status and reloads when it changes (not while someone is typing in a form).
 */
/**
 * The pages' scripts call the HTTP API with this: the HttpOnly cookie (same origin) and the CSRF
 * header the API requires with it; a JSON body; an error with the API's message.
 */
const API_CALL = `  async function call(method, path, body) {
    const headers = { 'x-durabull-csrf': '1' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    const data = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new Error((data && data.message) || res.statusText);
    return data;
  }`;

const INSTANCE_SCRIPT = `
(() => {
  const el = document.getElementById('instance');
  const id = el.dataset.id;
  const base = '/instances/' + encodeURIComponent(id);
  const msg = document.getElementById('msg');
${API_CALL}
  const actions = {
    raise: (f) => {
      const raw = f.data.value.trim();
      let data;
      try { data = raw ? JSON.parse(raw) : undefined; } catch { throw new Error('Data is not valid JSON'); }
      return call('POST', base + '/raiseEvent/' + encodeURIComponent(f.event.value.trim()), data);
    },
    terminate: (f) => call('POST', base + '/terminate', { reason: f.reason.value || undefined }),
    suspend: () => call('POST', base + '/suspend', {}),
    resume: () => call('POST', base + '/resume', {}),
    restart: async () => { const r = await call('POST', base + '/restart'); location.href = '/ui/instances/' + encodeURIComponent(r.id); return 'navigate'; },
    purge: async () => { if (!confirm('Purge instance ' + id + '?')) return 'navigate'; await call('DELETE', base); location.href = '/'; return 'navigate'; },
  };
  for (const form of document.querySelectorAll('form[data-action]')) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const action = form.dataset.action;
      msg.className = ''; msg.textContent = action + '...';
      try {
        const r = await actions[action](form.elements);
        if (r !== 'navigate') { msg.textContent = action + ': done'; location.reload(); }
      } catch (err) { msg.className = 'error'; msg.textContent = action + ' failed: ' + err.message; }
    });
  }
  if (el.dataset.finished === 'true') return;
  const typing = () => ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement?.tagName);
  setInterval(async () => {
    try {
      const s = await call('GET', base + '?showInput=false');
      const now = s.runtimeStatus + '|' + s.lastUpdatedAt + '|' + s.episodes;
      if (now !== el.dataset.stamp && !typing()) location.reload();
    } catch {}
  }, 1000);
})();
`;

/** Names as a comma-separated list; a long list folds into a `<details>`. */
function nameList(names: readonly string[]): string {
  if (names.length === 0) return '<span class="muted">(none)</span>';
  const text = esc(names.join(', '));
  return names.length <= 8 ? text : `<details><summary>${names.length} names</summary>${text}</details>`;
}

/** The Workers page: the hub's live workers from its registry, what they run and their stats. */
export function workersPage(ctx: PageContext, hub: string, workers: readonly WorkerInfo[], now: number): string {
  const rows = workers
    .map(
      (w) => `<tr data-worker-id="${esc(w.id)}">
<td>${esc(w.id)}</td><td>${esc(w.host)} / ${esc(w.pid)}</td><td>${esc(w.version)}</td><td>${esc(w.kinds.join(', '))}</td>
<td>${nameList(w.orchestratorNames)}</td><td>${nameList(w.activityNames)}</td>
<td>${esc(time(w.startedAt))}</td><td>${esc(duration(Math.max(0, now - w.lastHeartbeatAt.getTime())))} ago</td>
<td>${esc(w.jobsRunning)}</td><td>${esc(w.episodesDone)}</td><td>${esc(w.activitiesDone)}</td></tr>`,
    )
    .join('\n');
  const body = `<h1>Workers <small class="muted">task hub ${esc(hub)}</small></h1>
<p class="muted">Live workers, from the hub's worker registry: each renews its entry at every heartbeat; one that stops doing so drops out when its entry expires. Stats as of the last heartbeat.</p>
<table id="workers"><thead><tr><th>Worker</th><th>Host / pid</th><th>Version</th><th>Kinds</th><th>Orchestrators</th><th>Activities</th><th>Started (UTC)</th><th>Last heartbeat</th><th>Jobs running</th><th>Episodes done</th><th>Activities done</th></tr></thead>
<tbody>${rows || '<tr><td colspan="11" class="muted">No live worker: starts are accepted and wait, Pending, for one.</td></tr>'}</tbody></table>`;
  return layout(ctx, 'Workers', body);
}

/** One line of a chart: a value per minute (null: nothing that minute, the line breaks). */
export interface ChartSeries {
  name: string;
  values: (number | null)[];
}

const PALETTE = ['#3b6fd8', '#3b8c5a', '#c2413a', '#d08a1c', '#7b4fc4', '#2a9cab', '#8a8f99', '#c24f8f'];

/** A round number at or above `v` (1, 2 or 5 times a power of ten). */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function short(v: number): string {
  if (v === 0) return '0';
  if (v >= 1_000_000) return `${+(v / 1_000_000).toFixed(1)}M`;
  if (v >= 1000) return `${+(v / 1000).toFixed(1)}k`;
  if (v >= 10) return String(Math.round(v));
  return String(+v.toFixed(v >= 1 ? 1 : 2));
}

/**
 * A line chart as an SVG, drawn here (no script): one polyline per series over the minutes, a
 * dot per value (so a single minute shows), the y axis from 0 to a round maximum, and a legend
 * with each series' last value. `data-values` carries the numbers for tools and tests.
 */
export function lineChart(id: string, title: string, unit: string, minutes: readonly number[], series: readonly ChartSeries[], now: number): string {
  const W = 560;
  const H = 190;
  const left = 48;
  const right = 10;
  const top = 10;
  const bottom = 22;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const n = minutes.length;
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const max = niceMax(Math.max(0, ...all));
  const x = (i: number) => left + (n <= 1 ? plotW : (i / (n - 1)) * plotW);
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const grid = [0, 0.5, 1]
    .map((f) => `<line x1="${left}" y1="${y(max * f).toFixed(1)}" x2="${W - right}" y2="${y(max * f).toFixed(1)}" stroke="#e3e6eb"/><text x="${left - 6}" y="${(y(max * f) + 4).toFixed(1)}" text-anchor="end" fill="#7a8394">${esc(short(max * f))}</text>`)
    .join('');
  const ago = (i: number) => Math.round((now - minutes[i]!) / 60_000);
  const xLabels = [0, Math.floor((n - 1) / 2), n - 1]
    .filter((i, k, a) => i >= 0 && a.indexOf(i) === k)
    .map((i) => `<text x="${x(i).toFixed(1)}" y="${H - 6}" text-anchor="${i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle'}" fill="#7a8394">${ago(i) <= 0 ? 'now' : `-${ago(i)} min`}</text>`)
    .join('');
  const lines = series
    .map((s, k) => {
      const color = PALETTE[k % PALETTE.length]!;
      const segments: string[][] = [];
      let cur: string[] = [];
      const dots: string[] = [];
      s.values.forEach((v, i) => {
        if (v === null) {
          if (cur.length) segments.push(cur);
          cur = [];
          return;
        }
        const p = `${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        cur.push(p);
        dots.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${color}"><title>${esc(`${s.name}: ${short(v)} ${unit}, ${ago(i) <= 0 ? 'this minute' : `${ago(i)} min ago`}`)}</title></circle>`);
      });
      if (cur.length) segments.push(cur);
      const paths = segments.filter((g) => g.length > 1).map((g) => `<polyline points="${g.join(' ')}" fill="none" stroke="${color}" stroke-width="1.6"/>`).join('');
      return `<g class="series" data-series="${esc(s.name)}" data-values="${esc(JSON.stringify(s.values.map((v) => (v === null ? null : +v.toFixed(3)))))}">${paths}${dots.join('')}</g>`;
    })
    .join('');
  const legend = series
    .map((s, k) => {
      const last = [...s.values].reverse().find((v) => v !== null);
      // A swatch drawn in SVG: the pages' CSP allows no inline style attribute.
      return `<span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" rx="2" fill="${PALETTE[k % PALETTE.length]}"/></svg> ${esc(s.name)}${last === undefined ? '' : ` <b>${esc(short(last))}</b>`}</span>`;
    })
    .join('');
  return `<div class="chart" id="${esc(id)}"><h3>${esc(title)} <small class="muted">${esc(unit)}</small></h3>
<svg class="plot" role="img" aria-label="${esc(title)}" width="100%" viewBox="0 0 ${W} ${H}" preserveAspectRatio="xMidYMid meet">${grid}${xLabels}${lines}</svg>
<div class="legend">${legend}</div></div>`;
}

const LATENCY_TITLES: Record<LatencyKind, string> = {
  activity: 'Activity run time',
  scheduleToStart: 'Activity schedule to start',
  episode: 'Episode time',
  instance: 'Instance end to end',
};

/**
 * The overview: throughput, latency percentiles, queue depths and instances by status over the last
 * hour, from the per-minute counters the workers keep in Redis (no Prometheus needed); and the
 * hub's gauges as of now.
 */
export function overviewPage(ctx: PageContext, hub: string, stats: HubStatsSeries, g: HubGauges, now: number): string {
  const perSecond = (xs: number[]) => xs.map((v, i) => v / stats.seconds[i]!);
  const charts = [
    lineChart('chart-throughput', 'Throughput', 'per second', stats.minutes, [
      { name: 'episodes/s', values: perSecond(stats.counters.episodes) },
      { name: 'activities/s', values: perSecond(stats.counters.activities) },
      { name: 'failed activities/s', values: perSecond(stats.counters.activitiesFailed) },
      { name: 'instances completed/s', values: perSecond(stats.counters.instancesCompleted) },
    ], now),
    ...(['activity', 'scheduleToStart', 'episode', 'instance'] as const).map((kind) =>
      lineChart(`chart-latency-${kind}`, LATENCY_TITLES[kind], 'ms (p50, p95, p99)', stats.minutes, [
        { name: 'p50', values: stats.latency[kind].p50 },
        { name: 'p95', values: stats.latency[kind].p95 },
        { name: 'p99', values: stats.latency[kind].p99 },
      ], now),
    ),
    lineChart('chart-queues', 'Queue depths', 'jobs, sampled once a minute', stats.minutes, QUEUE_NAMES.flatMap((q) => QUEUE_STATES.map((st) => ({ name: `${q} ${st}`, values: stats.queues[q][st] }))), now),
    lineChart('chart-statuses', 'Instances by status', 'sampled once a minute', stats.minutes, STATUS_ORDER.map((st) => ({ name: st, values: stats.statuses[st] })), now),
  ].join('\n');
  const statusCells = STATUS_ORDER.map((st) => `<td data-status="${st}">${badge(st)} ${esc(g.statuses[st])}</td>`).join('');
  const queueRows = QUEUE_NAMES.map((q) => `<tr><th>${q}</th>${QUEUE_STATES.map((st) => `<td data-queue="${q}" data-state="${st}">${esc(g.queues[q][st])}</td>`).join('')}</tr>`).join('');
  const body = `<h1>Overview <small class="muted">task hub ${esc(hub)}</small></h1>
<p class="muted">The last hour, per minute, from the counters the workers keep in Redis (written every few seconds; queue depths and statuses sampled once a minute). For Prometheus, scrape <code>/metrics</code> here and on the workers.</p>
<h2>Now</h2>
<table id="now"><tbody><tr>${statusCells}</tr></tbody></table>
<table id="queues-now"><thead><tr><th>Queue</th>${QUEUE_STATES.map((s) => `<th>${s}</th>`).join('')}</tr></thead><tbody>${queueRows}</tbody></table>
<p>Outbox: <span id="outbox-size">${esc(g.outbox.size)}</span> entries, the oldest waiting <span id="outbox-age">${esc(duration(g.outbox.oldestAgeMs))}</span>. Redis round trip ${esc(g.roundTripMs.toFixed(1))} ms.</p>
<h2>Last hour</h2>
<div class="charts">${charts}</div>`;
  return layout(ctx, 'Overview', body);
}

/** When a schedule ticks, in words: `cron 0 3 * * * (Europe/Paris)`, `every 1.5 min`. */
function scheduleWhen(s: Schedule): string {
  if (s.cron !== undefined) return `cron ${s.cron}${s.timeZone ? ` (${s.timeZone})` : ' (UTC)'}`;
  return `every ${duration(s.intervalMs ?? 0)}`;
}

/**
 * The Schedules page: the hub's schedules with their spec, state and counters, buttons to pause,
 * resume, trigger and delete each, and a form to create one (the same API calls as the HTTP API).
 */
export function schedulesPage(ctx: PageContext, hub: string, schedules: readonly Schedule[], nextCursor: string | undefined, cursor: string | undefined, now: number): string {
  const rows = schedules
    .map((s) => {
      const last = s.lastInstanceId
        ? `<a href="/ui/instances/${esc(encodeURIComponent(s.lastInstanceId))}">${esc(time(s.lastTick))}</a>`
        : '<span class="muted">(none)</span>';
      const window = s.startAt || s.endAt ? `<br><span class="muted">${esc(s.startAt ? `from ${time(s.startAt)}` : '')} ${esc(s.endAt ? `until ${time(s.endAt)}` : '')}</span>` : '';
      return `<tr data-schedule-id="${esc(s.scheduleId)}">
<td><a href="/?scheduleId=${esc(encodeURIComponent(s.scheduleId))}">${esc(s.scheduleId)}</a></td>
<td>${esc(s.orchestrator)}</td><td>${esc(scheduleWhen(s))}${window}</td><td>${esc(s.overlap)}</td>
<td>${s.paused ? badge('Suspended').replace('>Suspended<', '>paused<') : badge('Running').replace('>Running<', '>active<')}</td>
<td>${s.nextRunAt ? `${esc(time(s.nextRunAt))} <span class="muted">(in ${esc(duration(Math.max(0, s.nextRunAt.getTime() - now)))})</span>` : '<span class="muted">(none)</span>'}</td>
<td>${last}${s.bufferedTick ? `<br><span class="muted">buffered: ${esc(time(s.bufferedTick))}</span>` : ''}</td>
<td>${esc(s.started)} / ${esc(s.skipped)}</td>
<td><form data-action="${s.paused ? 'resume' : 'pause'}" data-id="${esc(s.scheduleId)}"><button type="submit">${s.paused ? 'Resume' : 'Pause'}</button></form>
<form data-action="trigger" data-id="${esc(s.scheduleId)}"><button type="submit">Trigger now</button></form>
<form data-action="delete" data-id="${esc(s.scheduleId)}"><button type="submit">Delete</button></form></td></tr>`;
    })
    .join('\n');
  const body = `<h1>Schedules <small class="muted">task hub ${esc(hub)}</small></h1>
<p class="muted">Each tick starts one instance, named <code>&lt;schedule id&gt;@&lt;tick&gt;</code>; the schedule's id links to the instances it started.</p>
<p id="msg" role="status"></p>
<table id="schedules"><thead><tr><th>Schedule</th><th>Orchestrator</th><th>When</th><th>Overlap</th><th>State</th><th>Next run (UTC)</th><th>Last run (UTC)</th><th>Started / skipped</th><th>Actions</th></tr></thead>
<tbody>${rows || '<tr><td colspan="9" class="muted">No schedules.</td></tr>'}</tbody></table>
<p>${cursor ? '<a href="/ui/schedules">First page</a> ' : ''}${nextCursor ? `<a id="next" href="/ui/schedules?cursor=${esc(encodeURIComponent(nextCursor))}">Next page</a>` : ''}</p>
<h2>New schedule</h2>
<fieldset><form data-action="create">
<label>Id <input name="scheduleId" required size="16"></label>
<label>Orchestrator <input name="orchestrator" required size="16"></label>
<label>Cron <input name="cron" placeholder="0 3 * * *" size="12"></label>
<label>Time zone <input name="timeZone" placeholder="UTC" size="12"></label>
<label>or every (ms) <input name="intervalMs" type="number" min="1000" size="8"></label>
<label>Overlap <select name="overlap"><option value="skip">skip</option><option value="bufferOne">bufferOne</option><option value="allowAll">allowAll</option></select></label>
<label>Input (JSON) <textarea name="input" rows="1" cols="20"></textarea></label>
<button type="submit">Create</button></form></fieldset>`;
  return layout(ctx, 'Schedules', body, SCHEDULES_SCRIPT);
}

/** The Schedules page's script: its forms call the HTTP API (cookie and CSRF header, as the instance page does). */
const SCHEDULES_SCRIPT = `
(() => {
  const msg = document.getElementById('msg');
${API_CALL}
  const one = (f) => '/schedules/' + encodeURIComponent(f.dataset.id);
  const actions = {
    pause: (f) => call('POST', one(f) + '/pause', {}),
    resume: (f) => call('POST', one(f) + '/resume', {}),
    trigger: (f) => call('POST', one(f) + '/trigger', {}),
    delete: async (f) => { if (!confirm('Delete schedule ' + f.dataset.id + '? Its instances stay.')) return 'cancelled'; return call('DELETE', one(f)); },
    create: (f) => {
      const e = f.elements;
      const body = { scheduleId: e.scheduleId.value.trim(), orchestrator: e.orchestrator.value.trim(), overlap: e.overlap.value };
      if (e.cron.value.trim()) body.cron = e.cron.value.trim();
      if (e.timeZone.value.trim()) body.timeZone = e.timeZone.value.trim();
      if (e.intervalMs.value) body.intervalMs = Number(e.intervalMs.value);
      const raw = e.input.value.trim();
      if (raw) { try { body.input = JSON.parse(raw); } catch { throw new Error('Input is not valid JSON'); } }
      return call('POST', '/schedules', body);
    },
  };
  for (const form of document.querySelectorAll('form[data-action]')) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const action = form.dataset.action;
      msg.className = ''; msg.textContent = action + '...';
      try {
        const r = await actions[action](form);
        if (r === 'cancelled') { msg.textContent = ''; return; }
        msg.textContent = action + ': done'; location.reload();
      } catch (err) { msg.className = 'error'; msg.textContent = action + ' failed: ' + err.message; }
    });
  }
})();
`;

/** One entity as the Entities page shows it. */
export interface EntityRow {
  id: string;
  hasState: boolean;
  state?: unknown;
  pendingOperations: number;
  lockedBy?: string;
  operations: number;
  batches: number;
  lastModifiedAt?: Date;
}

/** The Entities page: each entity's state, operations waiting (in its inbox or parked) and lock holder. */
export function entitiesPage(ctx: PageContext, name: string | undefined, entities: readonly EntityRow[], nextCursor: string | undefined): string {
  const rows = entities
    .map(
      (e) => `<tr data-entity-id="${esc(e.id)}">
<td>${esc(e.id)}</td><td>${e.hasState ? `<code>${esc(brief(e.state))}</code>` : '<span class="muted">(no state)</span>'}</td>
<td>${esc(e.pendingOperations)}</td><td>${e.lockedBy ? `<a href="/ui/instances/${encodeURIComponent(e.lockedBy.split('|')[0]!)}">${esc(e.lockedBy.split('|')[0])}</a>` : '<span class="muted">-</span>'}</td>
<td>${esc(e.operations)}</td><td>${esc(e.batches)}</td><td>${e.lastModifiedAt ? esc(time(e.lastModifiedAt)) : ''}</td></tr>`,
    )
    .join('\n');
  const q = (cursor?: string) => `/ui/entities?${new URLSearchParams({ ...(name ? { name } : {}), ...(cursor ? { cursor } : {}) }).toString()}`;
  const body = `<h1>Entities${name ? ` <small class="muted">${esc(name)}</small>` : ''}</h1>
<form method="get" action="/ui/entities"><label>Name <input name="name" value="${esc(name ?? '')}"></label> <button>Filter</button></form>
<table id="entities"><thead><tr><th>Entity</th><th>State</th><th>Pending operations</th><th>Lock holder</th><th>Operations run</th><th>Batches</th><th>Last modified (UTC)</th></tr></thead>
<tbody>${rows || '<tr><td colspan="7" class="muted">No entity.</td></tr>'}</tbody></table>
${nextCursor ? `<p><a href="${esc(q(nextCursor))}">Next page</a></p>` : ''}`;
  return layout(ctx, 'Entities', body);
}
