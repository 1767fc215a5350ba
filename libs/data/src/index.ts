export * from './batching';
export * from './gsm8k';
export * from './mawps';
export * from './prompts';
export * from './demonstrations';
