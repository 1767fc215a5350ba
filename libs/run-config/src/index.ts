export * from './run-config.ts';
