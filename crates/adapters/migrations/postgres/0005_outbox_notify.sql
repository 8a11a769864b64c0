-- Wakes the dispatchers of every instance when messages are queued.
--
-- Until now each transaction that queued a message ran its own
-- `SELECT pg_notify(...)`: one more round trip on every code sent. A
-- statement-level trigger does the same inside the INSERT. Postgres still
-- delivers the notification only when (and if) the transaction commits,
-- and folds duplicates within a transaction into one. Keep in step with
-- ../sqlite/0005_outbox_notify.sql.

CREATE FUNCTION phonegate_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('phonegate_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    FOR EACH STATEMENT
    EXECUTE FUNCTION phonegate_outbox_notify();
