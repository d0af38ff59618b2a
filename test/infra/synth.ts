/**
 * Synthesizes the stack for the infrastructure tests. Bundling is skipped unless
 * asked for (the template is the same; only asset hashes differ), so a test file
 * synthesizes in a few seconds; bundling.test.ts covers the real bundles.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CopyStack } from '../../lib/copy-stack';
import { settingsFromContext } from '../../lib/settings';

export interface Synthesized {
  app: App;
  stack: CopyStack;
  template: Template;
  json: Record<string, any>;
}

export function synthesize(context: Record<string, unknown> = {}, options: { bundle?: boolean; outdir?: string } = {}): Synthesized {
  const app = new App({
    outdir: options.outdir,
    context: { ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }), ...context },
  });
  const stack = new CopyStack(app, 'Azs3copy', {
    settings: settingsFromContext(app.node),
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() };
}

/** Resources of one type, keyed by logical id. */
export function resourcesOf(json: Record<string, any>, type: string): Record<string, any> {
  return Object.fromEntries(Object.entries(json.Resources as Record<string, any>).filter(([, r]) => r.Type === type));
}

/** The logical id of the function with this physical name. */
export function functionId(json: Record<string, any>, functionName: string): string {
  const found = Object.entries(resourcesOf(json, 'AWS::Lambda::Function')).find(([, r]) => r.Properties.FunctionName === functionName);
  if (!found) throw new Error(`no function named ${functionName}`);
  return found[0];
}

/** Every IAM statement attached to the execution role of the named function. */
export function statementsOf(json: Record<string, any>, functionName: string): any[] {
  const fn = json.Resources[functionId(json, functionName)];
  const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
  const role = json.Resources[roleId];
  const inline = (role.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement);
  const attached = Object.values(resourcesOf(json, 'AWS::IAM::Policy'))
    .filter((p) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
  expectNoManagedPolicies(role);
  return [...inline, ...attached];
}

function expectNoManagedPolicies(role: any) {
  if (role.Properties.ManagedPolicyArns?.length) throw new Error('a function role has a managed policy attached');
}

/** A value as a flat string, references written `<LogicalId.Attr>` or `<LogicalId>`. */
export function flat(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(flat).join(',');
  if (value && typeof value === 'object') {
    const v = value as Record<string, any>;
    if (v['Fn::Join']) return (v['Fn::Join'][1] as unknown[]).map(flat).join(v['Fn::Join'][0]);
    if (v['Fn::GetAtt']) return `<${v['Fn::GetAtt'][0]}.${v['Fn::GetAtt'][1]}>`;
    if (v.Ref) return `<${v.Ref}>`;
  }
  return JSON.stringify(value);
}

