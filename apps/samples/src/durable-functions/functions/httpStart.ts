// Durable Functions' sample httpStart (azure-functions-durable-js v3.x, samples-ts/functions/httpStart.ts),
// run on durabull through the npm alias "durable-functions" -> @durabull/durable-functions.
// Changed: imports of types marked `type` (this repository compiles with verbatimModuleSyntax); one `!` for strict null checks.
import * as df from "durable-functions";
import { app, type HttpHandler, type HttpRequest, type HttpResponse, type InvocationContext } from "@azure/functions";

const httpStart: HttpHandler = async (
    request: HttpRequest,
    context: InvocationContext
): Promise<HttpResponse> => {
    const client = df.getClient(context);
    const body: unknown = await request.json();
    const instanceId: string = await client.startNew(request.params.orchestratorName!, {
        input: body,
    });

    context.log(`Started orchestration with ID = '${instanceId}'.`);

    return client.createCheckStatusResponse(request, instanceId);
};
app.http("httpStart", {
    route: "orchestrators/{orchestratorName}",
    extraInputs: [df.input.durableClient()],
    handler: httpStart,
});
