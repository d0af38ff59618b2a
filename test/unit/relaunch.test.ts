/**
 * When the launcher starts a command again on huge pages (bin/relaunch.mjs): only a
 * command that moves bytes, only where glibc reads the tunable and the kernel allows
 * huge pages, and never over an operator's own GLIBC_TUNABLES.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript beside the launcher, typed by its JSDoc
import { hugePagesHelp, movesBytes } from '../../bin/relaunch.mjs';

const LINUX = { platform: 'linux', glibc: '2.36', transparentHugePages: 'always [madvise] never' };

describe('movesBytes', () => {
  it.each([
    [['copy', '--container', 'c'], true],
    [['redrive', '--container', 'c', '--run-id', 'r'], true],
    [['redrive', '--queue-url', 'https://q', '--topic-arn', 'arn'], false],
    [['redrive', '--queue-url=https://q'], false],
    [['copy', '--help'], false],
    [['copy', '-h'], false],
    [['plan', '--container', 'c'], false],
    [['watch', '--listen', '8080'], false],
    [['status', '--bucket', 'b'], false],
    [['--help'], false],
    [[], false],
  ])('%j -> %s', (args, expected) => {
    expect(movesBytes(args)).toBe(expected);
  });
});

describe('hugePagesHelp', () => {
  it('helps on Linux with glibc 2.35 or later and huge pages on madvise or always', () => {
    expect(hugePagesHelp({}, LINUX)).toBe(true);
    expect(hugePagesHelp({}, { ...LINUX, glibc: '2.35' })).toBe(true);
    expect(hugePagesHelp({}, { ...LINUX, glibc: '3.0' })).toBe(true);
    expect(hugePagesHelp({}, { ...LINUX, transparentHugePages: '[always] madvise never' })).toBe(true);
  });

  it('tries when the kernel setting cannot be read', () => {
    expect(hugePagesHelp({}, { ...LINUX, transparentHugePages: undefined })).toBe(true);
  });

  it('leaves an operator\'s GLIBC_TUNABLES alone, even an empty one', () => {
    expect(hugePagesHelp({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, LINUX)).toBe(false);
    expect(hugePagesHelp({ GLIBC_TUNABLES: '' }, LINUX)).toBe(false);
  });

  it('does not start a relaunched process again', () => {
    expect(hugePagesHelp({ AZS3COPY_RELAUNCHED: '1' }, LINUX)).toBe(false);
  });

  it('changes nothing without glibc, with a glibc older than the tunable, or with huge pages off', () => {
    expect(hugePagesHelp({}, { platform: 'darwin' })).toBe(false);
    expect(hugePagesHelp({}, { platform: 'linux', transparentHugePages: LINUX.transparentHugePages })).toBe(false);
    expect(hugePagesHelp({}, { ...LINUX, glibc: '2.34' })).toBe(false);
    expect(hugePagesHelp({}, { ...LINUX, glibc: '2.17' })).toBe(false);
    expect(hugePagesHelp({}, { ...LINUX, transparentHugePages: 'always madvise [never]' })).toBe(false);
  });
});
