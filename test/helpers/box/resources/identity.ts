/**
 * IAM roles and policies. Each role is created in moto as the template says, and
 * with it an IAM user that receives exactly the same policies (the role's inline
 * ones, each AWS::IAM::Policy and managed policy attached to it): moto enforces
 * IAM for users only, and a function runs with its role's user's key.
 */
import {
  AttachRolePolicyCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import { RoleUser } from '../iam';
import { Unsupported, unapplied, type ResourceContext, type ResourceHandler } from './types';

const json = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

function roleUser(ctx: ResourceContext, roleName: string): RoleUser | undefined {
  return ctx.plan.roleUsers.get(roleName);
}

const role: ResourceHandler = async (ctx) => {
  const { props, admin } = ctx;
  const name = props.RoleName ?? ctx.generatedName(64);
  const { Role } = await admin.iam.send(
    new CreateRoleCommand({
      RoleName: name,
      AssumeRolePolicyDocument: json(props.AssumeRolePolicyDocument),
      Path: props.Path,
      Description: props.Description,
      MaxSessionDuration: props.MaxSessionDuration,
      Tags: props.Tags,
    }),
  );
  const user = await RoleUser.create(admin.iam, `box-${name}`.slice(0, 64));
  ctx.plan.roleUsers.set(name, user);
  ctx.plan.roleUsers.set(Role!.Arn!, user);
  for (const policy of (props.Policies ?? []) as { PolicyName: string; PolicyDocument: unknown }[]) {
    await admin.iam.send(new PutRolePolicyCommand({ RoleName: name, PolicyName: policy.PolicyName, PolicyDocument: json(policy.PolicyDocument) }));
    await user.putPolicy(policy.PolicyName, policy.PolicyDocument);
  }
  for (const arn of (props.ManagedPolicyArns ?? []) as string[]) {
    await admin.iam.send(new AttachRolePolicyCommand({ RoleName: name, PolicyArn: arn }));
    await user.attachPolicy(arn);
  }
  const note = props.PermissionsBoundary ? 'PermissionsBoundary not enforced; ' : '';
  return {
    status: 'created',
    ref: name,
    name,
    attrs: { Arn: Role!.Arn!, RoleId: Role!.RoleId! },
    note: `${note}stood in for by IAM user ${user.userName}; ${unapplied(props, ['RoleName', 'AssumeRolePolicyDocument', 'Path', 'Description', 'MaxSessionDuration', 'Policies', 'ManagedPolicyArns']) ?? ''}`.replace(/; $/, ''),
  };
};

async function attachInline(ctx: ResourceContext, policyName: string, document: unknown): Promise<void> {
  const { props, admin } = ctx;
  for (const roleName of (props.Roles ?? []) as string[]) {
    await admin.iam.send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: policyName, PolicyDocument: json(document) }));
    await roleUser(ctx, roleName)?.putPolicy(policyName, document);
  }
  for (const userName of (props.Users ?? []) as string[]) {
    await admin.iam.send(new PutUserPolicyCommand({ UserName: userName, PolicyName: policyName, PolicyDocument: json(document) }));
  }
  if ((props.Groups ?? []).length) throw new Unsupported('policies attached to groups are not applied');
}

const policy: ResourceHandler = async (ctx) => {
  await attachInline(ctx, ctx.props.PolicyName, ctx.props.PolicyDocument);
  return { status: 'created', ref: ctx.props.PolicyName, name: ctx.props.PolicyName };
};

const managedPolicy: ResourceHandler = async (ctx) => {
  const { props, admin } = ctx;
  const name = props.ManagedPolicyName ?? ctx.generatedName(128);
  const { Policy } = await admin.iam.send(
    new CreatePolicyCommand({ PolicyName: name, PolicyDocument: json(props.PolicyDocument), Path: props.Path, Description: props.Description }),
  );
  for (const roleName of (props.Roles ?? []) as string[]) {
    await admin.iam.send(new AttachRolePolicyCommand({ RoleName: roleName, PolicyArn: Policy!.Arn! }));
    await roleUser(ctx, roleName)?.attachPolicy(Policy!.Arn!);
  }
  if ((props.Users ?? []).length || (props.Groups ?? []).length) throw new Unsupported('managed policies attached to users or groups are not applied');
  return { status: 'created', ref: Policy!.Arn!, name, attrs: { PolicyArn: Policy!.Arn! } };
};

export const IDENTITY_HANDLERS: Record<string, ResourceHandler> = {
  'AWS::IAM::Role': role,
  'AWS::IAM::Policy': policy,
  'AWS::IAM::ManagedPolicy': managedPolicy,
};
