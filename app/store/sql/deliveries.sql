-- Deliveries: an invoice's tracking on its way to VTEX, its attempts and receipts.

-- name: queue @sqlite
-- A pending delivery per invoice of :rows, unless the invoice has an open one already
-- (ux_deliveries_open_invoice); returns the invoices that got one.
INSERT INTO deliveries (order_id, invoice_number, account, state, queued_at, next_attempt_at)
SELECT value ->> 'order_id', value ->> 'invoice_number', value ->> 'account', 'pending',
       value ->> 'at', value ->> 'due'
FROM json_each(:rows) WHERE true
ON CONFLICT DO NOTHING
RETURNING order_id, invoice_number;

-- name: queue @postgresql
INSERT INTO deliveries (order_id, invoice_number, account, state, queued_at, next_attempt_at)
SELECT value ->> 'order_id', value ->> 'invoice_number', value ->> 'account', 'pending',
       CAST(value ->> 'at' AS timestamptz), CAST(value ->> 'due' AS timestamptz)
FROM jsonb_array_elements(CAST(:rows AS jsonb))
ON CONFLICT DO NOTHING
RETURNING order_id, invoice_number;

-- name: hold_open @postgresql
-- Share-lock the open deliveries of :rows' invoices until this transaction commits.
SELECT order_id, invoice_number FROM deliveries
WHERE state IN ('pending', 'retrying')
  AND (order_id, invoice_number) IN (
    SELECT value ->> 'order_id', value ->> 'invoice_number'
    FROM jsonb_array_elements(CAST(:rows AS jsonb)))
FOR SHARE;

-- name: history
-- Every event of every shipment registered to the invoice, oldest first.
SELECT e.id, e.occurred_at, e.status, e.carrier_status, e.description, e.city, e.state
FROM events e JOIN shipments s ON s.tracking_number = e.tracking_number
WHERE s.order_id = :order_id AND s.invoice_number = :invoice_number
ORDER BY e.occurred_at, e.id;

-- name: histories @sqlite
-- The history of each invoice of :rows (order_id, invoice_number), oldest first.
SELECT s.order_id, s.invoice_number,
       e.id, e.occurred_at, e.status, e.carrier_status, e.description, e.city, e.state
FROM json_each(:rows) w
JOIN shipments s ON s.order_id = w.value ->> 'order_id'
                AND s.invoice_number = w.value ->> 'invoice_number'
JOIN events e ON e.tracking_number = s.tracking_number
ORDER BY e.occurred_at, e.id;

-- name: histories @postgresql
SELECT s.order_id, s.invoice_number,
       e.id, e.occurred_at, e.status, e.carrier_status, e.description, e.city, e.state
FROM jsonb_array_elements(CAST(:rows AS jsonb)) w
JOIN shipments s ON s.order_id = w.value ->> 'order_id'
                AND s.invoice_number = w.value ->> 'invoice_number'
JOIN events e ON e.tracking_number = s.tracking_number
ORDER BY e.occurred_at, e.id;

-- name: event_ids
SELECT e.id FROM events e JOIN shipments s ON s.tracking_number = e.tracking_number
WHERE s.order_id = :order_id AND s.invoice_number = :invoice_number;

-- name: events_held @sqlite
-- The ids of the events each invoice of :rows holds now.
SELECT s.order_id, s.invoice_number, e.id
FROM json_each(:rows) w
JOIN shipments s ON s.order_id = w.value ->> 'order_id'
                AND s.invoice_number = w.value ->> 'invoice_number'
JOIN events e ON e.tracking_number = s.tracking_number;

-- name: events_held @postgresql
SELECT s.order_id, s.invoice_number, e.id
FROM jsonb_array_elements(CAST(:rows AS jsonb)) w
JOIN shipments s ON s.order_id = w.value ->> 'order_id'
                AND s.invoice_number = w.value ->> 'invoice_number'
JOIN events e ON e.tracking_number = s.tracking_number;

-- name: invoice_checked
SELECT checked_by FROM invoice_checks
WHERE order_id = :order_id AND invoice_number = :invoice_number;

-- name: invoices_checked @sqlite
-- How each invoice of :rows that was checked was checked.
SELECT c.order_id, c.invoice_number, c.checked_by
FROM json_each(:rows) w
JOIN invoice_checks c ON c.order_id = w.value ->> 'order_id'
                     AND c.invoice_number = w.value ->> 'invoice_number';

-- name: invoices_checked @postgresql
SELECT c.order_id, c.invoice_number, c.checked_by
FROM jsonb_array_elements(CAST(:rows AS jsonb)) w
JOIN invoice_checks c ON c.order_id = w.value ->> 'order_id'
                     AND c.invoice_number = w.value ->> 'invoice_number';

-- name: check_invoices
-- Invoices whose package was seen with its tracking number; the first check stays.
INSERT INTO invoice_checks (order_id, invoice_number, checked_at, patched, checked_by)
VALUES (:order_id, :invoice_number, :at, :patched, :checked_by)
ON CONFLICT DO NOTHING;

-- name: active_pauses
SELECT account, paused_until FROM account_pauses WHERE paused_until > :now;

-- name: add_attempts
-- A commit group's attempts (the VALUES row repeated per attempt).
INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code,
                      response_body, error)
VALUES (:delivery_id, :attempt, :started_at, :duration_ms, :status_code, :response_body,
        :error);

-- name: attempted @sqlite
-- A commit group's deliveries after their attempts, claims released. What is null in a row
-- (a body when nothing was sent, a receipt unless delivered) keeps the delivery's value.
UPDATE deliveries
SET state = r.value ->> 'state', attempt_count = r.value ->> 'attempt', claimed_until = NULL,
    last_status = r.value ->> 'status_code', last_error = r.value ->> 'error',
    body = COALESCE(r.value ->> 'body', body),
    covered_event_id = CASE WHEN r.value ->> 'body' IS NULL THEN covered_event_id
                            ELSE r.value ->> 'covered_event_id' END,
    next_attempt_at = COALESCE(r.value ->> 'next_attempt_at', next_attempt_at),
    delivered_at = COALESCE(r.value ->> 'delivered_at', delivered_at),
    receipt = COALESCE(r.value ->> 'receipt', receipt),
    vtex_date = COALESCE(r.value ->> 'vtex_date', vtex_date)
FROM json_each(:rows) r
WHERE deliveries.id = r.value ->> 'delivery_id';

-- name: attempted @postgresql
UPDATE deliveries d
SET state = r.state, attempt_count = r.attempt, claimed_until = NULL,
    last_status = r.status_code, last_error = r.error,
    body = COALESCE(r.body, d.body),
    covered_event_id = CASE WHEN r.body IS NULL THEN d.covered_event_id
                            ELSE r.covered_event_id END,
    next_attempt_at = COALESCE(r.next_attempt_at, d.next_attempt_at),
    delivered_at = COALESCE(r.delivered_at, d.delivered_at),
    receipt = COALESCE(r.receipt, d.receipt),
    vtex_date = COALESCE(r.vtex_date, d.vtex_date)
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    delivery_id bigint, state text, attempt integer, status_code integer, error text,
    body text, covered_event_id bigint, next_attempt_at timestamptz,
    delivered_at timestamptz, receipt text, vtex_date text)
WHERE d.id = r.delivery_id;
