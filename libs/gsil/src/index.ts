export * from './config';
export * from './losses';
