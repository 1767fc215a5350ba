export * from './batching';
export * from './demonstrations';
export * from './gsm8k';
export * from './mawps';
export * from './prompts';
