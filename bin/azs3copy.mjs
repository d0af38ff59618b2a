#!/usr/bin/env node
// The `azs3copy` command: runs the CLI that `npm ci` prebuilt into dist/ (bin/build.mjs), first rebuilding it
// when it is missing or older than the sources, so neither a TypeScript loader nor old code ever runs.
import { ensureBuilt } from './build.mjs';

// The AWS SDK's Node-version notice would break the one-line error contract; it says nothing actionable here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await ensureBuilt('azs3copy');
await import('../dist/azs3copy.mjs');
