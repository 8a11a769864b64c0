-- Nothing to do on SQLite: it serves one process, whose dispatchers are
-- woken in memory when a transaction that queued a message commits. The
-- Postgres side of this migration adds the trigger that notifies other
-- instances. The version is recorded so both backends count alike.

SELECT 1;
