/**
 * The parts of the package that need no Redis: argument checks (typed errors that name the argument),
 * v3's classes, route templates, binding expressions. The behaviours on Redis are in
 * test/src/durable-functions/.
 */
import { ValidationError } from '@durabull/core';
import { describe, expect, it } from 'vitest';
import * as df from './index.js';
import { resolveBindingExpressions } from './app.js';
import { httpRequestOf } from './call-http.js';
import { fastifyPath } from './http-host.js';
import { WhenAllTask, WhenAnyTask } from './tasks.js';

describe('RetryOptions', () => {
  it("takes v3's constructor arguments, with the other fields mutable and unset", () => {
    const r = new df.RetryOptions(1000, 3);
    expect(r).toMatchObject({ firstRetryIntervalInMilliseconds: 1000, maxNumberOfAttempts: 3 });
    expect(r.backoffCoefficient).toBeUndefined();
    r.backoffCoefficient = 2;
    r.maxRetryIntervalInMilliseconds = 5000;
    expect(r.backoffCoefficient).toBe(2);
  });

  it('refuses a first interval <= 0 or not a number, and attempts that are not an integer >= 1', () => {
    expect(() => new df.RetryOptions(0, 1)).toThrow(ValidationError);
    expect(() => new df.RetryOptions(0, 1)).toThrow('firstRetryIntervalInMilliseconds value must be greater than 0, got 0');
    expect(() => new df.RetryOptions('10' as never, 1)).toThrow('firstRetryIntervalInMilliseconds must be a number, got string "10"');
    expect(() => new df.RetryOptions(10, 1.5)).toThrow('maxNumberOfAttempts must be an integer >= 1, got number 1.5');
  });
});

describe('EntityId', () => {
  it("has v3's string form, with the name in lower case", () => {
    const id = new df.EntityId('Counter', 'c1');
    expect(id).toMatchObject({ name: 'Counter', key: 'c1' });
    expect(id.toString()).toBe('@counter@c1');
  });

  it('refuses an empty name or key, and a key durabull cannot store, naming it', () => {
    expect(() => new df.EntityId('', 'k')).toThrow('new EntityId: name must be a non-empty string, got string ""');
    expect(() => new df.EntityId('Counter', ' ')).toThrow('new EntityId: key must be a non-empty string');
    expect(() => new df.EntityId('Counter', 'a b')).toThrow(/"@Counter@a b" is not an entity id durabull can store: Invalid entity key "a b"/);
  });
});

describe('errors', () => {
  it("AggregatedError has v3's message and errors", () => {
    const a = new Error('one');
    const b = new TypeError('two');
    const e = new df.AggregatedError([a, b]);
    expect(e.errors).toEqual([a, b]);
    expect(e.message).toContain('context.df.Task.all() encountered the below error messages:\n\nName: Error\nMessage: one\n');
    expect(e.message).toContain('-----------------------------------\nName: TypeError\nMessage: two');
    expect(e).toBeInstanceOf(Error);
  });

  it('DurableError and NotSupportedError are Errors with their names', () => {
    expect(new df.DurableError('x')).toMatchObject({ name: 'DurableError', message: 'x' });
    expect(new df.NotSupportedError('f', 'm')).toMatchObject({ name: 'NotSupportedError', feature: 'f', message: 'm' });
  });
});

describe('Task.all / Task.any', () => {
  it('refuse an empty list, as v3 does, and anything but tasks of this API', () => {
    expect(() => new WhenAllTask([])).toThrow('context.df.Task.all: When constructing a CompoundTask (such as Task.all() or Task.any()), you must specify at least one Task.');
    expect(() => new WhenAnyTask([])).toThrow(ValidationError);
    expect(() => new WhenAllTask([Promise.resolve(1)])).toThrow('context.df.Task.all: tasks[0] is not a task of the durable-functions API');
    expect(() => new WhenAnyTask('nope')).toThrow('context.df.Task.any: tasks must be an array of tasks');
  });
});

describe('callHttp options', () => {
  it('builds the request (a JSON body, polling on by default)', () => {
    expect(httpRequestOf({ method: 'post', url: 'https://example.com/a', body: { a: 1 }, headers: { X: 'y' } })).toEqual({
      method: 'POST',
      uri: 'https://example.com/a',
      content: '{"a":1}',
      headers: { X: 'y' },
      enablePolling: true,
    });
    expect(httpRequestOf({ method: 'GET', url: 'http://h/', asynchronousPatternEnabled: false }).enablePolling).toBe(false);
    expect(httpRequestOf({ method: 'GET', url: 'http://h/', asynchronousPatternEnabled: false, enablePolling: true }).enablePolling).toBe(true);
  });

  it('refuses what it cannot send, naming the option', () => {
    expect(() => httpRequestOf({ method: 'GET', url: 'http://h/', body: 'x' })).toThrow('context.df.callHttp: a GET request cannot have a body');
    expect(() => httpRequestOf({ method: 'GET', url: 'h/x' })).toThrow('context.df.callHttp: options.url must be an absolute http(s) URL, got string "h/x"');
    expect(() => httpRequestOf({ method: 'GET', url: 'file:///etc/passwd' })).toThrow('options.url must be an http(s) URL');
    expect(() => httpRequestOf({ method: 'GET', url: 'http://h/', headers: { a: 1 } })).toThrow("options.headers['a'] must be a string, got number 1");
    expect(() => httpRequestOf({ method: 'GET', url: 'http://h/', tokenSource: new df.ManagedIdentityTokenSource('r') })).toThrow(df.NotSupportedError);
    expect(() => httpRequestOf(undefined)).toThrow('context.df.callHttp: options must be an object, got undefined');
  });

  it('DurableHttpResponse.getHeader ignores the case of the name', () => {
    const r = new df.DurableHttpResponse(202, '', { LoCaTiOn: 'https://x' });
    expect(r.getHeader('location')).toBe('https://x');
    expect(r.getHeader('Retry-After')).toBeUndefined();
  });
});

describe('HTTP functions', () => {
  it("maps Azure's route templates to Fastify paths under the route prefix", () => {
    expect(fastifyPath('api', 'orchestrators/{orchestratorName}')).toBe('/api/orchestrators/:orchestratorName');
    expect(fastifyPath('api', '/items/{id:int}/{rest?}')).toBe('/api/items/:id/:rest?');
    expect(fastifyPath('', 'files/{*path}')).toBe('/files/*');
    expect(fastifyPath('/v1/', 'hello')).toBe('/v1/hello');
  });

  it('resolves binding expressions from the trigger data and the environment', () => {
    process.env.DF_TEST_CONTAINER = 'backups';
    const out = resolveBindingExpressions({ type: 'blob', name: 'o', path: '%DF_TEST_CONTAINER%/{backupPath}/{missing}', connection: 'C' }, { backupPath: 'a/b.txt' });
    expect(out).toEqual({ type: 'blob', name: 'o', path: 'backups/a/b.txt/{missing}', connection: 'C' });
    delete process.env.DF_TEST_CONTAINER;
  });
});

describe('registration', () => {
  it('checks the handler and refuses bindings durabull does not run, registering nothing', () => {
    expect(() => df.app.orchestration('NoHandler', {} as never)).toThrow("df.app.orchestration('NoHandler'): handler must be a function, got undefined");
    expect(() => df.app.activity('Outputs', 'x' as never)).toThrow(ValidationError);
    expect(() => df.app.orchestration('WithOutput', { handler: function* () {}, extraOutputs: [{ type: 'queue', name: 'q' }] })).toThrow(df.NotSupportedError);
    expect(() => df.app.entity('WithInput', { handler: () => {}, extraInputs: [{ type: 'blob', name: 'b' }] })).toThrow("extraInputs of type 'blob' are not supported");
    expect(df.registry.orchestratorNames()).not.toContain('WithOutput');
    expect(df.registry.entityNames()).not.toContain('withinput');
  });

  it('returns the function that calls what it registered; .withRetry checks its options', () => {
    const child = df.app.orchestration('Child', function* () {
      return 1;
    });
    const task = child('in', 'child-1');
    expect(task).toMatchObject({ name: 'Child', input: 'in', instanceId: 'child-1', isCompleted: false, isFaulted: false, result: undefined });
    expect(() => task.withRetry(undefined as never)).toThrow('Child(...).withRetry: retryOptions: Expected object of type RetryOptions but got undefined; are you missing properties?');
    expect(df.registry.orchestratorNames()).toContain('Child');
  });

  it('configure checks its options', () => {
    expect(() => df.configure(null as never)).toThrow('df.configure: options must be an object, got null');
    expect(() => df.configure({ baseUrl: 'not a url' })).toThrow('df.configure: options.baseUrl must be an http(s) URL, got string "not a url"');
    expect(() => df.outputBinding('', () => {})).toThrow("df.outputBinding: type must be a binding type ('blob', 'twilioSms', ...), got string \"\"");
  });
});

describe("v3's test doubles", () => {
  it('are refused with NotSupportedError at construction', () => {
    expect(() => new df.DummyOrchestrationContext()).toThrow(df.NotSupportedError);
    expect(() => new df.DummyEntityContext()).toThrow('DummyEntityContext is not supported');
  });
});
