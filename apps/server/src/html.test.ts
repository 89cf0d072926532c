/** The page helpers on hand-built histories: escaping, execution log wording, timeline bars. */
import type { HistoryEvent } from '@durabull/core';
import { describe, expect, it } from 'vitest';
import { esc, executionLog, timelineBars, timelineSvg, workersPage } from './html.js';

const failure = { errorName: 'TypeError', message: 'boom <b>' };
const history: HistoryEvent[] = [
  { type: 'OrchestratorStarted', timestamp: 1010 },
  { type: 'ExecutionStarted', name: 'O', instanceId: 'i', executionId: 'x', input: 1, timestamp: 1000 },
  { type: 'TaskScheduled', taskId: 0, name: 'F1', input: 'a', timestamp: 1010 },
  { type: 'TimerCreated', taskId: 1, fireAt: 5000, timestamp: 1010 },
  { type: 'SubOrchestrationInstanceCreated', taskId: 2, name: 'Child', instanceId: 'c', timestamp: 1010 },
  { type: 'OrchestratorCompleted', timestamp: 1011 },
  { type: 'TaskFailed', taskScheduledId: 0, failure, timestamp: 1200 },
  { type: 'TimerFired', timerId: 1, fireAt: 5000, timestamp: 5000 },
  { type: 'EventRaised', name: 'Go', input: { ok: true }, timestamp: 5100 },
];

describe('page helpers', () => {
  it('escapes the five HTML-special characters', () => {
    expect(esc(`<a href="x" title='y'>&</a>`)).toBe('&#60;a href=&#34;x&#34; title=&#39;y&#39;&#62;&#38;&#60;/a&#62;');
  });

  it('tells the history in the Durable Functions wording', () => {
    expect(executionLog(history).map((l) => l.message)).toEqual([
      'Orchestration function started',
      'Execution started',
      'Activity function F1 task scheduled',
      'Timer created',
      'Sub-orchestration Child scheduled',
      'Orchestration function completed',
      'Activity function F1 task failed',
      'Timer fired',
      'External event Go received',
    ]);
    expect(executionLog(history)[6]).toMatchObject({ failed: true, details: 'task 0: TypeError: boom <b>' });
  });

  it('draws one bar per task, from scheduled to result; open ones run to now', () => {
    const bars = timelineBars(history);
    expect(bars).toEqual([
      { taskId: 0, kind: 'activity', name: 'F1', start: 1010, end: 1200, outcome: 'failed' },
      { taskId: 1, kind: 'timer', name: 'Timer', start: 1010, end: 5000, outcome: 'completed' },
      { taskId: 2, kind: 'sub-orchestration', name: 'Child', start: 1010, outcome: 'running' },
    ]);
    const svg = timelineSvg(bars, 1000, 6000);
    expect(svg.match(/<g class="bar"/g)).toHaveLength(3);
    expect(svg).toContain('(running)');
    const many = Array.from({ length: 600 }, (_, i) => ({ taskId: i, kind: 'activity' as const, name: 'F', start: 1000 + i, end: 2000, outcome: 'completed' as const }));
    const capped = timelineSvg(many, 1000, 2000);
    expect(capped.match(/<g class="bar"/g)).toHaveLength(500);
    expect(capped).toContain('100 more tasks not shown.');
  });

  it('renders the Workers page with every value of an entry escaped', () => {
    const evil = '<script>alert("x")</script>';
    const html = workersPage({ nonce: 'n' }, `hub${evil}`, [
      {
        id: `w-${evil}`,
        host: evil,
        pid: 42,
        version: evil,
        kinds: ['orchestrator', 'activity'],
        orchestratorNames: [evil],
        activityNames: Array.from({ length: 12 }, (_, i) => `A${i}`),
        startedAt: new Date(1000),
        lastHeartbeatAt: new Date(9000),
        expiresAt: new Date(24_000),
        heartbeatIntervalMs: 5000,
        heartbeatExpiryMs: 15_000,
        jobsRunning: 3,
        episodesDone: 7,
        activitiesDone: 11,
      },
    ], 10_000);
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;');
    expect(html).toContain('1.00 s ago');
    expect(html).toContain('<details><summary>12 names</summary>');
    expect(html).toMatch(/<td>3<\/td><td>7<\/td><td>11<\/td>/);
    expect(workersPage({ nonce: 'n' }, 'h', [], 0)).toContain('No live worker');
  });
});

