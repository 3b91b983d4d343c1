-- Version 4, queue leases: an instance that claims a due webhook or wake-up sets its
-- `lease_until` (Unix seconds); no other claim takes the row before then, and recording the
-- attempt clears it. A claim by an instance that died runs out and the row is claimed again.
-- Released: never edit; add a new file.

ALTER TABLE webhooks ADD COLUMN lease_until INTEGER;
ALTER TABLE push_queue ADD COLUMN lease_until INTEGER;
