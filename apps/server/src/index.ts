/** @durabull/server: the management HTTP API, Bull Board and the orchestration view. */
export { createServer, HttpError, type ServerOptions } from './server.js';
export { esc, executionLog, timelineBars, timelineSvg, type LogLine, type TimelineBar } from './html.js';
