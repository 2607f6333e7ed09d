-- Who decrypted which kinds of resources, how often.
--
-- principal:     the caller's token: actor_arn (CloudTrail), else actor_id (Vault entity),
--                else actor_name. Tokens are stable, so a principal's rows join across days.
-- resource_kind: the encryption-context value that names a KIND of data (resource_type,
--                record_type, data_class: kept in clear by schemas/policy because they
--                describe categories, not people); for Vault transit, the key reference.
-- Decrypting operations: KMS Decrypt and ReEncrypt, Vault transit decrypt and rewrap.
--
-- Narrow it with e.g.  AND event_date >= current_date - INTERVAL 30 DAY
-- Run it:  auditveil query --out URI --file schemas/queries/decrypts_by_resource_kind.sql
SELECT
    source,
    coalesce(actor_arn, actor_id, actor_name)                       AS principal,
    coalesce(encryption_context['resource_type'],
             encryption_context['record_type'],
             encryption_context['data_class'],
             key_ref,
             '(unspecified)')                                       AS resource_kind,
    count(*)                                                        AS decrypts,
    count(DISTINCT event_date)                                      AS active_days,
    min(event_time)                                                 AS first_seen,
    max(event_time)                                                 AS last_seen
FROM events
WHERE outcome = 'success'
  AND operation IN ('Decrypt', 'ReEncrypt', 'transit.decrypt', 'transit.rewrap')
GROUP BY ALL
ORDER BY decrypts DESC, principal, resource_kind;
