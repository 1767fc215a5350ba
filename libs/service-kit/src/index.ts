// Shared bootstrap of the GSIL services: config validation, logging, metrics, the gRPC
// server with health, reflection, error mapping and graceful shutdown, and services run
// as child processes.
export * from './config.js';
export * from './errors.js';
export * from './handlers.js';
export * from './health-client.js';
export * from './logger.js';
export * from './metrics.js';
export * from './server.js';
export * from './service-process.js';
