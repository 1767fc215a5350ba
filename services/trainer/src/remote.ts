// The trainer's view of the sampler and ratio replicas: one gRPC client per address, and
// promise wrappers whose calls are cancelled when the run's AbortSignal fires (CancelRun).

import { type ClientReadableStream, credentials, Metadata, status } from '@grpc/grpc-js';
import {
  type Completion,
  type GenerateRequest,
  type LogProbsRequest,
  type LogProbsResponse,
  RatioServiceClient,
  SamplerServiceClient,
} from '@gsil/contracts';
import { GsilError } from '@gsil/service-kit';

/** Sampler outputs can be large (many completions of logprobs); allow 64 MiB messages. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const CLIENT_OPTIONS = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  // An address that resolves to several replicas (a Kubernetes headless Service,
  // dns:///gsil-sampler:50051) spreads its calls over all of them, not just the first.
  'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
};

export interface CallOptions {
  timeoutMs: number;
  signal: AbortSignal;
}

function cancelledError(signal: AbortSignal): GsilError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'run cancelled';
  return new GsilError(status.CANCELLED, reason, signal.reason);
}

export class SamplerReplicas {
  readonly clients: SamplerServiceClient[];

  constructor(readonly addresses: readonly string[]) {
    this.clients = addresses.map(
      (address) => new SamplerServiceClient(address, credentials.createInsecure(), CLIENT_OPTIONS),
    );
  }

  /** All completions of one Generate call; the stream's own order (finish order). */
  generate(replica: number, request: GenerateRequest, options: CallOptions): Promise<Completion[]> {
    const { signal } = options;
    if (signal.aborted) return Promise.reject(cancelledError(signal));
    return new Promise((resolve, reject) => {
      const completions: Completion[] = [];
      const stream: ClientReadableStream<Completion> = this.clients[replica].generate(
        request,
        new Metadata(),
        { deadline: Date.now() + options.timeoutMs },
      );
      const onAbort = () => stream.cancel();
      signal.addEventListener('abort', onAbort);
      stream.on('data', (completion: Completion) => completions.push(completion));
      stream.on('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(signal.aborted ? cancelledError(signal) : err);
      });
      stream.on('end', () => {
        signal.removeEventListener('abort', onAbort);
        resolve(completions);
      });
    });
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}

export class RatioReplicas {
  readonly clients: RatioServiceClient[];

  constructor(readonly addresses: readonly string[]) {
    this.clients = addresses.map(
      (address) => new RatioServiceClient(address, credentials.createInsecure(), CLIENT_OPTIONS),
    );
  }

  logProbs(
    replica: number,
    request: LogProbsRequest,
    options: CallOptions,
  ): Promise<LogProbsResponse> {
    const { signal } = options;
    if (signal.aborted) return Promise.reject(cancelledError(signal));
    return new Promise((resolve, reject) => {
      const call = this.clients[replica].logProbs(
        request,
        new Metadata(),
        { deadline: Date.now() + options.timeoutMs },
        (err, response) => {
          signal.removeEventListener('abort', onAbort);
          if (err) reject(signal.aborted ? cancelledError(signal) : err);
          else resolve(response);
        },
      );
      const onAbort = () => call.cancel();
      signal.addEventListener('abort', onAbort);
    });
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}
