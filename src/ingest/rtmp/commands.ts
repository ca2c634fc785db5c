/**
 * NetConnection / NetStream commands: what a publisher sends, type-checked (NMS crashed on
 * `publish(false)` and on a null command object), and the replies encoders wait for
 * (reference §4: ffmpeg needs only the connect and createStream `_result`s and Publish.Start).
 */
import { encodeAmf0 } from '../../media/amf/amf0.js';
import type { AmfObject, AmfValue } from '../../media/types.js';

export type Command =
  | { name: 'connect'; txn: number; props: AmfObject | undefined }
  | { name: 'createStream'; txn: number }
  /** `streamName` false is Wirecast's unpublish; anything that is not a string or false is malformed. */
  | { name: 'publish'; txn: number; streamName: string | false | undefined; streamId: number }
  | { name: 'unpublish'; txn: number; via: 'FCUnpublish' | 'deleteStream' | 'closeStream' }
  | { name: 'announce'; txn: number; via: 'releaseStream' | 'FCPublish' }
  | { name: 'play'; txn: number; via: string }
  | { name: 'ignored'; txn: number; via: string };

function isObject(v: AmfValue): v is AmfObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

const PLAY_COMMANDS = new Set(['play', 'play2', 'seek', 'pause', 'receiveAudio', 'receiveVideo']);

/**
 * Reads a decoded command message: [name, transaction id, command object, ...args]. Undefined when
 * it is not a command at all (the first value is not a string).
 */
export function readCommand(values: readonly AmfValue[], streamId: number): Command | undefined {
  const [name, txnValue, obj, arg] = values;
  if (typeof name !== 'string') return undefined;
  const txn = typeof txnValue === 'number' && Number.isFinite(txnValue) ? txnValue : 0;
  switch (name) {
    case 'connect':
      return { name, txn, props: obj !== undefined && isObject(obj) ? obj : undefined };
    case 'createStream':
      return { name, txn };
    case 'publish':
      return { name, txn, streamName: typeof arg === 'string' || arg === false ? arg : undefined, streamId };
    case 'FCUnpublish':
    case 'deleteStream':
    case 'closeStream':
      return { name: 'unpublish', txn, via: name };
    case 'releaseStream':
    case 'FCPublish':
      return { name: 'announce', txn, via: name };
    default:
      return PLAY_COMMANDS.has(name) ? { name: 'play', txn, via: name } : { name: 'ignored', txn, via: name };
  }
}

export function connectResult(txn: number, objectEncoding: number): Buffer {
  return encodeAmf0([
    '_result', txn,
    { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
    { level: 'status', code: 'NetConnection.Connect.Success', description: 'Connection succeeded.', objectEncoding },
  ]);
}

export function connectRejected(txn: number, description: string): Buffer {
  return encodeAmf0(['_error', txn, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description }]);
}

/** `_result` with a single value (createStream's stream id; undefined for releaseStream/FCPublish, as SRS does). */
export function result(txn: number, value: AmfValue): Buffer {
  return encodeAmf0(['_result', txn, null, value]);
}

export function onStatus(level: 'status' | 'error', code: string, description: string): Buffer {
  return encodeAmf0(['onStatus', 0, null, { level, code, description }]);
}
