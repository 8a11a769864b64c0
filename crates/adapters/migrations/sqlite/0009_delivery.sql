-- Delivery receipts, failover on non-delivery and conversion per prefix
-- (issue 17). Keep in step with the other backend's 0009_delivery.sql.

-- The provider's own id of the message it accepted (Twilio's `SM…` sid,
-- Vonage's message-id, the generic provider's `id`), so that its
-- delivery receipt finds the row; NULL when the provider gave none.
ALTER TABLE outbox ADD COLUMN provider_message_id TEXT;
-- What the provider's last receipt said: queued, sent, delivered,
-- undelivered or failed; NULL until a receipt arrives.
ALTER TABLE outbox ADD COLUMN delivery_status TEXT;
-- The provider's error code from that receipt (Twilio `30003`, Vonage
-- `err-code`), never its free text.
ALTER TABLE outbox ADD COLUMN delivery_error TEXT;
ALTER TABLE outbox ADD COLUMN receipt_at INTEGER;
-- Set when a receipt said the message did not arrive and it was queued
-- again to go through another provider of its route: the provider to
-- avoid. A message is resent this way at most once.
ALTER TABLE outbox ADD COLUMN avoid_provider TEXT;
-- Receipts find their message by the provider's id.
CREATE INDEX outbox_provider_message ON outbox (provider, provider_message_id)
 WHERE provider_message_id IS NOT NULL;
-- Conversion joins a challenge to its message.
CREATE INDEX outbox_challenge ON outbox (challenge_id) WHERE challenge_id IS NOT NULL;

-- The destination prefix (digits, no `+`) a challenge's code was really
-- sent to: the longest configured pumping-guard prefix of the number, or
-- its calling code. NULL for decoys and test numbers, which send nothing
-- and so count neither as sends nor towards conversion.
ALTER TABLE otp_challenges ADD COLUMN sent_prefix TEXT;
-- The pumping guard counts a prefix's sends and verifications of the last
-- hour.
CREATE INDEX otp_challenges_sent_prefix ON otp_challenges (sent_prefix, created_at)
 WHERE sent_prefix IS NOT NULL;
