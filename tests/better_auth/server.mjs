// A real Better Auth server for the test suite (tests/better_auth/conftest.py starts it).
//
//   node server.mjs '<config JSON>'
//
// config: {"package": "better-auth-1.4.9", "databaseUrl": "postgresql://...", "secret": "...",
//          "baseURL": "http://127.0.0.1:3000", "jwt": {...jwt() options} | null,
//          "options": {...more betterAuth() options: user/session/account/verification
//                      renames, advanced.database.generateId}}
//
// It runs that Better Auth version's own migration (what `@better-auth/cli migrate` runs)
// on the database, then serves /api/auth/* on a free loopback port and prints
// {"port": N, "version": "x.y.z"} as its first stdout line.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import http from "node:http";
import pg from "pg";

const config = JSON.parse(process.argv[2]);
const pkg = config.package;
const manifest = new URL(`node_modules/${pkg}/package.json`, import.meta.url);
const { version } = JSON.parse(readFileSync(manifest, "utf8"));

const { betterAuth } = await import(pkg);
const { jwt, bearer } = await import(`${pkg}/plugins`);
const { toNodeHandler } = await import(`${pkg}/node`);
// 1.3 and 1.4 export getMigrations from /db; 1.7 moved it to /db/migration.
const { getMigrations } = await import(`${pkg}/db/migration`).catch(() => import(`${pkg}/db`));

const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 5 });
const options = {
  ...config.options,
  database: pool,
  secret: config.secret,
  baseURL: config.baseURL,
  emailAndPassword: { enabled: true },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: { level: "error" },
  plugins: [bearer(), ...(config.jwt ? [jwt(config.jwt)] : [])],
};
// generateId "uuid" is a string option; 1.3 has no such mode, so the harness passes it as
// {"function": "uuid"} there: an id generator, which is what 1.3 apps did for UUIDs.
if (config.options?.advanced?.database?.generateId?.function === "uuid") {
  options.advanced = {
    ...config.options.advanced,
    database: { ...config.options.advanced.database, generateId: () => randomUUID() },
  };
}

const { runMigrations } = await getMigrations(options);
await runMigrations();

const auth = betterAuth(options);
const server = http.createServer(toNodeHandler(auth));
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port, version })}\n`);
});

// The test database is dropped next: nothing to wait for (server.close would wait for
// idle keep-alive connections).
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
