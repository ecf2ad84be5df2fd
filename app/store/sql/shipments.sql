-- Shipments: a tracking number, its carrier and link, and the invoice it is registered to.
-- Sets of rows arrive as one JSON array (:numbers, :rows); see app/store/queries.py.

-- name: shipments_of @sqlite
-- The shipments among a JSON array of tracking numbers, then the tombstones of pruned ones
-- (pruned = 1, the other columns empty).
SELECT tracking_number, carrier, tracking_url, order_id, invoice_number, account, registered_at,
       0 AS pruned
FROM shipments
WHERE tracking_number IN (SELECT value FROM json_each(:numbers))
UNION ALL
SELECT tracking_number, NULL, NULL, NULL, NULL, NULL, NULL, 1
FROM pruned_shipments
WHERE tracking_number IN (SELECT value FROM json_each(:numbers));

-- name: shipments_of @postgresql
SELECT tracking_number, carrier, tracking_url, order_id, invoice_number, account, registered_at,
       0 AS pruned
FROM shipments
WHERE tracking_number IN (SELECT jsonb_array_elements_text(CAST(:numbers AS jsonb)))
UNION ALL
SELECT tracking_number, NULL, NULL, NULL, NULL, NULL, NULL, 1
FROM pruned_shipments
WHERE tracking_number IN (SELECT jsonb_array_elements_text(CAST(:numbers AS jsonb)));

-- name: forget_pruned
-- A tracking number registered anew starts afresh: its tombstone goes.
DELETE FROM pruned_shipments WHERE tracking_number = :number;

-- name: add_shipments @sqlite
-- First sight of tracking numbers; one a concurrent writer added first stays as it is.
-- (SQLite reads "SELECT … ON CONFLICT" as an upsert's join without the WHERE.)
INSERT INTO shipments (tracking_number, carrier, tracking_url, first_seen_at, updated_at)
SELECT value ->> 'number', value ->> 'carrier', value ->> 'url', value ->> 'at', value ->> 'at'
FROM json_each(:rows) WHERE true
ON CONFLICT DO NOTHING;

-- name: add_shipments @postgresql
INSERT INTO shipments (tracking_number, carrier, tracking_url, first_seen_at, updated_at)
SELECT value ->> 'number', value ->> 'carrier', value ->> 'url',
       CAST(value ->> 'at' AS timestamptz), CAST(value ->> 'at' AS timestamptz)
FROM jsonb_array_elements(CAST(:rows AS jsonb))
ON CONFLICT DO NOTHING;

-- name: save_shipments @sqlite
-- Each changed shipment's row as the write left it.
UPDATE shipments
SET carrier = j.value ->> 'carrier', tracking_url = j.value ->> 'url',
    order_id = j.value ->> 'order_id', invoice_number = j.value ->> 'invoice_number',
    account = j.value ->> 'account', registered_at = j.value ->> 'registered_at',
    updated_at = j.value ->> 'at'
FROM json_each(:rows) AS j
WHERE shipments.tracking_number = j.value ->> 'number';

-- name: save_shipments @postgresql
UPDATE shipments
SET carrier = j.value ->> 'carrier', tracking_url = j.value ->> 'url',
    order_id = j.value ->> 'order_id', invoice_number = j.value ->> 'invoice_number',
    account = j.value ->> 'account',
    registered_at = CAST(j.value ->> 'registered_at' AS timestamptz),
    updated_at = CAST(j.value ->> 'at' AS timestamptz)
FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS j
WHERE shipments.tracking_number = j.value ->> 'number';

-- name: add_aliases @sqlite
INSERT INTO shipment_aliases (alias, tracking_number)
SELECT value ->> 'alias', value ->> 'number' FROM json_each(:rows) WHERE true
ON CONFLICT DO NOTHING;

-- name: add_aliases @postgresql
INSERT INTO shipment_aliases (alias, tracking_number)
SELECT value ->> 'alias', value ->> 'number' FROM jsonb_array_elements(CAST(:rows AS jsonb))
ON CONFLICT DO NOTHING;

-- name: numbers_aliased_as
-- The tracking numbers that hold their events under another key, known by :alias.
SELECT tracking_number FROM shipment_aliases WHERE alias = :alias;

-- name: invoices_with_events @sqlite
-- The registered invoices of these tracking numbers that hold events, by number.
SELECT s.tracking_number, s.order_id, s.invoice_number, s.account
FROM shipments s
WHERE s.tracking_number IN (SELECT value FROM json_each(:numbers))
  AND s.order_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM events e WHERE e.tracking_number = s.tracking_number)
ORDER BY s.tracking_number;

-- name: invoices_with_events @postgresql
SELECT s.tracking_number, s.order_id, s.invoice_number, s.account
FROM shipments s
WHERE s.tracking_number IN (SELECT jsonb_array_elements_text(CAST(:numbers AS jsonb)))
  AND s.order_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM events e WHERE e.tracking_number = s.tracking_number)
ORDER BY s.tracking_number;
