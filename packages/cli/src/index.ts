/**
 * @durabull/cli: the `durabull` command line.
 *
 * ```sh
 * durabull start Chaining --input '"Tokyo"' --wait
 * durabull history <id>
 * durabull worker --module ./src/functions.ts
 * ```
 *
 * In-process (as the tests do): `await runCli(['status', id], { stdout, stderr })` returns the exit code.
 */
export { runCli, type CliIO, type CliOutput, type GlobalOptions, type DashboardModule, type DashboardServer } from './cli.js';
export { ExitCode, CliError, UsageError, reportError, type ErrorReport } from './errors.js';
export { historyLines, inLogOrder, statusLines, listLines, formatOffset, showValue, toJson } from './format.js';
export { parseJsonOption, parseIntOption, parseDateOption, parseStatuses } from './input.js';
export { loadModule, type LoadedModule } from './module-loader.js';
export { waitWithProgress, type WaitProgressOptions, type ProgressOutput } from './progress.js';
