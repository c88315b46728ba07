-- CreateTable
CREATE TABLE "ip_record" (
    "ip" TEXT NOT NULL,
    "maxmind" JSONB,
    "maxmind_status" TEXT,
    "maxmind_fetched_at" TIMESTAMPTZ(3),
    "maxmind_database" TEXT,
    "cymru" JSONB,
    "cymru_status" TEXT,
    "cymru_fetched_at" TIMESTAMPTZ(3),
    "greynoise" JSONB,
    "greynoise_status" TEXT,
    "greynoise_fetched_at" TIMESTAMPTZ(3),
    "dshield" JSONB,
    "dshield_status" TEXT,
    "dshield_fetched_at" TIMESTAMPTZ(3),
    "first_seen" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lookup_count" INTEGER NOT NULL DEFAULT 1,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ip_record_pkey" PRIMARY KEY ("ip")
);

