-- Every answer rewrites its row (fresh source data, last_seen, lookup_count). With room left in each
-- page, PostgreSQL writes the new row version beside the old one and skips the index (a HOT update).
ALTER TABLE "ip_record" SET (fillfactor = 70);
