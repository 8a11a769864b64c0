-- Providers and routes (issue 16). Keep in step with the other backend's
-- 0008_providers.sql.

-- The provider the message was last tried through (its configured name:
-- `twilio`, `vonage`, …), NULL for mail and for rows no provider was tried
-- for. `last_error` names the provider of each failed attempt.
ALTER TABLE outbox ADD COLUMN provider TEXT;

-- Whether a provider made the challenge's code (Twilio Verify) and so must
-- check it (true), or phonegate did (false). Set from the message written
-- with the challenge, so each check goes to whoever issued its code,
-- whichever instance (with whichever providers) serves it. NULL: written
-- by a binary from before this migration (during a rolling upgrade), whose
-- code is checked as that binary would have, by the checking instance's
-- own mode.
ALTER TABLE otp_challenges ADD COLUMN hosted BOOLEAN;
-- Codes Twilio Verify sent before this migration are still checked there.
UPDATE otp_challenges SET hosted = TRUE
 WHERE id IN (SELECT challenge_id FROM outbox WHERE kind IN ('hosted_sms', 'hosted_call') AND challenge_id IS NOT NULL);
