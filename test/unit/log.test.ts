import { describe, expect, it } from 'vitest';
import { createLogger, redact, registerSecret } from '../../lambdas/core/log';

describe('logs never carry secrets', () => {
  it('replaces a registered secret wherever it appears', () => {
    registerSecret('s3cr3t-client-value');
    const lines: string[] = [];
    const log = createLogger({ runId: 'r1' }, { write: (l) => lines.push(l) });
    log.error('token request failed for s3cr3t-client-value', { error: new Error('bad secret s3cr3t-client-value') });
    expect(lines.join('\n')).not.toContain('s3cr3t-client-value');
    expect(JSON.parse(lines[0])).toMatchObject({ runId: 'r1', level: 'error', message: 'token request failed for ***' });
  });

  it('masks account keys, SAS signatures and authorization headers by their shape', () => {
    const text = redact(
      'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc123==;EndpointSuffix=x https://a.blob/c?sv=1&sig=SIGVALUE%3D&se=2 Authorization: Bearer eyJtoken',
    );
    expect(text).not.toMatch(/abc123|SIGVALUE|eyJtoken/);
    expect(text).toContain('AccountKey=***');
  });

  it('puts the run id on every line of a child logger', () => {
    const lines: string[] = [];
    const log = createLogger({}, { write: (l) => lines.push(l) }).child({ runId: 'r2', stage: 'parter' });
    log.info('a');
    log.warn('b');
    expect(lines.map((l) => JSON.parse(l).runId)).toEqual(['r2', 'r2']);
  });
});
