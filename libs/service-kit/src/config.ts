import type { z } from 'zod';

/**
 * Where a service's configuration comes from, lowest precedence first: schema defaults,
 * environment variables (`<envPrefix><FIELD_IN_SNAKE_CASE>`, e.g. GSIL_SAMPLER_PORT for
 * `port`), command-line flags (`--metrics-port 9464` or `--metrics-port=9464` for
 * `metricsPort`), then explicit `overrides` (already typed, e.g. from a test or `gsil run`).
 */
export interface ConfigSources {
  /** e.g. "GSIL_SAMPLER_"; without it the environment is not read. */
  envPrefix?: string;
  /** Defaults to process.env when envPrefix is set. */
  env?: Record<string, string | undefined>;
  /** Command-line arguments after the program name; flags not in the schema are ignored. */
  argv?: string[];
  overrides?: Record<string, unknown>;
}

/** The start-up failure: one sentence per invalid field. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type AnySchema = z.ZodType;
type ObjectSchema = z.ZodObject<Record<string, AnySchema>>;

interface FieldDef {
  type: string;
  innerType?: AnySchema;
  defaultValue?: unknown;
  entries?: Record<string, string>;
}

function fieldDef(field: AnySchema): FieldDef {
  return (field as unknown as { _zod: { def: FieldDef } })._zod.def;
}

/** The schema type under default/optional/nullable wrappers: "number", "boolean", ... */
function baseType(field: AnySchema): string {
  let def = fieldDef(field);
  while (def.innerType && ['default', 'optional', 'nullable', 'prefault'].includes(def.type)) {
    def = fieldDef(def.innerType);
  }
  return def.type;
}

export function camelToSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export function camelToKebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/**
 * Converts a string from env or argv to the field's type. A string that does not convert
 * is passed on unchanged so that validation reports it with the value received.
 */
function fromString(field: AnySchema, text: string): unknown {
  switch (baseType(field)) {
    case 'number':
    case 'int': {
      const value = Number(text);
      return text.trim() === '' || Number.isNaN(value) ? text : value;
    }
    case 'boolean':
      if (['true', '1', 'yes'].includes(text.toLowerCase())) return true;
      if (['false', '0', 'no'].includes(text.toLowerCase())) return false;
      return text;
    case 'array':
      return text === '' ? [] : text.split(',');
    default:
      return text;
  }
}

interface RawValue {
  value: unknown;
  origin: string;
}

/** Collects raw values per field from env, argv and overrides, remembering where each came from. */
export function mergeConfigSources(
  schema: ObjectSchema,
  sources: ConfigSources,
): Map<string, RawValue> {
  const raw = new Map<string, RawValue>();
  const shape = schema.shape;

  if (sources.envPrefix) {
    const env = sources.env ?? process.env;
    for (const [key, field] of Object.entries(shape)) {
      const envName = sources.envPrefix + camelToSnake(key);
      const text = env[envName];
      if (text !== undefined) raw.set(key, { value: fromString(field, text), origin: envName });
    }
  }

  const argv = sources.argv ?? [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const key = Object.keys(shape).find((k) => camelToKebab(k) === flag);
    if (!key) continue;
    const field = shape[key];
    let text: string;
    if (eq >= 0) text = arg.slice(eq + 1);
    else if (baseType(field) === 'boolean' && (argv[i + 1] ?? '--').startsWith('--')) text = 'true';
    else text = argv[++i] ?? '';
    raw.set(key, { value: fromString(field, text), origin: `--${flag}` });
  }

  for (const [key, value] of Object.entries(sources.overrides ?? {})) {
    if (value !== undefined) raw.set(key, { value, origin: 'override' });
  }
  return raw;
}

/**
 * The fields of `schema` set by `--kebab-case value` flags in `argv`, converted to the
 * fields' types, and the flags the schema does not know (for a clear error upstream).
 */
export function configFromArgv(
  schema: ObjectSchema,
  argv: string[],
): { values: Record<string, unknown>; unknown: string[] } {
  const values = Object.fromEntries(
    [...mergeConfigSources(schema, { argv })].map(([key, { value }]) => [key, value]),
  );
  const known = new Set(Object.keys(schema.shape).map(camelToKebab));
  const unknown = argv
    .filter((arg) => arg.startsWith('--'))
    .map((arg) => arg.slice(2).split('=')[0])
    .filter((flag) => !known.has(flag));
  return { values, unknown };
}

/** One line per field: name, type, default and description, for `--help` and the docs. */
export function describeConfig(schema: ObjectSchema, envPrefix?: string): string[] {
  return Object.entries(schema.shape).map(([key, field]) => {
    const def = fieldDef(field);
    const fallback = def.type === 'default' ? ` (default ${JSON.stringify(def.defaultValue)})` : '';
    const env = envPrefix ? `, env ${envPrefix}${camelToSnake(key)}` : '';
    const doc = field.description ?? 'undocumented';
    return `--${camelToKebab(key)} <${baseType(field)}>${env}${fallback}: ${doc}`;
  });
}

/**
 * Validates a service configuration at start-up. Throws a ConfigError whose lines each name
 * the field, the value received (and where it came from) and what is accepted.
 *
 * @example
 *   const config = defineConfig(SamplerConfig, { envPrefix: 'GSIL_SAMPLER_', argv });
 */
export function defineConfig<S extends ObjectSchema>(schema: S, sources: ConfigSources = {}) {
  const raw = mergeConfigSources(schema, sources);
  const input = Object.fromEntries([...raw].map(([key, { value }]) => [key, value]));
  const result = schema.safeParse(input);
  if (result.success) return result.data as z.infer<S>;

  const problems = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '');
    if (issue.code === 'unrecognized_keys') {
      return `unknown field(s) ${issue.keys.join(', ')}; accepted fields: ${Object.keys(schema.shape).join(', ')}`;
    }
    const given = raw.get(key);
    // An element of a list field is named by its index; show that element, not the list.
    let value = given?.value;
    for (const step of issue.path.slice(1)) {
      value = (value as Record<PropertyKey, unknown> | undefined)?.[step as PropertyKey];
    }
    const received = given ? `${JSON.stringify(value)} (from ${given.origin})` : 'nothing';
    const doc = schema.shape[key]?.description;
    return `${issue.path.join('.')}: received ${received}; ${issue.message}${doc ? ` (${doc})` : ''}`;
  });
  throw new ConfigError(problems);
}
