import { type FunctionInput, input as azureInput } from '@azure/functions';

/** The durable client input of v3 (`extraInputs: [df.input.durableClient()]`); `df.getClient(context)` does not need it here. */
export interface DurableClientInput extends FunctionInput {
  type: 'durableClient';
}

export function durableClient(): DurableClientInput {
  return azureInput.generic({ type: 'durableClient' }) as DurableClientInput;
}
