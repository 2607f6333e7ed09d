-- Unusual source networks: addresses a principal rarely calls from (under 5 % of its calls),
-- with how many principals share each address.
--
-- source_ip holds one token per source address (ip.k1.…); AWS service callers
-- (kms.amazonaws.com, AWS Internal) stay in clear and are left out here. A principal that
-- normally works from two or three addresses and suddenly decrypts from a new one that no
-- other principal uses is the classic pattern of a stolen access key.
--
-- Run it:  auditveil query --out URI --file schemas/queries/unusual_source_networks.sql
WITH calls AS (
    SELECT coalesce(actor_arn, actor_id, actor_name) AS principal, source_ip, event_time, event_date
    FROM events
    WHERE source_ip LIKE 'ip.%'
),
pair AS (
    SELECT principal, source_ip,
           count(*)                    AS calls,
           count(DISTINCT event_date)  AS days,
           min(event_time)             AS first_seen,
           max(event_time)             AS last_seen
    FROM calls
    GROUP BY ALL
),
per_principal AS (
    SELECT principal, sum(calls) AS total_calls, count(*) AS addresses
    FROM pair
    GROUP BY principal
),
per_address AS (
    SELECT source_ip, count(DISTINCT principal) AS principals
    FROM pair
    GROUP BY source_ip
)
SELECT
    p.principal,
    p.source_ip,
    p.calls,
    t.total_calls,
    round(100.0 * p.calls / t.total_calls, 2)  AS pct_of_principal_calls,
    a.principals                               AS principals_using_address,
    p.days,
    p.first_seen,
    p.last_seen
FROM pair AS p
JOIN per_principal AS t USING (principal)
JOIN per_address AS a USING (source_ip)
WHERE t.addresses > 1
  AND p.calls * 20 <= t.total_calls
ORDER BY pct_of_principal_calls, principals_using_address, p.last_seen DESC
LIMIT 200;
