/**
 * Credential sources the AWS CLI has and walsync does not (issue #12, docs/design.md §12): a profile
 * with role_arn (assume-role) or SSO, and AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE. Each is a usage
 * error (exit 2) before any request, never a silent fall-back to other credentials that happen to be
 * there (the profile's own keys, the source profile's, the container or instance role).
 */
import assert from "node:assert/strict";
import { credentialProvider } from "../src/storage/credentials.ts";
import { bareAwsEnv } from "./fixtures/aws_env.ts";
import { cleanup, freshBackend, listKeys, s3Settings, tempDir, walsync, writer } from "./helpers.ts";

Deno.test("credentials: role_arn, SSO and web identity are refused (exit 2), never replaced by other credentials", async () => {
  const home = await tempDir();
  await Deno.mkdir(`${home}/.aws`);
  await Deno.writeTextFile(
    `${home}/.aws/credentials`,
    "[base]\naws_access_key_id = BASE\naws_secret_access_key = basesecret\n" +
      // Keys beside role_arn: the AWS CLI would assume the role, so these must not be used either.
      "[keyed]\naws_access_key_id = K\naws_secret_access_key = ksecret\nrole_arn = arn:aws:iam::1:role/r\n",
  );
  await Deno.writeTextFile(
    `${home}/.aws/config`,
    "[default]\nrole_arn = arn:aws:iam::1:role/d\nsource_profile = base\n" +
      "[profile sso]\nsso_session = corp\nsso_account_id = 1\n",
  );
  const env = (vars: Record<string, string>) => (name: string) => ({ HOME: home, ...vars }[name]);
  const roleArn =
    /AWS profile "(default|keyed)" uses role_arn \(assume-role\), which walsync does not support: .*credential_process = aws configure export-credentials --profile \1 --format process/;
  for (
    const [profile, vars] of [[undefined, {}], ["keyed", {}], [undefined, { AWS_PROFILE: "keyed" }]] as const
  ) {
    assert.throws(() => credentialProvider(profile, env(vars)), (e: Error & { exitCode?: number }) => {
      assert.match(e.message, roleArn);
      assert.equal(e.exitCode, 2);
      return true;
    });
  }
  assert.throws(
    () => credentialProvider("sso", env({})),
    /AWS profile "sso" uses AWS SSO, which walsync does not/,
  );
  // The environment's keys come before any profile (as with the AWS CLI): no error then.
  const envKeys = { AWS_ACCESS_KEY_ID: "ENV", AWS_SECRET_ACCESS_KEY: "envsecret" };
  assert.equal((await credentialProvider(undefined, env(envKeys)).get()).accessKeyId, "ENV");
  assert.equal((await credentialProvider("base", env({})).get()).accessKeyId, "BASE");
  // EKS IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) instead of the container or instance role.
  const irsa = { AWS_ROLE_ARN: "arn:aws:iam::1:role/w", AWS_WEB_IDENTITY_TOKEN_FILE: `${home}/token` };
  assert.throws(
    () => credentialProvider(undefined, env({ ...irsa, AWS_CONFIG_FILE: `${home}/none` })),
    /AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are set \(assume-role with web identity\)/,
  );
  await cleanup(home);
});

Deno.test("credentials: a role_arn profile fails snapshot and watch with exit 2 before anything is uploaded", async () => {
  const s3 = s3Settings();
  const [KEY, SECRET] = [s3.env.AWS_ACCESS_KEY_ID, s3.env.AWS_SECRET_ACCESS_KEY];
  const home = await tempDir();
  const backend = await freshBackend("s3");
  await Deno.mkdir(`${home}/.aws`);
  // The source profile holds the real RGW keys: using them instead of the role would "work".
  await Deno.writeTextFile(
    `${home}/.aws/config`,
    `[profile rgw]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n` +
      `[profile role]\nrole_arn = arn:aws:iam::123456789012:role/backup\nsource_profile = rgw\n`,
  );
  await writer("fill", `${home}/app.db`, "10");
  await Deno.writeTextFile(`${home}/w.yml`, `url: ${backend.url}\nprofile: role\ndbs:\n  - path: app.db\n`);
  for (
    const args of [
      ["snapshot", `${home}/app.db`, "-b", backend.url, "--profile", "role"],
      ["watch", "-c", `${home}/w.yml`],
    ]
  ) {
    const r = await walsync(args, { env: bareAwsEnv(home, s3) });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /AWS profile "role" uses role_arn \(assume-role\), which walsync does not support/,
    );
    assert.ok(!r.stderr.includes(SECRET));
  }
  assert.deepEqual(await listKeys(backend), [], "nothing may have been uploaded");
  await cleanup(home, backend);
});
