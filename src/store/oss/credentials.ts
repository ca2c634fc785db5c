import { inspect } from 'node:util';
import { AppendcastError, ErrorCode } from '../../errors.js';

/** What the signers need. `OssCredentials` implements it; tests may pass a plain object. */
export interface SigningCredentials {
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
  /** STS session token; sent and signed as `x-oss-security-token`. */
  readonly securityToken?: string | undefined;
}

export interface OssCredentialsConfig {
  accessKeyId?: string | undefined;
  accessKeySecret?: string | undefined;
  securityToken?: string | undefined;
}

const REDACTED = '[REDACTED]';

/** Credentials are missing or unusable. */
export class OssCredentialsError extends AppendcastError {
  constructor(message: string) {
    super(ErrorCode.CredentialsMissing, message);
  }
}

/**
 * OSS credentials whose secret and token live in private fields and are redacted from `JSON.stringify`,
 * `util.inspect` and `String()`, so logging a config object never leaks them.
 */
export class OssCredentials implements SigningCredentials {
  readonly accessKeyId: string;
  readonly #accessKeySecret: string;
  readonly #securityToken: string | undefined;

  constructor(accessKeyId: string, accessKeySecret: string, securityToken?: string) {
    // `:`, `/`, `,` and whitespace would make the Authorization header ambiguous to parse.
    if (accessKeyId === '' || /[\s:/,]/.test(accessKeyId)) {
      throw new OssCredentialsError('OSS access key id is empty or contains whitespace, ":", "/" or ","');
    }
    if (accessKeySecret === '') throw new OssCredentialsError('OSS access key secret is empty');
    this.accessKeyId = accessKeyId;
    this.#accessKeySecret = accessKeySecret;
    this.#securityToken = securityToken === '' ? undefined : securityToken;
  }

  get accessKeySecret(): string {
    return this.#accessKeySecret;
  }

  get securityToken(): string | undefined {
    return this.#securityToken;
  }

  toJSON(): { accessKeyId: string; accessKeySecret: string; securityToken?: string } {
    return {
      accessKeyId: this.accessKeyId,
      accessKeySecret: REDACTED,
      ...(this.#securityToken !== undefined ? { securityToken: REDACTED } : {}),
    };
  }

  toString(): string {
    return `OssCredentials(${this.accessKeyId})`;
  }

  [inspect.custom](): string {
    return `OssCredentials ${inspect(this.toJSON())}`;
  }
}

/**
 * Explicit config wins when it names either key (and must then name both); otherwise the conventional
 * environment variables OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET / OSS_SESSION_TOKEN. The two sources are
 * never mixed, so a half-filled config cannot silently borrow a secret from the environment.
 */
export function resolveOssCredentials(
  config: OssCredentialsConfig = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): OssCredentials {
  const given = (v: string | undefined): v is string => v !== undefined && v !== '';
  if (given(config.accessKeyId) || given(config.accessKeySecret)) {
    if (!given(config.accessKeyId) || !given(config.accessKeySecret)) {
      throw new OssCredentialsError('OSS credentials in config need both accessKeyId and accessKeySecret');
    }
    return new OssCredentials(config.accessKeyId, config.accessKeySecret, config.securityToken);
  }
  const id = env['OSS_ACCESS_KEY_ID'];
  const secret = env['OSS_ACCESS_KEY_SECRET'];
  if (!given(id) || !given(secret)) {
    throw new OssCredentialsError(
      'no OSS credentials: set accessKeyId/accessKeySecret in config or OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET',
    );
  }
  return new OssCredentials(id, secret, env['OSS_SESSION_TOKEN']);
}
