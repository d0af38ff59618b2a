/**
 * Lambda resources are run by the box, not by moto: these handlers give them
 * their names and ARNs and collect what the box needs to run them (the function,
 * its code and layers, its asynchronous invocation settings, its event sources).
 */
import { randomUUID } from 'node:crypto';
import { Unsupported, type ResourceHandler } from './types';

const fn: ResourceHandler = async (ctx) => {
  const { props, region, account } = ctx;
  if (props.PackageType === 'Image') throw new Unsupported('container image functions cannot run in the box');
  if (!String(props.Runtime ?? '').startsWith('nodejs')) throw new Unsupported(`runtime ${props.Runtime}: the box runs Node.js functions only`);
  const name = props.FunctionName ?? ctx.generatedName(64);
  const arn = `arn:aws:lambda:${region}:${account}:function:${name}`;
  const codeDir = ctx.assembly.assetDir(props.Code, `${ctx.logicalId}.Code`);
  ctx.plan.functions.push({ logicalId: ctx.logicalId, name, arn, props, codeDir });
  return { status: 'emulated', ref: name, name, attrs: { Arn: arn }, note: `runs in Node ${process.versions.node} child processes (the template asks for ${props.Runtime})` };
};

const layer: ResourceHandler = async (ctx) => {
  const name = ctx.props.LayerName ?? ctx.generatedName(64);
  const arn = `arn:aws:lambda:${ctx.region}:${ctx.account}:layer:${name}:1`;
  ctx.plan.layers.set(arn, ctx.assembly.assetDir(ctx.props.Content, `${ctx.logicalId}.Content`));
  return { status: 'emulated', ref: arn, name, attrs: { LayerVersionArn: arn } };
};

const invokeConfig: ResourceHandler = async (ctx) => {
  ctx.plan.invokeConfigs.push({ logicalId: ctx.logicalId, props: ctx.props });
  return { status: 'emulated', ref: ctx.logicalId };
};

const mapping: ResourceHandler = async (ctx) => {
  const { props } = ctx;
  const source = String(props.EventSourceArn ?? '');
  if (!source.startsWith('arn:aws:sqs:')) throw new Unsupported(`event source ${source || '(none)'}: the box polls SQS queues only`);
  if (props.FilterCriteria) throw new Unsupported('FilterCriteria on an event source mapping is not emulated');
  const uuid = randomUUID();
  ctx.plan.mappings.push({ logicalId: ctx.logicalId, uuid, props });
  return { status: 'emulated', ref: uuid, attrs: { Id: uuid, EventSourceMappingArn: `arn:aws:lambda:${ctx.region}:${ctx.account}:event-source-mapping:${uuid}` } };
};

const permission: ResourceHandler = async (ctx) => ({
  status: 'emulated',
  ref: ctx.logicalId,
  note: `${ctx.props.Principal} may invoke ${ctx.props.FunctionName}: the box makes the deliveries itself and checks no resource policy`,
});

export const LAMBDA_HANDLERS: Record<string, ResourceHandler> = {
  'AWS::Lambda::Function': fn,
  'AWS::Lambda::LayerVersion': layer,
  'AWS::Lambda::EventInvokeConfig': invokeConfig,
  'AWS::Lambda::EventSourceMapping': mapping,
  'AWS::Lambda::Permission': permission,
};
