export * from './answers';
export * from './gsm8k-metrics';
export * from './mawps-metrics';
export * from './nll';
export * from './prefix-equation';
export * from './task-metrics';
