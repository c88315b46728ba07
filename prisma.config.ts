import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';

// engine "js" + an adapter keeps the CLI on its WebAssembly engines, so generate and migrate diff run offline.
// Only the commands that connect (migrate diff, status, deploy) read DATABASE_URL, through the adapter; the
// schema's datasource names no environment variable, so generating the client (npm run build) never depends
// on a runtime setting: a mistyped DATABASE_URL used to make `prisma generate` look for an engine to download.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  engine: 'js',
  experimental: { adapter: true },
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL }),
});
