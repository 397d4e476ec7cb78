-- A priced round's signed report (neosl.pricefeeds.reports): the serialized report, its
-- signature (r||s over SHA-256 of it), and the key that signed it (its id and compressed
-- public key). NULL on rounds priced while no report key was configured, and on failed ones.
ALTER TABLE price_rounds ADD COLUMN report BYTEA;
ALTER TABLE price_rounds ADD COLUMN report_signature BYTEA;
ALTER TABLE price_rounds ADD COLUMN report_key_id VARCHAR(50);
ALTER TABLE price_rounds ADD COLUMN report_public_key BYTEA;
ALTER TABLE price_rounds ADD CONSTRAINT price_rounds_report_whole CHECK (
    (report IS NULL) = (report_signature IS NULL)
    AND (report IS NULL) = (report_key_id IS NULL)
    AND (report IS NULL) = (report_public_key IS NULL)
);
