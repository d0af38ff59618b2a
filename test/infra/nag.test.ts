/**
 * cdk-nag's AwsSolutions pack: no finding left, and every acknowledgement in
 * lib/ is needed (it matches a finding that would otherwise be reported) and
 * says why.
 */
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesize, type Synthesized } from './synth';

type Report = ReturnType<AwsSolutionsChecks['validateScope']>;

/** The pack, blind to acknowledgements: what it would report without them. */
class UnacknowledgedChecks extends AwsSolutionsChecks {
  constructor(scope: Synthesized['app']) {
    super(scope);
    (this as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  }
}

const findings = (report: Report) =>
  report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.severity} ${v.ruleName} at ${r.constructPath}`));

const variants: Record<string, Record<string, unknown>> = {
  'a created bucket': { alarmEmail: 'ops@example.com' },
  'an existing bucket': { bucketName: 'my-existing-bucket', versioned: 'true', schedule: 'off' },
};

describe.each(Object.entries(variants))('AwsSolutions checks with %s', (_, context) => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthesize(context);
  }, 180_000);

  it('reports no error and no warning', () => {
    const report = new AwsSolutionsChecks(s.app).validateScope(s.stack);
    expect(findings(report)).toEqual([]);
  });

  it('acknowledges only findings that occur, each with a reason', () => {
    const acknowledged = new Map<string, string>();
    for (const construct of s.stack.node.findAll()) {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
          acknowledged.set(`${construct.node.path} ${id.replace(/^annotation::/i, '')}`, reason);
        }
      }
    }
    expect(acknowledged.size).toBeGreaterThan(0);
    for (const reason of acknowledged.values()) expect(reason.length).toBeGreaterThan(40);

    const wouldReport = new UnacknowledgedChecks(s.app).validateScope(s.stack).violations;
    for (const key of acknowledged.keys()) {
      const [path, rule] = key.split(' ');
      const hit = wouldReport.find((v) => v.ruleName === rule && v.violatingResources.some((r) => (r.constructPath ?? '').startsWith(`${path}/`) || r.constructPath === path));
      expect(hit, `${rule} acknowledged at ${path} but never reported there`).toBeDefined();
    }
  });
});
