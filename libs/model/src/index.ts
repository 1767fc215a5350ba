export * from './config.ts';
export * from './llama2c.ts';
