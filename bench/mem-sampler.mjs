// Preloaded by the bench (NODE_OPTIONS=--import) into a copier it measures: appends
// process.memoryUsage() as one JSON line every BENCH_HEAP_EVERY_MS to BENCH_HEAP_FILE,
// so a growing peak can be told apart: V8's heap, Buffers (external, arrayBuffers), or
// neither (the allocator, native code). Plain JavaScript: it loads before anything else.
import { appendFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const file = process.env.BENCH_HEAP_FILE;
const every = Number(process.env.BENCH_HEAP_EVERY_MS ?? 1000);
if (file) {
  const started = performance.now();
  // Read now: the launcher's relaunched process removes the marker once it starts (bin/relaunch.mjs).
  const relaunched = process.env.AZS3COPY_RELAUNCHED === '1';
  const sample = () => {
    const m = process.memoryUsage();
    const mib = (n) => Math.round((n / 1048576) * 10) / 10;
    appendFileSync(file, JSON.stringify({
      t: Math.round(performance.now() - started) / 1000,
      rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers),
      // Each space's committed MiB (new, old, code, large objects...): which part of the heap a peak is in.
      spaces: Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name.replace(/_space$/, ''), mib(s.space_size)])),
      ...(relaunched ? { relaunched } : {}),
    }) + '\n');
  };
  setInterval(sample, every).unref();
  process.on('exit', sample);
}

// BENCH_PROMOTED_PROFILE=FILE: a sampling heap profile of what survives young-generation collections (and so
// fills the old generation until a full collection): allocations kept by objects collected by major GCs too.
const promoted = process.env.BENCH_PROMOTED_PROFILE;
if (promoted) {
  const { Session } = await import('node:inspector');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', { samplingInterval: 32768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
  process.on('exit', () => {
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (!error) writeFileSync(promoted, JSON.stringify(result.profile));
    });
  });
}

// BENCH_V8_FLAGS="--a --b": V8 flags set at run time (v8.setFlagsFromString), as a program could set them itself.
if (process.env.BENCH_V8_FLAGS) {
  const { setFlagsFromString } = await import('node:v8');
  for (const flag of process.env.BENCH_V8_FLAGS.split(' ').filter(Boolean)) setFlagsFromString(flag);
}
