import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * A JSON logger writing to stderr (stdout stays free for command output), level from
 * GSIL_LOG_LEVEL (default "info"). Ids travel on child loggers:
 * `logger.child({ runId, iteration })`, `logger.child({ requestId })`.
 */
export function createLogger(name: string, level?: string): Logger {
  const wanted = level ?? process.env.GSIL_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(wanted)) {
    throw new Error(
      `GSIL_LOG_LEVEL must be one of ${LEVELS.join(', ')}; received ${JSON.stringify(wanted)}`,
    );
  }
  // Synchronous writes: a crash or process.exit must not lose the last lines.
  return pino({ name, level: wanted }, pino.destination({ fd: 2, sync: true }));
}
