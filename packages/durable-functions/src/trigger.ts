import { type FunctionTrigger, trigger as azureTrigger } from '@azure/functions';

/** v3's trigger descriptors, for code that builds function options by hand. */
export function activity(): FunctionTrigger {
  return azureTrigger.generic({ type: 'activityTrigger' });
}
export function orchestration(): FunctionTrigger {
  return azureTrigger.generic({ type: 'orchestrationTrigger' });
}
export function entity(): FunctionTrigger {
  return azureTrigger.generic({ type: 'entityTrigger' });
}
