/**
 * AWS credentials as the AWS CLI finds them (issue #12), each source tested against the real RGW
 * with its keys: environment, profile in the credentials file, config-file profile with
 * endpoint_url and region, credential_process, container endpoint with a token (full URI, and
 * relative URI on WALSYNC_CONTAINER_CREDENTIALS_HOST), IMDSv2, and the refresh of expiring container
 * credentials during a running watch (full and relative URI). Which source was used is
 * logged at debug level; the secret never appears in the output.
 */
import assert from "node:assert/strict";
import {
  CredentialProvider,
  credentialProvider,
  parseIni,
  splitCommand,
} from "../src/storage/credentials.ts";
import { containerCredentialsUrl } from "../src/storage/credential_sources.ts";
import { startCredentialServer } from "./fixtures/credential_server.ts";
import { backupWithEnv, bareAwsEnv, watchAcrossExpiries } from "./fixtures/aws_env.ts";
import { cleanup, s3Settings, tempDir, walsync } from "./helpers.ts";

let s3: ReturnType<typeof s3Settings>;
let KEY: string;
let SECRET: string;
/** The RGW settings and keys (read inside the tests that need RGW). */
function rgw(): void {
  s3 = s3Settings();
  KEY = s3.env.AWS_ACCESS_KEY_ID;
  SECRET = s3.env.AWS_SECRET_ACCESS_KEY;
}

/** An environment with no credentials at all: every source has to be set up by the test. */
function bareEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return bareAwsEnv(home, s3, extra);
}

/** Snapshots a database with `env` and lists it; asserts the source logged and no secret shown. */
function backupWith(env: Record<string, string>, source: RegExp, extra: string[] = []): Promise<void> {
  return backupWithEnv(env, source, extra, [SECRET]);
}

Deno.test("credentials: INI files and credential_process command lines are parsed like the AWS CLI", () => {
  const ini = parseIni(
    "# c\n[default]\naws_access_key_id = A\n\n[profile x]\nregion=eu-west-1\n  nested = 1\n; c\n",
  );
  assert.deepEqual(ini.get("default"), { aws_access_key_id: "A" });
  assert.deepEqual(ini.get("profile x"), { region: "eu-west-1" });
  assert.deepEqual(splitCommand(`/usr/bin/get-creds --name "my profile" 'a b'  c`), [
    "/usr/bin/get-creds",
    "--name",
    "my profile",
    "a b",
    "c",
  ]);
});

Deno.test("credentials: the AWS CLI's order; --profile beats the environment; unknown profile", async () => {
  const home = await tempDir();
  await Deno.mkdir(`${home}/.aws`);
  await Deno.writeTextFile(
    `${home}/.aws/credentials`,
    "[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n" +
      "[prod]\naws_access_key_id = PROD\naws_secret_access_key = prodsecret\naws_session_token = prodtoken\n",
  );
  const env = (vars: Record<string, string>) => (name: string) => ({ HOME: home, ...vars }[name]);
  const envKeys = { AWS_ACCESS_KEY_ID: "ENV", AWS_SECRET_ACCESS_KEY: "envsecret" };
  assert.equal((await credentialProvider(undefined, env(envKeys)).get()).accessKeyId, "ENV");
  assert.equal(
    (await credentialProvider(undefined, env({ ...envKeys, AWS_PROFILE: "prod" })).get()).accessKeyId,
    "ENV",
  );
  assert.equal((await credentialProvider(undefined, env({})).get()).accessKeyId, "DEF");
  const prod = await credentialProvider("prod", env(envKeys)).get();
  assert.deepEqual([prod.accessKeyId, prod.sessionToken], ["PROD", "prodtoken"]);
  assert.throws(
    () => credentialProvider("nope", env({})),
    /AWS profile "nope" not found in .*credentials or .*config/,
  );
  await cleanup(home);
});

Deno.test("credentials: temporary credentials are fetched again before they expire, not on every call", async () => {
  let fetches = 0;
  let fail = false;
  const lifetime = 60_000;
  let now = 1_000_000;
  const provider = new CredentialProvider({
    name: "test source",
    fetch: () => {
      if (fail) return Promise.reject(new Error("endpoint down"));
      fetches++;
      return Promise.resolve({
        accessKeyId: `K${fetches}`,
        secretAccessKey: "s3cr3t-value",
        expiration: new Date(now + lifetime),
      });
    },
  });
  assert.equal((await provider.get(now)).accessKeyId, "K1");
  assert.equal((await provider.get(now + 29_000)).accessKeyId, "K1", "still fresh: no fetch");
  now += 31_000; // past half the lifetime: refreshed
  assert.equal((await provider.get(now)).accessKeyId, "K2");
  assert.equal(fetches, 2);
  // The endpoint fails while the credentials are still valid: they are kept, and tried again later.
  fail = true;
  assert.equal((await provider.get(now + 31_000)).accessKeyId, "K2");
  fail = false;
  assert.equal((await provider.get(now + 42_000)).accessKeyId, "K3");
});

Deno.test("credentials from the environment (baseline) and from a profile in ~/.aws/credentials", async () => {
  rgw();
  const home = await tempDir();
  await backupWith(
    bareEnv(home, { AWS_ACCESS_KEY_ID: KEY, AWS_SECRET_ACCESS_KEY: SECRET }),
    /AWS credentials source: environment variables/,
  );
  await Deno.mkdir(`${home}/.aws`);
  await Deno.writeTextFile(
    `${home}/.aws/credentials`,
    `[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[rgw]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
  );
  await backupWith(bareEnv(home, { AWS_PROFILE: "rgw" }), /AWS credentials source: profile rgw/);
  await backupWith(bareEnv(home), /AWS credentials source: profile rgw/, ["--profile", "rgw"]);
  // AWS_SHARED_CREDENTIALS_FILE points elsewhere.
  await Deno.rename(`${home}/.aws/credentials`, `${home}/creds.ini`);
  await backupWith(
    bareEnv(home, { AWS_PROFILE: "rgw", AWS_SHARED_CREDENTIALS_FILE: `${home}/creds.ini` }),
    /AWS credentials source: profile rgw/,
  );
  const unknown = await walsync(["list", "-b", `s3://${s3.bucket}/x`, "--profile", "nope"], {
    env: bareEnv(home),
  });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /AWS profile "nope" not found/);
  await cleanup(home);
});

Deno.test("credentials, region and endpoint_url from a profile in ~/.aws/config (AWS_CONFIG_FILE)", async () => {
  rgw();
  const home = await tempDir();
  await Deno.writeTextFile(
    `${home}/config`,
    `[profile rgw]\nregion = ${s3.env.AWS_REGION}\nendpoint_url = ${s3.endpoint}\n` +
      `aws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n`,
  );
  // No endpoint in the environment: it comes from the profile.
  await backupWith(
    bareEnv(home, {
      AWS_PROFILE: "rgw",
      AWS_CONFIG_FILE: `${home}/config`,
      AWS_ENDPOINT_URL_S3: "",
      AWS_REGION: "",
    }),
    /AWS credentials source: profile rgw/,
  );
  await cleanup(home);
});

Deno.test("credentials from credential_process", async () => {
  rgw();
  const home = await tempDir();
  const script = `${home}/get creds.py`;
  await Deno.writeTextFile(
    script,
    `import json, sys\nassert sys.argv[1] == "--for", sys.argv\n` +
      `print(json.dumps({"Version": 1, "AccessKeyId": ${JSON.stringify(KEY)}, "SecretAccessKey": ${
        JSON.stringify(SECRET)
      }}))\n`,
  );
  await Deno.mkdir(`${home}/.aws`);
  await Deno.writeTextFile(
    `${home}/.aws/config`,
    `[default]\ncredential_process = python3 "${script}" --for walsync\n`,
  );
  await backupWith(bareEnv(home), /AWS credentials source: credential_process of profile default/);
  // A failing process is reported with its first line of stderr, and no secret.
  await Deno.writeTextFile(
    `${home}/.aws/config`,
    `[default]\ncredential_process = python3 -c "import sys; sys.exit('no token')"\n`,
  );
  const r = await walsync(["list", "-b", `s3://${s3.bucket}/x`], { env: bareEnv(home) });
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /credential_process of profile default \(python3\) exited with code 1: no token/);
  await cleanup(home);
});

Deno.test("credentials from the container endpoint (full or relative URI + token) and from IMDSv2", async () => {
  rgw();
  const home = await tempDir();
  const server = startCredentialServer({
    accessKeyId: KEY,
    secretAccessKey: SECRET,
    token: "Bearer t0k3n",
    lifetimeMs: 3_600_000,
  });
  try {
    await backupWith(
      bareEnv(home, {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `${server.url}/container`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: "Bearer t0k3n",
      }),
      /AWS credentials from container credential endpoint, valid until /,
    );
    // The token from a file (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), as EKS Pod Identity gives it.
    await Deno.writeTextFile(`${home}/token`, "Bearer t0k3n\n");
    await backupWith(
      bareEnv(home, {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `${server.url}/container`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: `${home}/token`,
      }),
      /AWS credentials from container credential endpoint, valid until /,
    );
    // AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS), on the host WALSYNC_CONTAINER_CREDENTIALS_HOST names.
    const before = server.requests.length;
    await backupWith(
      bareEnv(home, {
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/container",
        WALSYNC_CONTAINER_CREDENTIALS_HOST: `${server.url}/`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: "Bearer t0k3n",
      }),
      /AWS credentials from container credential endpoint, valid until /,
    );
    assert.ok(server.requests.slice(before).includes("GET /container"), "the relative URI was asked");
    // A wrong token is refused by the endpoint: a clear error.
    const denied = await walsync(["list", "-b", `s3://${s3.bucket}/x`], {
      env: bareEnv(home, {
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `${server.url}/container`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: "wrong",
      }),
    });
    assert.equal(denied.code, 5, denied.stderr);
    assert.match(denied.stderr, /container credential endpoint 127\.0\.0\.1:\d+ answered 401/);

    const beforeImds = server.requests.length;
    await backupWith(
      bareEnv(home, { AWS_EC2_METADATA_DISABLED: "", AWS_EC2_METADATA_SERVICE_ENDPOINT: server.url }),
      /AWS credentials from instance metadata service \(IMDSv2\), valid until /,
    );
    const imds = server.requests.slice(beforeImds);
    assert.deepEqual(imds.slice(0, 3), [
      "PUT /latest/api/token",
      "GET /latest/meta-data/iam/security-credentials/",
      "GET /latest/meta-data/iam/security-credentials/walsync-test-role",
    ]);
    // AWS_EC2_METADATA_DISABLED: no request, the usual error.
    const count = server.requests.length;
    const disabled = await walsync(["list", "-b", `s3://${s3.bucket}/x`], {
      env: bareEnv(home, { AWS_EC2_METADATA_SERVICE_ENDPOINT: server.url }),
    });
    assert.equal(disabled.code, 2);
    assert.match(disabled.stderr, /missing S3 credentials/);
    assert.equal(server.requests.length, count);
  } finally {
    await server.close();
  }
  await cleanup(home);
});

Deno.test("container credential URL: the relative URI is on 169.254.170.2 unless WALSYNC_CONTAINER_CREDENTIALS_HOST says", () => {
  const url = (vars: Record<string, string>) => containerCredentialsUrl((name) => vars[name]).href;
  assert.equal(
    url({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/credentials/abc" }),
    "http://169.254.170.2/v2/credentials/abc",
  );
  assert.equal(
    url({
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/credentials/abc",
      WALSYNC_CONTAINER_CREDENTIALS_HOST: "http://127.0.0.1:8123/",
    }),
    "http://127.0.0.1:8123/v2/credentials/abc",
  );
  // The full URI wins over the relative one, as in the AWS SDKs.
  assert.equal(
    url({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: "https://creds.example/x",
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/credentials/abc",
    }),
    "https://creds.example/x",
  );
  // The token is sent there: plain http only to a loopback or container address.
  assert.throws(
    () =>
      url({
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/creds",
        WALSYNC_CONTAINER_CREDENTIALS_HOST: "http://creds.example",
      }),
    /WALSYNC_CONTAINER_CREDENTIALS_HOST must use https or a loopback\/container host, not creds\.example/,
  );
  assert.throws(
    () =>
      url({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/c", WALSYNC_CONTAINER_CREDENTIALS_HOST: "nowhere" }),
    /WALSYNC_CONTAINER_CREDENTIALS_HOST: not a URL: nowhere\/c/,
  );
});

/** A watch across three lifetimes of container credentials from the endpoint `endpointEnv` names. */
async function refreshedDuringWatch(
  endpointEnv: (serverUrl: string) => Record<string, string>,
): Promise<void> {
  rgw();
  const home = await tempDir();
  const lifetimeMs = 3000;
  const server = startCredentialServer({
    accessKeyId: KEY,
    secretAccessKey: SECRET,
    token: "tok",
    lifetimeMs,
  });
  try {
    await watchAcrossExpiries({
      home,
      env: bareEnv(home, { ...endpointEnv(server.url), AWS_CONTAINER_AUTHORIZATION_TOKEN: "tok" }),
      lifetimeMs,
      issued: server.issued,
      secret: SECRET,
    });
  } finally {
    await server.close();
  }
  await cleanup(home);
}

Deno.test("expiring container credentials (full URI) are refreshed during a running watch; uploads go on", () =>
  refreshedDuringWatch((url) => ({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${url}/container` })));

Deno.test("expiring container credentials (relative URI) are refreshed during a running watch; uploads go on", () =>
  refreshedDuringWatch((url) => ({
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/container",
    WALSYNC_CONTAINER_CREDENTIALS_HOST: url,
  })));
