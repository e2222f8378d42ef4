-- Job leases (issue 32): the process running a job and until when its claim holds.
-- With SQLite one process (the data folder's lock holder) runs the queue, so a job left
-- `processing` by a killed process is re-queued on the next start whatever its lease;
-- on a shared PostgreSQL library another node takes a job only once its lease expired.
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
