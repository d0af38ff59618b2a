/**
 * Set environment variables for a test file and give back a function that puts them as they were: test files
 * share a worker's process (vitest.config.ts), so a file leaves the environment as it found it.
 */
export function setEnv(values: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}
