-- Failed decrypts per principal token: who keeps trying keys or contexts they may not use.
--
-- A burst of AccessDenied / InvalidCiphertextException / IncorrectKeyException from one
-- principal, over several keys or from several addresses, is worth a case. To see who the
-- principal is, file a re-identification request for its token (auditveil reid request).
--
-- Run it:  auditveil query --out URI --file schemas/queries/failed_decrypts_by_principal.sql
SELECT
    coalesce(actor_arn, actor_id, actor_name)   AS principal,
    source,
    coalesce(error_code, '(unknown)')           AS error_code,
    count(*)                                    AS failed_decrypts,
    count(DISTINCT key_ref)                     AS keys_tried,
    count(DISTINCT source_ip)                   AS source_addresses,
    count(DISTINCT event_date)                  AS days,
    min(event_time)                             AS first_failure,
    max(event_time)                             AS last_failure
FROM events
WHERE outcome = 'failure'
  AND operation IN ('Decrypt', 'ReEncrypt', 'transit.decrypt', 'transit.rewrap')
GROUP BY ALL
ORDER BY failed_decrypts DESC, last_failure DESC;
