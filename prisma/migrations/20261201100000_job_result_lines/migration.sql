-- A finished address's result line (src/jobs/results.ts), kept with the input at its first position, written
-- when the job finishes the address: streaming a finished job's results is then a read of one key range.
ALTER TABLE "enrichment_job_input" ADD COLUMN "result" TEXT;
