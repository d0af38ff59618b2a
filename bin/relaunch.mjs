/**
 * A local copy runs in a process whose memory allocator asks Linux for huge pages.
 *
 * A large blob goes through part buffers of 64 MiB and socket reads of 64 KiB, and every
 * fresh 4 KiB page of them costs a page fault; on a virtual machine a fault is dear. glibc
 * (2.35 and later) asks for transparent huge pages on its own mappings with
 * `glibc.malloc.hugetlb=1`, and Linux then backs them 2 MiB at a time where it allows
 * ("madvise" or "always" in /sys/kernel/mm/transparent_hugepage/enabled). Measured with
 * `npx tsx bench/profile.ts big 512` (the README): the copier's CPU for a 512 MiB blob went
 * from 5.5-5.8 s to 2.9 s, most of the difference system time.
 *
 * glibc reads its tunables only when a process starts, so the launcher starts the command
 * again with the setting (a bare Node start, about 0.1 s) and passes on what the new process
 * does: its output (the same descriptors), its exit status, and the signals sent to this
 * one. The new process ends itself if this one is killed outright, so a killed copy never
 * goes on copying unseen.
 *
 * Nothing is done where it would change nothing (not Linux, not glibc, a glibc too old for
 * the tunable, huge pages switched off), for commands that move no bytes here, or when the
 * operator set GLIBC_TUNABLES themselves, even to nothing: their setting stands.
 *
 * Plain JavaScript beside the launcher: it runs before the command's own code is loaded.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';

export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb=1';
/** Set in the new process's environment, and removed there once read. */
const RELAUNCHED = 'AZS3COPY_RELAUNCHED';
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * The commands whose local run reads and writes blobs: a copy, and a redrive of a local run's dead
 * letters (not a deployed queue's, which only moves messages). Help answers at once.
 * @param {string[]} args the command line after the program
 */
export function movesBytes(args) {
  if (args.includes('--help') || args.includes('-h')) return false;
  if (args[0] === 'copy') return true;
  return args[0] === 'redrive' && !args.some((a) => a.startsWith('--queue-url') || a.startsWith('--topic-arn'));
}

/**
 * @typedef {{ platform: string, glibc?: string, transparentHugePages?: string }} HostFacts
 *   glibc: its version as the process runs it ('2.36'), undefined without glibc (musl, not Linux);
 *   transparentHugePages: the line of /sys/kernel/mm/transparent_hugepage/enabled, undefined when unreadable.
 */

/** @returns {HostFacts} */
export function hostFacts() {
  if (process.platform !== 'linux') return { platform: process.platform };
  const glibc = process.report?.getReport()?.header?.glibcVersionRuntime;
  let transparentHugePages;
  try {
    transparentHugePages = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').trim();
  } catch {
    transparentHugePages = undefined;
  }
  return { platform: process.platform, glibc, transparentHugePages };
}

/**
 * Whether starting again with the tunable would change anything here.
 * @param {NodeJS.ProcessEnv} env
 * @param {HostFacts} facts
 */
export function hugePagesHelp(env, facts) {
  if (env.GLIBC_TUNABLES !== undefined || env[RELAUNCHED] !== undefined) return false;
  if (facts.platform !== 'linux' || !facts.glibc) return false;
  const [major, minor] = facts.glibc.split('.').map(Number);
  if (!(major > 2 || (major === 2 && minor >= 35))) return false;
  // Without the file (a container hiding /sys) the kernel's setting is unknown: try; it costs 0.1 s at most.
  return facts.transparentHugePages === undefined || !/\[never\]/.test(facts.transparentHugePages);
}

/**
 * In a process a relaunch started: end with the one that started it. In any other: nothing.
 * @param {NodeJS.ProcessEnv} env
 */
export function followParent(env) {
  if (env[RELAUNCHED] !== '1') return;
  delete env[RELAUNCHED];
  if (typeof process.send !== 'function') return;
  // The channel closes when the parent ends, however it ends; SIGKILL ends this one as abruptly. A parent
  // that ended before this ran (its 'disconnect' emitted to no one) is seen at once.
  const end = () => process.kill(process.pid, 'SIGKILL');
  if (!process.connected) return end();
  process.on('disconnect', end);
  // A listening channel would keep this process alive after its work: it is only a lifeline.
  process.channel.unref();
}

/**
 * Run the command in a new process on huge pages: its exit status, or undefined when it could not be
 * started (then the command runs here, as before). A new process that ends by a signal ends this one by
 * the same signal.
 * @param {string[]} argv the new process's arguments after Node's own (the script and the command line)
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<number | undefined>}
 */
export async function relaunchOnHugePages(argv, env) {
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    env: { ...env, GLIBC_TUNABLES: HUGE_PAGES_TUNABLE, [RELAUNCHED]: '1' },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  const forward = (signal) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  const ended = await new Promise((resolve) => {
    let started = false;
    child.once('spawn', () => (started = true));
    // Only a process that never started runs the command here instead: one that did is waited for, whatever else fails.
    child.on('error', () => started || resolve(undefined));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  for (const signal of FORWARDED) process.off(signal, forward);
  if (ended === undefined) return undefined;
  if (ended.signal) {
    process.kill(process.pid, ended.signal);
    // The signal's default action has ended this process; should it be ignored here, its number is the status.
    return 128 + (constants.signals[ended.signal] ?? 1);
  }
  return ended.code ?? 1;
}
