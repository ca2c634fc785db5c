import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OssLocalServer } from '../../src/serve-oss/server.js';
import { OssStore } from '../../src/store/oss/oss-store.js';
import { describeStoreConformance } from '../helpers/store-conformance.js';

const CAP = 1024 * 1024;
const CREDS = { accessKeyId: 'conformance-id', accessKeySecret: 'conformance-secret-do-not-leak' };

/**
 * The same store suite as the fs backend, through the real client path: OssStore (undici, signed)
 * → serve-oss (HTTP, signature checked) → FsStore. Identical results are the point.
 */
for (const signatureVersion of ['v4', 'v1'] as const) {
  describeStoreConformance(`oss (${signatureVersion}) → serve-oss`, async () => {
    const dir = await mkdtemp(join(tmpdir(), `apc-ossconf-${signatureVersion}-`));
    const server = new OssLocalServer({ root: dir, port: 0, buckets: ['conformance'], credentials: [CREDS], maxObjectBytes: CAP, fsync: 'never' });
    const addr = await server.start();
    const store = new OssStore({
      kind: 'oss', endpoint: addr.url, bucket: 'conformance', region: 'cn-hangzhou', signatureVersion, pathStyle: true,
      accessKeyId: CREDS.accessKeyId, accessKeySecret: CREDS.accessKeySecret,
      timeouts: { connectMs: 2000, headersMs: 10_000, bodyMs: 10_000 },
    });
    return {
      store,
      maxObjectBytes: CAP,
      cleanup: async () => {
        await store.close();
        await server.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
}
