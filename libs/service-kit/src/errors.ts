import { Metadata, type ServiceError, status } from '@grpc/grpc-js';

/** gRPC status codes by name, e.g. `Status.INVALID_ARGUMENT` (3). */
export const Status = status;
export type StatusCode = status;

/**
 * An error that knows its gRPC status. Handlers throw it; the server wrapper turns it into
 * the status and message the client sees. `cause` keeps the original error for the logs.
 */
export class GsilError extends Error {
  readonly code: StatusCode;

  constructor(code: StatusCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'GsilError';
    this.code = code;
  }

  /** The name of the status code, e.g. "INVALID_ARGUMENT". */
  get codeName(): string {
    return statusName(this.code);
  }
}

export function statusName(code: number): string {
  return status[code] ?? `CODE_${code}`;
}

/** A request field is missing or malformed: `invalidArgument('model.name', 'is required')`. */
export function invalidArgument(field: string, message: string, cause?: unknown): GsilError {
  return new GsilError(status.INVALID_ARGUMENT, `${field} ${message}`, cause);
}

export function notFound(message: string, cause?: unknown): GsilError {
  return new GsilError(status.NOT_FOUND, message, cause);
}

export function failedPrecondition(message: string, cause?: unknown): GsilError {
  return new GsilError(status.FAILED_PRECONDITION, message, cause);
}

export function resourceExhausted(message: string, cause?: unknown): GsilError {
  return new GsilError(status.RESOURCE_EXHAUSTED, message, cause);
}

export function unavailable(message: string, cause?: unknown): GsilError {
  return new GsilError(status.UNAVAILABLE, message, cause);
}

export function unimplemented(message: string): GsilError {
  return new GsilError(status.UNIMPLEMENTED, message);
}

export function internal(message: string, cause?: unknown): GsilError {
  return new GsilError(status.INTERNAL, message, cause);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Any thrown value as a GsilError. Unknown errors become INTERNAL with the cause's message
 * kept, so the caller sees what went wrong; a ServiceError from a downstream call keeps its
 * code (a failing sampler reached by the trainer stays UNAVAILABLE, say).
 */
export function toGsilError(err: unknown): GsilError {
  if (err instanceof GsilError) return err;
  if (isServiceError(err)) return new GsilError(err.code, err.details || err.message, err);
  return new GsilError(status.INTERNAL, `internal error: ${errorMessage(err)}`, err);
}

/** The object grpc-js expects in a callback or `call.destroy`. */
export function toServiceError(err: GsilError): ServiceError {
  const serviceError = new Error(err.message) as ServiceError;
  serviceError.code = err.code;
  serviceError.details = err.message;
  serviceError.metadata = new Metadata();
  return serviceError;
}

export function isServiceError(err: unknown): err is ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<ServiceError>).code === 'number' &&
    'details' in err &&
    'metadata' in err
  );
}
