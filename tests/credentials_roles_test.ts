/**
 * Role profiles (issue #12, docs/design.md §12): a profile with `role_arn` gets its credentials from
 * STS AssumeRole, signed with its `source_profile` (followed through chained roles) or
 * `credential_source`, tested against a fake STS that checks every signature and hands out the real
 * RGW keys, and refreshed before they expire during a running watch. What cannot work (MFA, no
 * source, a loop) and what walsync does not implement (SSO, web identity) is a usage error (exit 2)
 * before any request, never a silent fall-back to other credentials that happen to be there.
 */
import assert from "node:assert/strict";
import { credentialProvider } from "../src/storage/credentials.ts";
import { signV4 } from "../src/storage/sigv4.ts";
import { backupWithEnv, bareAwsEnv, watchAcrossExpiries } from "./fixtures/aws_env.ts";
import { startStsServer } from "./fixtures/sts_server.ts";
import { cleanup, freshBackend, listKeys, s3Settings, tempDir, walsync, writer } from "./helpers.ts";

const BACKUP_ROLE = "arn:aws:iam::123456789012:role/backup";
const CHAINED_ROLE = "arn:aws:iam::123456789012:role/chained";

Deno.test("sigv4: the signer gives the signature of AWS's published example (S3 GET, Signature Version 4)", () => {
  // https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object".
  const headers = signV4(
    {
      method: "GET",
      url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"),
      headers: {
        Range: "bytes=0-9",
        "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      },
      body: "",
    },
    { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
    "us-east-1",
    "s3",
    new Date("2013-05-24T00:00:00Z"),
  );
  assert.equal(
    headers.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
});

Deno.test("credentials: role profiles that cannot work, SSO and web identity are usage errors naming the profile", async () => {
  const home = await tempDir();
  await Deno.mkdir(`${home}/.aws`);
  await Deno.writeTextFile(
    `${home}/.aws/config`,
    // Keys beside role_arn without a source: the AWS CLI refuses it too, so these must not be used.
    "[profile keyed]\naws_access_key_id = K\naws_secret_access_key = ksecret\nrole_arn = arn:r\n" +
      "[profile base]\naws_access_key_id = BASE\naws_secret_access_key = basesecret\n" +
      "[default]\nrole_arn = arn:r\nsource_profile = base\nmfa_serial = arn:aws:iam::1:mfa/me\n" +
      "[profile orphan]\nrole_arn = arn:r\nsource_profile = nope\n" +
      "[profile a]\nrole_arn = arn:r\nsource_profile = b\n[profile b]\nrole_arn = arn:r\nsource_profile = a\n" +
      "[profile both]\nrole_arn = arn:r\nsource_profile = base\ncredential_source = Environment\n" +
      "[profile bogus]\nrole_arn = arn:r\ncredential_source = Laptop\n" +
      "[profile envless]\nrole_arn = arn:r\ncredential_source = Environment\n" +
      "[profile short]\nrole_arn = arn:r\nsource_profile = base\nduration_seconds = 60\n" +
      "[profile sso]\nsso_session = corp\nsso_account_id = 1\n" +
      "[profile web]\nrole_arn = arn:r\nweb_identity_token_file = /var/run/token\n",
  );
  const env = (vars: Record<string, string> = {}) => (name: string) => ({ HOME: home, ...vars }[name]);
  const cases: [string | undefined, Record<string, string>, RegExp][] = [
    ["keyed", {}, /"keyed" \(role_arn\): neither source_profile nor credential_source says which/],
    [
      undefined,
      {},
      /"default" \(role_arn\): mfa_serial needs an MFA code .*--profile default --format process/,
    ],
    [undefined, { AWS_PROFILE: "orphan" }, /"orphan" \(role_arn\): source_profile "nope" not found in /],
    ["a", {}, /\(role_arn\): source_profile loop: a -> b -> a/],
    ["both", {}, /"both" \(role_arn\): give source_profile or credential_source, not both/],
    ["bogus", {}, /"bogus" \(role_arn\): unknown credential_source "Laptop"/],
    ["envless", {}, /"envless" \(role_arn\): credential_source = Environment, but AWS_ACCESS_KEY_ID/],
    ["short", {}, /"short" \(role_arn\): duration_seconds "60" is not a whole number from 900 to 43200/],
    ["sso", {}, /AWS profile "sso" uses AWS SSO, which walsync does not support/],
    ["web", {}, /AWS profile "web" uses web_identity_token_file .* does not support/],
  ];
  for (const [profile, vars, expected] of cases) {
    assert.throws(() => credentialProvider(profile, env(vars)), (e: Error & { exitCode?: number }) => {
      assert.match(e.message, expected);
      assert.equal(e.exitCode, 2);
      return true;
    });
  }
  assert.equal((await credentialProvider("base", env()).get()).accessKeyId, "BASE");
  // The environment's keys come before any profile (as with the AWS CLI): no error then.
  const envKeys = { AWS_ACCESS_KEY_ID: "ENV", AWS_SECRET_ACCESS_KEY: "envsecret" };
  assert.equal((await credentialProvider(undefined, env(envKeys)).get()).accessKeyId, "ENV");
  // EKS IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) instead of the container or instance role.
  const irsa = { AWS_ROLE_ARN: "arn:aws:iam::1:role/w", AWS_WEB_IDENTITY_TOKEN_FILE: `${home}/token` };
  assert.throws(
    () => credentialProvider(undefined, env({ ...irsa, AWS_CONFIG_FILE: `${home}/none` })),
    /AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are set \(assume-role with web identity\)/,
  );
  await cleanup(home);
});

/** A home with role profiles, a fake STS that knows their source keys, and the environment for both. */
async function roleSetup(lifetimeMs: number) {
  const s3 = s3Settings();
  const [key, secret] = [s3.env.AWS_ACCESS_KEY_ID, s3.env.AWS_SECRET_ACCESS_KEY];
  const sts = startStsServer({
    // The source keys are known to STS only: RGW accepts nothing but the keys STS hands out.
    keys: {
      SRCKEY: { secret: "src-secret-value" },
      ENVKEY: { secret: "env-secret-value", token: "env-session-token" },
      [key]: { secret },
    },
    roles: [BACKUP_ROLE, CHAINED_ROLE],
    issue: { accessKeyId: key, secretAccessKey: secret },
    lifetimeMs,
  });
  const home = await tempDir();
  await Deno.mkdir(`${home}/.aws`);
  await Deno.writeTextFile(
    `${home}/.aws/credentials`,
    "[src]\naws_access_key_id = SRCKEY\naws_secret_access_key = src-secret-value\n" +
      "[forged]\naws_access_key_id = SRCKEY\naws_secret_access_key = not-the-secret\n",
  );
  await Deno.writeTextFile(
    `${home}/.aws/config`,
    `[profile role]\nrole_arn = ${BACKUP_ROLE}\nsource_profile = src\nexternal_id = ext-1\n` +
      "role_session_name = walsync-test\nduration_seconds = 900\n" +
      `[profile chained]\nrole_arn = ${CHAINED_ROLE}\nsource_profile = role\n` +
      `[profile envrole]\nrole_arn = ${BACKUP_ROLE}\ncredential_source = Environment\n` +
      "[profile denied]\nrole_arn = arn:aws:iam::123456789012:role/admin\nsource_profile = src\n" +
      // Its own source: the keys beside role_arn sign (here with a wrong secret).
      `[profile forged]\nrole_arn = ${BACKUP_ROLE}\nsource_profile = forged\n`,
  );
  const env = bareAwsEnv(home, s3, { AWS_ENDPOINT_URL_STS: sts.url });
  const secrets = [secret, "src-secret-value", "env-secret-value", "env-session-token"];
  return { s3, sts, home, env, secrets };
}

Deno.test("credentials from a role_arn profile: STS AssumeRole signed with the source profile's keys, chained roles, credential_source", async () => {
  const { s3, sts, home, env, secrets } = await roleSetup(3_600_000);
  try {
    await backupWithEnv(
      env,
      /AWS credentials source: role arn:aws:iam::123456789012:role\/backup of profile role \(assumed with profile src\)/,
      ["--profile", "role"],
      secrets,
    );
    assert.deepEqual(sts.calls[0], {
      signedBy: "SRCKEY",
      region: s3.env.AWS_REGION,
      params: {
        Action: "AssumeRole",
        Version: "2011-06-15",
        RoleArn: BACKUP_ROLE,
        RoleSessionName: "walsync-test",
        ExternalId: "ext-1",
        DurationSeconds: "900",
      },
    });
    // A chained role: the first role's credentials assume the second.
    sts.calls.length = 0;
    await backupWithEnv(env, /AWS credentials source: role .*chained of profile chained/, [
      "--profile",
      "chained",
    ], secrets);
    assert.deepEqual(sts.calls.slice(0, 2).map((c) => [c.params.RoleArn, c.signedBy]), [
      [BACKUP_ROLE, "SRCKEY"],
      [CHAINED_ROLE, s3.env.AWS_ACCESS_KEY_ID],
    ]);
    // credential_source = Environment: the environment's keys and session token sign the request.
    sts.calls.length = 0;
    await backupWithEnv(
      {
        ...env,
        AWS_ACCESS_KEY_ID: "ENVKEY",
        AWS_SECRET_ACCESS_KEY: "env-secret-value",
        AWS_SESSION_TOKEN: "env-session-token",
      },
      /AWS credentials source: role .*backup of profile envrole \(assumed with environment variables\)/,
      ["--profile", "envrole"],
      secrets,
    );
    assert.equal(sts.calls[0].signedBy, "ENVKEY");
    assert.deepEqual(sts.refused, []);

    // STS refuses: a role the source may not assume, a wrong source secret. Exit 5, STS's reason.
    for (
      const [profile, expected] of [
        [
          "denied",
          /STS AssumeRole of arn:aws:iam::123456789012:role\/admin \(profile denied\) at 127\.0\.0\.1:\d+ answered 403 \(AccessDenied\)/,
        ],
        [
          "forged",
          /STS AssumeRole of .*role\/backup \(profile forged\) at 127\.0\.0\.1:\d+ answered 403 \(SignatureDoesNotMatch\)/,
        ],
      ] as const
    ) {
      const r = await walsync(["list", "-b", `s3://${s3.bucket}/x`, "--profile", profile], { env });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, expected);
      for (const secret of [...secrets, "not-the-secret"]) assert.ok(!r.stderr.includes(secret));
    }
  } finally {
    await sts.close();
  }
  await cleanup(home);
});

Deno.test("expiring role credentials are assumed again during a running watch; uploads go on", async () => {
  const lifetimeMs = 3000;
  const { sts, home, env, secrets } = await roleSetup(lifetimeMs);
  try {
    await watchAcrossExpiries({
      home,
      env,
      args: ["--profile", "role"],
      lifetimeMs,
      issued: () => sts.calls.length,
      secret: secrets[0],
    });
    assert.deepEqual(sts.refused, []);
  } finally {
    await sts.close();
  }
  await cleanup(home);
});

Deno.test("credentials: a role profile that cannot work fails snapshot and watch with exit 2 before anything is uploaded", async () => {
  const s3 = s3Settings();
  const [KEY, SECRET] = [s3.env.AWS_ACCESS_KEY_ID, s3.env.AWS_SECRET_ACCESS_KEY];
  const home = await tempDir();
  const backend = await freshBackend("s3");
  await Deno.mkdir(`${home}/.aws`);
  // The source profile holds the real RGW keys: using them instead of the role would "work".
  await Deno.writeTextFile(
    `${home}/.aws/config`,
    `[profile rgw]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\n` +
      `[profile role]\nrole_arn = ${BACKUP_ROLE}\nsource_profile = rgw\nmfa_serial = arn:aws:iam::1:mfa/me\n`,
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
    assert.match(r.stderr, /AWS profile "role" \(role_arn\): mfa_serial needs an MFA code/);
    assert.ok(!r.stderr.includes(SECRET));
  }
  assert.deepEqual(await listKeys(backend), [], "nothing may have been uploaded");
  await cleanup(home, backend);
});
