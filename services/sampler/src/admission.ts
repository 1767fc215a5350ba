// Bounds the work a replica accepts: every admitted sequence (running or waiting for a
// batch slot) holds one ticket until its request ends, however it ends.
import { GsilError, Status } from '@gsil/service-kit';

export class Admission {
  private admitted = 0;

  constructor(readonly maxQueuedSequences: number) {}

  /** Sequences admitted now (running plus waiting). */
  get queuedSequences(): number {
    return this.admitted;
  }

  /**
   * Admits `sequences` or throws RESOURCE_EXHAUSTED, which tells a client (the trainer)
   * to retry later or on another replica. Returns the release function; calling it
   * more than once releases once.
   */
  admit(sequences: number): () => void {
    if (sequences > this.maxQueuedSequences) {
      throw new GsilError(
        Status.RESOURCE_EXHAUSTED,
        `request needs ${sequences} sequences (prompts x num_samples) but this sampler queues at most ${this.maxQueuedSequences}; split it into smaller requests`,
      );
    }
    if (this.admitted + sequences > this.maxQueuedSequences) {
      throw new GsilError(
        Status.RESOURCE_EXHAUSTED,
        `queue full: ${this.admitted} of ${this.maxQueuedSequences} sequences admitted, request needs ${sequences}; retry later or on another replica`,
      );
    }
    this.admitted += sequences;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.admitted -= sequences;
    };
  }
}
