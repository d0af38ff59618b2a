#!/usr/bin/env node
// The `azs3copy` command: runs the TypeScript CLI through tsx, so a fresh clone needs no build step.
// The AWS SDK's Node-version notice would break the one-line error contract; it says nothing actionable here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { register } = await import('tsx/esm/api');
register();
await import('./azs3copy.ts');
