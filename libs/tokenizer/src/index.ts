export * from './convert.ts';
export * from './gsil-tokenizer.ts';
export * from './sentencepiece-model.ts';
