/**
 * The execution log: the same story Durable Functions tells, one pino line per step, each with
 * the instance id and episode. Lines come only from new events and new actions, so replays never
 * repeat them.
 */
import type { Logger } from 'pino';

export const LogMessages = {
  triggered: 'Orchestration function triggered',
  executionStarted: 'Execution started',
  started: 'Orchestration function started',
  taskScheduled: (name: string) => `Activity function ${name} task scheduled`,
  timerCreated: 'Timer created',
  subOrchestrationScheduled: (name: string) => `Sub-orchestration ${name} scheduled`,
  continuedAsNew: 'Execution continued as new',
  awaiting: 'Orchestration function completed',
  taskCompleted: (name: string) => `Activity function ${name} task completed`,
  taskFailed: (name: string) => `Activity function ${name} task failed`,
  executionCompleted: 'Execution completed',
  executionFailed: 'Execution failed',
  executionTerminated: 'Execution terminated',
} as const;

export type { Logger };
