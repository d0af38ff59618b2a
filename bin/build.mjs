#!/usr/bin/env node
/**
 * Builds the command line (bin/azs3copy.ts) and the CDK app (bin/app.ts) into dist/
 * as plain JavaScript, so neither needs a TypeScript loader when it runs. `npm ci`
 * runs it (the `prepare` script), and so does the test setup; the launchers
 * (bin/azs3copy.mjs, bin/app.mjs) call `ensureBuilt` to rebuild a build that is
 * missing or older than its sources, so old code never runs silently.
 *
 * The project's own code is bundled, and the packages it uses with it (but those in
 * EXTERNAL): opening and compiling hundreds of small files cost a copy about 0.2 s of
 * its start. With code splitting, each `import()` of a command in the dispatcher is
 * its own chunk, and so is each SDK: `--help` loads a few kilobytes and no SDK. The
 * stamp (dist/build.json) names the packages in each file, for the test of what a
 * command loads.
 *
 * Plain JavaScript, and esbuild through its JS API only: this runs before anything
 * else is built, and no dependency's install script is needed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'dist');
/** What the last build was made from and what it wrote; written last, so its presence means a whole build. */
const STAMP = join(OUT, 'build.json');
/** Files that shape the build besides the bundled sources. */
const BUILD_FILES = ['bin/build.mjs', 'tsconfig.json'];
/** What npm rewrites when it installs or changes packages (the bundled ones among them). */
const INSTALL_RECORDS = ['package-lock.json', 'node_modules/.package-lock.json'];

/**
 * Packages left as imports from node_modules; every other one is bundled into dist/. Bundled, the SDKs a copy
 * loads (the S3 client and Azure's blob client with theirs, about 300 files) load in 0.32 s instead of 0.55 s
 * (`node -e "await import(...)"`, least of 3). Left out: the CDK and the build tools (the app's synthesis
 * loads them as packages), a native module, and what only some runs load and brings many files of its own
 * (@azure/identity with MSAL: only a source that signs in to Entra ID).
 */
const EXTERNAL = ['aws-cdk-lib', 'constructs', 'cdk-nag', 'esbuild', 'typescript', 'tsx', 'vitest', '@node-rs/crc32', '@azure/identity'];

const BUILD_OPTIONS = {
  entryPoints: { azs3copy: 'bin/azs3copy.ts', app: 'bin/app.ts' },
  outdir: 'dist',
  absWorkingDir: ROOT,
  bundle: true,
  plugins: [{
    name: 'packages-external-but-bundled',
    setup(build) {
      // A bare import stays an import if it is a built-in or its package is EXTERNAL.
      build.onResolve({ filter: /^[^./]/ }, ({ path }) =>
        isBuiltin(path) || EXTERNAL.some((name) => path === name || path.startsWith(`${name}/`)) ? { path, external: true } : undefined);
    },
  }],
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  // The packages' ES module builds where they have them: imported (also dynamically) as they are written.
  mainFields: ['module', 'main'],
  // A bundled CommonJS package's require() of a built-in needs a require in an ES module.
  banner: { js: "import { createRequire as __azs3copyCreateRequire } from 'node:module'; const require = __azs3copyCreateRequire(import.meta.url);" },
  // Error classes keep their names in stack traces, as in the sources.
  keepNames: true,
  // For NODE_OPTIONS=--enable-source-maps when debugging; nothing reads them otherwise.
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  write: false,
  logLevel: 'silent',
};

/**
 * Build dist/. Each file is written beside its place and renamed into it, so a
 * process starting meanwhile reads whole files. `prune` removes what earlier builds
 * wrote and this one did not; an automatic rebuild leaves it, since a process
 * started before it may still import an earlier chunk.
 */
export async function build({ prune = true } = {}) {
  const started = Date.now();
  const { build: esbuild } = await import('esbuild');
  const result = await esbuild(BUILD_OPTIONS);
  const outputs = result.outputFiles.map((file) => file.path);
  // Chunks before the entries that import them, the stamp last.
  const isChunk = (file) => file.path.startsWith(join(OUT, 'chunks'));
  for (const file of [...result.outputFiles.filter(isChunk), ...result.outputFiles.filter((file) => !isChunk(file))]) {
    writeWhole(file.path, file.contents);
  }
  if (prune) for (const file of filesUnder(OUT)) if (file !== STAMP && !outputs.includes(file)) rmSync(file);
  const sources = {};
  // The packages' files are not stamped one by one (thousands of stats at every start): npm's record of what it
  // installed changes whenever they do.
  const inputs = Object.keys(result.metafile.inputs).filter((file) => !file.startsWith('node_modules/'));
  for (const file of [...inputs, ...BUILD_FILES, ...INSTALL_RECORDS.filter((file) => existsSync(join(ROOT, file)))]) {
    const mtime = statSync(join(ROOT, file)).mtimeMs;
    // A source changed while it was being bundled: the next start rebuilds.
    sources[file] = mtime >= started ? 0 : mtime;
  }
  writeWhole(STAMP, JSON.stringify({ sources, outputs: outputs.map((file) => relative(ROOT, file)), packages: packagesByOutput(result.metafile) }, null, 1) + '\n');
  return { seconds: (Date.now() - started) / 1000, files: outputs.length };
}

/** The packages bundled into each output file, by name (what a test of what a command loads looks for). */
function packagesByOutput(metafile) {
  const out = {};
  for (const [file, output] of Object.entries(metafile.outputs)) {
    const names = new Set();
    for (const input of Object.keys(output.inputs)) {
      const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (m) names.add(m[1]);
    }
    if (names.size > 0) out[file] = [...names].sort();
  }
  return out;
}

/** Whether dist/ holds a whole build of the current sources: a file read and a stat per source, about a millisecond. */
function isFresh() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return false;
  }
  if (!stamp.outputs.every((file) => existsSync(join(ROOT, file)))) return false;
  return Object.entries(stamp.sources).every(([file, mtime]) => {
    try {
      return statSync(join(ROOT, file)).mtimeMs === mtime;
    } catch {
      return false;
    }
  });
}

/** Rebuild dist/ when it is missing or stale; when that fails, say so in one line as `program` and exit 3. */
export async function ensureBuilt(program) {
  if (isFresh()) return;
  try {
    await build({ prune: false });
  } catch (error) {
    process.stderr.write(`${program}: dist/ is missing or older than the sources, and rebuilding it failed (${reason(error)}): fix that, then run "npm run build"\n`);
    process.exit(3);
  }
}

function reason(error) {
  const first = error?.errors?.[0];
  if (first?.location) return `${first.location.file}:${first.location.line}:${first.location.column}: ${first.text}`;
  return String(error?.message ?? error).split('\n')[0];
}

function writeWhole(path, contents) {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));
}

/** Run as a script (npm's prepare and build, the test setup), not imported by a launcher. */
function isMain() {
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) {
  try {
    const { seconds, files } = await build();
    if (!process.argv.includes('--quiet')) process.stdout.write(`built dist/ (the azs3copy command and the CDK app, ${files} files) in ${seconds.toFixed(1)} s\n`);
  } catch (error) {
    process.stderr.write(`build: ${reason(error)}\n`);
    process.exit(1);
  }
}
