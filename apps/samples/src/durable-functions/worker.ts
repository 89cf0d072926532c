/**
 * The module for `durabull worker --module` (or `durabull dev --module`): it imports the function
 * files, whose `df.app.*` calls fill the package's registry, and exports that registry.
 *
 *   npm run durabull -- dev --module apps/samples/src/durable-functions/worker.ts
 *   npm run durabull -- start helloSequence --wait
 */
import './functions/sayHello.js';
import './functions/backupSiteContent.js';
import './functions/weatherMonitor.js';
import './functions/smsPhoneVerification.js';
import './functions/counter.js';

export { registry } from 'durable-functions';
