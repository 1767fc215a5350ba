export * from './export.ts';
export * from './export-file.ts';
