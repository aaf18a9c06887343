/**
 * An S3 store whose credentials come from a {@link CredentialProvider}: the underlying S3Store
 * (s3-lite-client takes static keys) is created on first use and created again whenever the
 * provider hands out new credentials, i.e. shortly before temporary credentials expire.
 * @module
 */
import type { CredentialProvider, Credentials } from "./credentials.ts";
import type { S3Settings } from "./s3_client.ts";
import { S3Store } from "./s3.ts";
import { multipartThresholdOf } from "./s3_client.ts";
import type { ByteSource } from "./source.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store, WriteCondition } from "./store.ts";

/** A {@link Store} on S3 with credentials that may change while it is used. */
export class RefreshingS3Store implements Store {
  readonly url: string;
  #store: S3Store | null = null;
  #credentials: Credentials | null = null;

  constructor(
    readonly settings: Omit<S3Settings, "accessKeyId" | "secretAccessKey" | "sessionToken">,
    readonly provider: CredentialProvider,
  ) {
    const { bucket, prefix } = settings;
    this.url = `s3://${bucket}${prefix ? "/" + prefix : ""}`;
  }

  async #current(): Promise<S3Store> {
    const credentials = await this.provider.get();
    if (credentials !== this.#credentials || !this.#store) {
      this.#store = new S3Store({ ...this.settings, ...credentials });
      this.#credentials = credentials;
    }
    return this.#store;
  }

  usesContentMd5(size: number): boolean {
    return size <= multipartThresholdOf(this.settings);
  }

  async put(key: string, body: ByteSource, metadata: Record<string, string>, contentMd5?: string) {
    return await (await this.#current()).put(key, body, metadata, contentMd5);
  }

  async putSmall(key: string, body: Uint8Array, metadata: Record<string, string>, condition: WriteCondition) {
    return await (await this.#current()).putSmall(key, body, metadata, condition);
  }

  async get(key: string): Promise<ObjectData> {
    return await (await this.#current()).get(key);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    return await (await this.#current()).head(key);
  }

  async *list(prefix: string, startAfter?: string): AsyncIterable<ListedObject> {
    yield* (await this.#current()).list(prefix, startAfter);
  }

  async abortIncompleteUploads(prefix: string): Promise<number> {
    return await (await this.#current()).abortIncompleteUploads(prefix);
  }

  async delete(key: string): Promise<void> {
    return await (await this.#current()).delete(key);
  }

  async deleteMany(keys: string[]): Promise<void> {
    return await (await this.#current()).deleteMany(keys);
  }
}
