/**
 * `node --import ./record-process.mjs ...`: appends this process's id, its parent's and
 * its GLIBC_TUNABLES, as one JSON line, to the file named by AZS3COPY_RECORD_PROCESS;
 * in a process the launcher relaunched, also a line for a SIGTERM it receives, before
 * ending by it as it would have.
 */
import { appendFileSync } from 'node:fs';

const log = process.env.AZS3COPY_RECORD_PROCESS;
if (log) {
  appendFileSync(log, JSON.stringify({ pid: process.pid, ppid: process.ppid, tunables: process.env.GLIBC_TUNABLES ?? null }) + '\n');
  if (process.env.AZS3COPY_RELAUNCHED === '1') {
    process.once('SIGTERM', () => {
      appendFileSync(log, JSON.stringify({ pid: process.pid, received: 'SIGTERM' }) + '\n');
      process.kill(process.pid, 'SIGTERM');
    });
  }
}
