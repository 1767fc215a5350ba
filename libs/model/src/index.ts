export * from './config.ts';
export * from './llama2c.ts';
export * from './checkpoint.ts';
export * from './safetensors.ts';
