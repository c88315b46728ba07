-- CreateTable
CREATE TABLE "enrichment_job" (
    "id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "label" TEXT,
    "sources" TEXT[],
    "refresh" BOOLEAN NOT NULL DEFAULT false,
    "total" INTEGER NOT NULL DEFAULT 0,
    "unique" INTEGER NOT NULL DEFAULT 0,
    "invalid" INTEGER NOT NULL DEFAULT 0,
    "bogon" INTEGER NOT NULL DEFAULT 0,
    "progress" JSONB NOT NULL DEFAULT '{}',
    "bulk_cursor" INTEGER NOT NULL DEFAULT -1,
    "final_cursor" INTEGER NOT NULL DEFAULT -1,
    "failures" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,
    "lease_owner" TEXT,
    "lease_until" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "enrichment_job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "enrichment_job_input" (
    "job_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "input" TEXT NOT NULL,
    "ip" TEXT,

    CONSTRAINT "enrichment_job_input_pkey" PRIMARY KEY ("job_id","position")
);

-- CreateTable
CREATE TABLE "enrichment_job_address" (
    "job_id" UUID NOT NULL,
    "ip" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "due" SMALLINT NOT NULL,
    "outcomes" JSONB,

    CONSTRAINT "enrichment_job_address_pkey" PRIMARY KEY ("job_id","ip")
);

-- CreateIndex
CREATE INDEX "enrichment_job_status_created_at_idx" ON "enrichment_job"("status", "created_at");

-- CreateIndex
CREATE INDEX "enrichment_job_created_at_idx" ON "enrichment_job"("created_at");

-- CreateIndex
CREATE UNIQUE INDEX "enrichment_job_address_job_id_seq_key" ON "enrichment_job_address"("job_id", "seq");

-- A job rewrites each of its addresses once or twice (due, outcomes) and never their keys: with room in
-- each page the new version goes beside the old one and the indexes are left alone (a HOT update).
ALTER TABLE "enrichment_job_address" SET (fillfactor = 70);
