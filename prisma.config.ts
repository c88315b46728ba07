import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';

// `prisma generate` resolves env("DATABASE_URL") while parsing the schema even though it never connects;
// a placeholder keeps generation working on machines (CI, Docker build) that have no database.
process.env.DATABASE_URL ??= 'postgresql://localhost:5432/postgres';

// engine "js" + an adapter keeps the CLI on its WebAssembly engines, so generate and migrate diff run offline.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  engine: 'js',
  experimental: { adapter: true },
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL }),
});
