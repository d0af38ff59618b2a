/**
 * azs3copy as the benchmark runs it: its own process, the CLI's flags and defaults
 * (copyOptionsFromFlags, then runLocalCopy, as `azs3copy copy` does), printing one
 * JSON line with what the parent cannot see from outside: the CPU the copy itself
 * used (process.resourceUsage around runLocalCopy, so module loading is reported
 * apart) and the process's peak RSS.
 *
 * bench/cli.ts prebuilds it as bin/build.mjs builds the command (prebuiltCopier), so it runs
 * the same plain JavaScript:
 *   node node_modules/.cache/azs3copy-bench/copier.mjs copy --azure-connection-string ... --container C --bucket B --s3-endpoint URL
 */
import { parseArgs } from 'node:util';
import { copyOptionsFromFlags } from '../lambdas/local/commands';
import { runLocalCopy } from '../lambdas/local/runner';
import { countOf } from '../lambdas/core/report';

const { values } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    'azure-connection-string': { type: 'string' },
    container: { type: 'string' },
    bucket: { type: 'string' },
    's3-endpoint': { type: 'string' },
    'large-blob-mib': { type: 'string' },
    'part-mib': { type: 'string' },
    concurrency: { type: 'string' },
  },
});

const options = copyOptionsFromFlags({ ...values, quiet: process.env.BENCH_VERBOSE !== '1' }, process.env);
// For experiments: stage concurrencies other than the defaults, e.g. BENCH_STAGE_CONCURRENCY='{"parter":4}'.
if (process.env.BENCH_STAGE_CONCURRENCY) options.concurrency = { ...options.concurrency, ...JSON.parse(process.env.BENCH_STAGE_CONCURRENCY) };
// And other tuning, e.g. BENCH_TUNING='{"downloadConcurrency":4}'.
if (process.env.BENCH_TUNING) options.tuning = { ...options.tuning, ...JSON.parse(process.env.BENCH_TUNING) };
const before = process.resourceUsage();
const started = performance.now();
const result = await runLocalCopy(options);
const seconds = (performance.now() - started) / 1000;
const after = process.resourceUsage();
const cpu = (u: NodeJS.ResourceUsage) => (u.userCPUTime + u.systemCPUTime) / 1e6;

process.stdout.write(
  JSON.stringify({
    seconds,
    copied: result.report.copiedCount,
    bytes: result.report.bytes,
    unchanged: result.report.unchanged,
    failed: countOf(result.report, 'failed'),
    firstFailure: result.report.failed[0],
    deadLetters: result.deadLetters.length,
    copyCpuSeconds: cpu(after) - cpu(before),
    copyUserSeconds: (after.userCPUTime - before.userCPUTime) / 1e6,
    copySystemSeconds: (after.systemCPUTime - before.systemCPUTime) / 1e6,
    startupCpuSeconds: cpu(before),
    maxRssKiB: after.maxRSS,
  }) + '\n',
);
process.exit(countOf(result.report, 'failed') > 0 ? 1 : 0);
