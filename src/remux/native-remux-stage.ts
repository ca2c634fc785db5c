/** The in-process path: FLV packets → fragmented MP4, no child process, no pipe copies. */
import type { ContainerOutput } from '../container/index.js';
import type { MediaPacket } from '../media/types.js';
import { FlvToFmp4 } from './native/flv-to-fmp4.js';
import type { RemuxExit, RemuxStage, RemuxStageEvents } from './remux-stage.js';

export class NativeRemuxStage implements RemuxStage {
  readonly kind = 'native' as const;
  readonly pid = undefined;
  private readonly remuxer: FlvToFmp4;
  private readonly events: RemuxStageEvents;
  private exit: RemuxExit | undefined;
  private resolveDone!: (e: RemuxExit) => void;
  private readonly donePromise = new Promise<RemuxExit>((r) => { this.resolveDone = r; });

  constructor(opts: { fragmentDurationMs: number | null }, events: RemuxStageEvents) {
    this.remuxer = new FlvToFmp4({ fragmentDurationMs: opts.fragmentDurationMs });
    this.events = events;
  }

  push(p: MediaPacket, receivedAt: number): void {
    if (this.exit) return;
    this.deliver(this.remuxer.push(p, receivedAt));
  }

  private deliver(outs: ContainerOutput[]): void {
    if (outs.length === 0) return;
    for (const o of outs) this.events.onBytes(o.bytes);
    this.events.onOutputs(outs);
  }

  end(): Promise<RemuxExit> {
    if (!this.exit) {
      try {
        this.deliver(this.remuxer.flush());
        this.exit = { clean: true, code: null, signal: null, droppedBytes: 0 };
      } catch (error) {
        this.exit = { clean: false, code: null, signal: null, droppedBytes: 0, error };
      }
      this.resolveDone(this.exit);
    }
    return this.donePromise;
  }

  done(): Promise<RemuxExit> {
    return this.donePromise;
  }
}
