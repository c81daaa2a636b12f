-- Schema version 3: a download stamp per package, for downloads_since (download totals reach
-- followers without an event per download). Each download gives its package the largest stamp
-- so far. Packages downloaded before this version get stamps in id order, so a follower's first
-- catch-up learns their totals too.
ALTER TABLE packages ADD COLUMN download_stamp INTEGER NOT NULL DEFAULT 0;
UPDATE packages SET download_stamp = id WHERE downloads > 0;
CREATE INDEX packages_by_download_stamp ON packages(download_stamp);
