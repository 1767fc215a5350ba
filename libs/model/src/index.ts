export * from './backend.ts';
export * from './checkpoint.ts';
export * from './config.ts';
export * from './llama2c.ts';
export * from './safetensors.ts';
export * from './tfjs-model.ts';
