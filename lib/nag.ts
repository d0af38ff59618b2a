/**
 * Acknowledging cdk-nag findings, next to the code that causes them. cdk-nag 3
 * reads CDK's own acknowledgements (`Validations.of(scope).acknowledge`), each
 * for one exact finding: a rule (`AwsSolutions-S1`) or a rule with what it found
 * (`AwsSolutions-IAM5[Resource::<BucketArn>/*]`). Every acknowledgement carries
 * its reason.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** A CloudFormation value as cdk-nag writes it in a finding: `<Logical.Arn>`, `<AWS::Partition>`, literal text. */
export function findingText(value: unknown): string {
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v['Fn::Join'])) {
      const [delimiter, items] = v['Fn::Join'] as [string, unknown[]];
      return items.map(findingText).join(delimiter);
    }
    if (Array.isArray(v['Fn::GetAtt'])) {
      const [resource, attribute] = v['Fn::GetAtt'] as [unknown, unknown];
      return `<${findingText(resource)}.${findingText(attribute)}>`;
    }
    if ('Ref' in v) return `<${findingText(v.Ref)}>`;
  }
  return JSON.stringify(value);
}

/**
 * Acknowledge AwsSolutions-IAM5 (wildcard permissions) for exactly these resource
 * ARNs granted by policies under `scope`, and nothing else.
 */
export function acknowledgeWildcardResources(scope: IConstruct, resources: string[], reason: string): void {
  const stack = Stack.of(scope);
  for (const resource of resources) {
    acknowledge(scope, `AwsSolutions-IAM5[Resource::${findingText(stack.resolve(resource))}]`, reason);
  }
}
