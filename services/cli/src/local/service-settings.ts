// Every setting of each service, as `gsil serve <service>` accepts it: a `--kebab-case`
// flag or a GSIL_<SERVICE>_* environment variable. The schemas belong to the services;
// they are loaded only when needed (help text, or starting that service).
import { createRequire } from 'node:module';
import { configFromArgv, describeConfig } from '@gsil/service-kit';

const require = createRequire(import.meta.url);

type Schema = Parameters<typeof describeConfig>[0];

interface ServiceSettings {
  schema: Schema;
  envPrefix: string;
}

function settingsOf(service: string): ServiceSettings {
  switch (service) {
    case 'sampler': {
      const { SamplerConfig, ENV_PREFIX } = require('../../../sampler/src/config.ts');
      return { schema: SamplerConfig, envPrefix: ENV_PREFIX };
    }
    case 'ratio': {
      const { RatioConfigSchema, RATIO_ENV_PREFIX } = require('../../../ratio/src/config.ts');
      return { schema: RatioConfigSchema, envPrefix: RATIO_ENV_PREFIX };
    }
    case 'trainer': {
      const { TrainerServerConfigSchema } = require('../../../trainer/src/server-config.ts');
      return { schema: TrainerServerConfigSchema, envPrefix: 'GSIL_TRAINER_' };
    }
    default:
      throw new Error(`unknown service '${service}'; expected one of sampler, ratio, trainer`);
  }
}

/** The help text listing every setting of every service. */
export function settingsHelp(): string {
  const sections = ['sampler', 'ratio', 'trainer'].map((service) => {
    const { schema, envPrefix } = settingsOf(service);
    const lines = describeConfig(schema, envPrefix).map((line) => `  ${line}`);
    return `Settings of ${service}:\n${lines.join('\n')}`;
  });
  return `\n${sections.join('\n\n')}\n`;
}

/** Settings given as extra `--flag value` arguments; an unknown flag is an error. */
export function settingsFromArgs(service: string, args: string[]): Record<string, unknown> {
  const { values, unknown } = configFromArgv(settingsOf(service).schema, args);
  if (unknown.length > 0) {
    throw new Error(
      `${unknown.map((flag) => `--${flag}`).join(', ')}: not a setting of the ${service}; ` +
        '`gsil serve --help` lists them',
    );
  }
  return values;
}
