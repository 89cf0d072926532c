/**
 * `npm run dashboard`: serves the management API, Bull Board and the orchestration view.
 *
 * Environment: `REDIS_CLUSTER_NODES` (a Redis Cluster: `host:port,...`) or `REDIS_URL` (default
 * redis://127.0.0.1:6379; `redis-cluster://host:port,...` is a cluster too), `DURABULL_HUB` (default `default`),
 * `PORT` (default 8080), `HOST` (default 127.0.0.1; anything else needs a token), `DURABULL_TOKEN`
 * (the Bearer token every route then requires; at least 16 characters unless HOST is loopback),
 * `DURABULL_TRUST_PROXY` (`true`, or the proxy's addresses: trust its X-Forwarded-Proto, so the
 * token cookie is `Secure` behind a TLS proxy), `DURABULL_ORCHESTRATORS` (optional comma-separated
 * names: starting any other name answers 404).
 */
import { connectionFromEnv } from '@durabull/redis';
import { createServer } from './server.js';

const host = process.env.HOST || '127.0.0.1';
const port = Number(process.env.PORT || 8080);
const names = process.env.DURABULL_ORCHESTRATORS?.split(',').map((n) => n.trim()).filter(Boolean);
const trustProxy = process.env.DURABULL_TRUST_PROXY;

let app;
try {
  app = createServer({
    connection: connectionFromEnv(),
    host,
    logger: true,
    ...(process.env.DURABULL_HUB ? { hub: process.env.DURABULL_HUB } : {}),
    ...(process.env.DURABULL_TOKEN ? { token: process.env.DURABULL_TOKEN } : {}),
    ...(names?.length ? { registeredOrchestrators: names } : {}),
    ...(trustProxy ? { trustProxy: trustProxy === 'true' ? true : trustProxy } : {}),
  });
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}

const server = app;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.close().then(() => process.exit(0));
  });
}
await server.listen({ host, port });
console.log(`durabull dashboard: http://${host.includes(':') ? `[${host}]` : host}:${port}/ (Bull Board at /queues)`);
