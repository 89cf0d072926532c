import { type ChildProcess, fork } from 'node:child_process';

/**
 * Starts a TypeScript worker fixture in a child process (tsx, "source" condition) with the test's
 * Redis URL and task hub, and resolves once it sends its first IPC message ("ready"). Rejects if it
 * exits first.
 */
export async function forkReadyWorker(fixture: string, env: { REDIS_URL: string; DURABULL_HUB: string } & Record<string, string>): Promise<ChildProcess> {
  const child = fork(fixture, [], {
    execArgv: ['--import', 'tsx', '--conditions=source'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`worker ${fixture} exited before it was ready (code ${code})`)));
  });
  return child;
}
