/**
 * The `durabull` process: runs {@link runCli} on `process.argv` with the process's streams and
 * signal handling, and exits with its code. Run it with
 * `npm run durabull -- <command>` (tsx, from the repository root) or the `durabull` bin.
 */
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  handleSignals: true,
});
process.exitCode = code;
// Everything is closed by now; if a stray handle (a socket being torn down) keeps the event loop
// alive, do not make the user wait for it.
setTimeout(() => process.exit(code), 2000).unref();
