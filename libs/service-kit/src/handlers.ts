import { randomUUID } from 'node:crypto';
import type {
  ServerUnaryCall,
  ServerWritableStream,
  ServiceDefinition,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type GsilError, statusName, toGsilError, toServiceError } from './errors.js';
import { type RpcMetrics, recordRpc } from './metrics.js';

/** Metadata key a client may set to correlate its logs with ours; otherwise a uuid is made. */
export const REQUEST_ID_HEADER = 'x-request-id';

interface CallContext {
  logger: Logger;
  requestId: string;
}

const callContexts = new WeakMap<object, CallContext>();

/** The logger of a call, carrying its method and requestId (the server's logger outside calls). */
export function callLogger(call: object, fallback: Logger): Logger {
  return callContexts.get(call)?.logger ?? fallback;
}

export function callRequestId(call: object): string | undefined {
  return callContexts.get(call)?.requestId;
}

/** A grpc-js handler of any shape; its arguments are checked by the generated types. */
type AnyHandler = (...args: never[]) => unknown;

interface WrapOptions {
  logger: Logger;
  metrics?: RpcMetrics;
}

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

function begin(call: AnyCall, method: string, options: WrapOptions) {
  const header = call.metadata.get(REQUEST_ID_HEADER)[0];
  const requestId = typeof header === 'string' && header !== '' ? header : randomUUID();
  const logger = options.logger.child({ method, requestId });
  callContexts.set(call, { logger, requestId });
  const startMs = performance.now();
  let done = false;
  /** Logs and counts the call once, whatever path ends it. */
  const finish = (code: string, err?: GsilError) => {
    if (done) return;
    done = true;
    const durationMs = performance.now() - startMs;
    if (options.metrics) recordRpc(options.metrics, method, code, durationMs);
    const fields = { code, durationMs: Math.round(durationMs * 10) / 10 };
    if (!err) logger.info(fields, 'call finished');
    else if (err.code === 13 || err.code === 2) logger.error({ ...fields, err }, err.message);
    else logger.warn({ ...fields, error: err.message }, 'call failed');
  };
  return { finish };
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as Promise<unknown> | undefined)?.then === 'function';
}

/**
 * Unary handler wrapper. The handler may use the callback or return a promise of the
 * response; a thrown or rejected error becomes its gRPC status (see toGsilError).
 */
function wrapUnary(method: string, handler: AnyHandler, options: WrapOptions) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    const { finish } = begin(call, method, options);
    let responded = false;
    const respond: sendUnaryData<unknown> = (err, value) => {
      // A handler that answers twice (say, after an error without `return`) must not
      // reach grpc-js twice.
      if (responded) return;
      responded = true;
      if (err) {
        const gsilError = toGsilError(err);
        finish(statusName(gsilError.code), gsilError);
        callback(toServiceError(gsilError));
      } else {
        finish('OK');
        callback(null, value);
      }
    };
    try {
      const result = (handler as (c: unknown, cb: unknown) => unknown)(call, respond);
      if (isPromise(result)) {
        result.then((value) => value !== undefined && respond(null, value), respond);
      }
    } catch (err) {
      respond(err as Error);
    }
  };
}

/**
 * Server-streaming handler wrapper. An async handler has the stream ended for it when its
 * promise resolves; a thrown or rejected error ends the stream with its gRPC status.
 */
function wrapServerStream(method: string, handler: AnyHandler, options: WrapOptions) {
  return (call: ServerWritableStream<unknown, unknown>) => {
    const { finish } = begin(call, method, options);
    call.on('finish', () => finish('OK'));
    call.on('cancelled', () => finish('CANCELLED'));
    const fail = (err: unknown) => {
      const gsilError = toGsilError(err);
      finish(statusName(gsilError.code), gsilError);
      if (!call.writableEnded) call.emit('error', toServiceError(gsilError));
    };
    try {
      const result = (handler as (c: unknown) => unknown)(call);
      if (isPromise(result)) {
        result.then(() => {
          if (!call.writableEnded && !call.cancelled) call.end();
        }, fail);
      }
    } catch (err) {
      fail(err);
    }
  };
}

/**
 * Wraps every method of an implementation for logging, metrics and error mapping. Client-
 * and bidi-streaming methods are passed through unchanged (none of our contracts use them).
 */
export function wrapImplementation(
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
  options: WrapOptions,
): UntypedServiceImplementation {
  const wrapped: UntypedServiceImplementation = {};
  for (const [key, method] of Object.entries(definition)) {
    const handler = implementation[key] as AnyHandler | undefined;
    if (!handler) continue;
    if (!method.requestStream && !method.responseStream) {
      wrapped[key] = wrapUnary(method.path, handler, options);
    } else if (!method.requestStream && method.responseStream) {
      wrapped[key] = wrapServerStream(method.path, handler, options);
    } else {
      wrapped[key] = handler as UntypedServiceImplementation[string];
    }
  }
  return wrapped;
}
