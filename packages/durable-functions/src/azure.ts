/**
 * The classes of @azure/functions, from its CommonJS exports object: Node's ESM loader does not see
 * them as named exports of its bundle (only `app`, `input`, `output`, `trigger`...), so
 * `import { HttpResponse } from '@azure/functions'` works under bundlers but not in plain Node.
 */
import azureFunctions from '@azure/functions';

export const { HttpRequest: AzureHttpRequest, HttpResponse: AzureHttpResponse, InvocationContext: AzureInvocationContext } = azureFunctions;
