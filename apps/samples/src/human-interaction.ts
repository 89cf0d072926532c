/**
 * Human interaction (async style): ask a person for an approval, then wait for whichever comes
 * first, their answer (an external event raised with `client.raiseEvent`) or a deadline (a durable
 * timer); on timeout, escalate.
 *
 *   ApprovalWorkflow(request):  RequestApproval(request)
 *                               winner = any([waitForExternalEvent('Approval'), timer(deadline)])
 *                               approved: return Approved;  timed out: Escalate(request); return Escalated
 *
 * The sample runs both cases: one request is approved by a client, the other is left to time out.
 */
import { Registry, defineActivity, defineOrchestrator } from '@durabull/core';
import { type InstanceReport, type SampleOptions, withHarness } from './harness.js';

export interface ApprovalRequest {
  requestId: string;
  amount: number;
  approver: string;
  /** How long the approver has. */
  timeoutMs: number;
}

export interface Approval {
  by: string;
  comment: string;
}

export type ApprovalOutcome =
  | { outcome: 'Approved'; requestId: string; by: string; comment: string }
  | { outcome: 'Escalated'; requestId: string; escalatedTo: string };

/** Would send an e-mail or a chat message; here it only says what it would send. */
export const RequestApproval = defineActivity('RequestApproval', async (r: ApprovalRequest) => `asked ${r.approver} to approve ${r.requestId} (${r.amount} EUR)`);
/** Hands the request to the approver's manager. */
export const Escalate = defineActivity('Escalate', async (r: ApprovalRequest) => `manager-of-${r.approver}`);

export const ApprovalWorkflow = defineOrchestrator('ApprovalWorkflow', async (ctx, request: ApprovalRequest): Promise<ApprovalOutcome> => {
  await ctx.callActivity(RequestApproval, request);
  const deadline = new Date(ctx.currentUtcDateTime.getTime() + request.timeoutMs);
  ctx.setCustomStatus({ state: 'AwaitingApproval', approver: request.approver, deadline: deadline.toISOString() });

  const approval = ctx.waitForExternalEvent<Approval>('Approval');
  const timeout = ctx.createTimer(deadline);
  // `await` unwraps thenables, and tasks are thenables: `await ctx.any(...)` gives the winning task's
  // result (like Promise.race), not the task. Ask the tasks which one completed. (With `yield`, in a
  // generator orchestrator, `ctx.any` gives the winning task itself: `if (winner === approval)`.)
  await ctx.any([approval, timeout]);

  if (approval.isCompleted) {
    const { by, comment } = approval.result!;
    ctx.setCustomStatus({ state: 'Approved', by });
    return { outcome: 'Approved', requestId: request.requestId, by, comment };
  }
  const escalatedTo = await ctx.callActivity(Escalate, request);
  ctx.setCustomStatus({ state: 'Escalated', to: escalatedTo });
  return { outcome: 'Escalated', requestId: request.requestId, escalatedTo };
});

export const registry = new Registry().add(RequestApproval, Escalate, ApprovalWorkflow);

export interface HumanInteractionResult {
  approved: InstanceReport<ApprovalOutcome>;
  escalated: InstanceReport<ApprovalOutcome>;
}

export async function run(opts: SampleOptions & { timeoutMs?: number }): Promise<HumanInteractionResult> {
  const shortTimeoutMs = opts.timeoutMs ?? 300;
  return withHarness(opts, registry, async (h) => {
    h.log(`ApprovalWorkflow: RequestApproval, then the approval or a ${shortTimeoutMs} ms deadline, whichever comes first`);
    // The approver has plenty of time and answers; nobody answers the other one before its deadline.
    const approvedId = await h.client.startNew(ApprovalWorkflow, {
      input: { requestId: 'PO-1001', amount: 950, approver: 'alice', timeoutMs: 10_000 },
      instanceId: h.id('approval-po-1001'),
    });
    const escalatedId = await h.client.startNew(ApprovalWorkflow, {
      input: { requestId: 'PO-1002', amount: 12_000, approver: 'bob', timeoutMs: shortTimeoutMs },
      instanceId: h.id('approval-po-1002'),
    });

    // Alice sees the request (the workflow says so in its custom status) and approves it.
    await h.until(approvedId, (s) => (s.customStatus as { state?: string } | undefined)?.state === 'AwaitingApproval');
    h.log(`${approvedId}: awaiting approval; alice approves`);
    await h.client.raiseEvent(approvedId, 'Approval', { by: 'alice', comment: 'ok, within budget' } satisfies Approval);

    const approved = await h.finish<ApprovalOutcome>(approvedId);
    h.log(`${approvedId}: ${approved.runtimeStatus} ${JSON.stringify(approved.output)}`);
    const escalated = await h.finish<ApprovalOutcome>(escalatedId);
    h.log(`${escalatedId}: ${escalated.runtimeStatus} ${JSON.stringify(escalated.output)}`);
    return { approved, escalated };
  });
}
