/**
 * DURABULL_TEST_PARTITIONS=n: the test hubs get n partitions (default: durabull's default), and so
 * do the worker processes the tests start (test/src/fixtures), which inherit the variable: a hub's
 * partition count is fixed by whoever uses it first.
 */
export const TEST_PARTITIONS: { partitions?: number } = process.env.DURABULL_TEST_PARTITIONS ? { partitions: Number(process.env.DURABULL_TEST_PARTITIONS) } : {};
