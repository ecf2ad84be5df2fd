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

-- name: event_ids
SELECT e.id FROM events e JOIN shipments s ON s.tracking_number = e.tracking_number
WHERE s.order_id = :order_id AND s.invoice_number = :invoice_number;

-- name: invoice_checked
SELECT 1 FROM invoice_checks WHERE order_id = :order_id AND invoice_number = :invoice_number;

-- name: check_invoice
INSERT INTO invoice_checks (order_id, invoice_number, checked_at, patched)
VALUES (:order_id, :invoice_number, :at, :patched)
ON CONFLICT DO NOTHING;

-- name: add_attempt
INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code,
                      response_body, error)
VALUES (:delivery_id, :attempt, :started_at, :duration_ms, :status_code, :response_body,
        :error);

-- name: attempted
-- The delivery after an attempt, its claim released. What is NULL here (a body when
-- nothing was sent, a receipt unless delivered) keeps the row's value.
UPDATE deliveries
SET state = :state, attempt_count = :attempt, claimed_until = NULL,
    last_status = :status_code, last_error = :error,
    body = COALESCE(CAST(:body AS TEXT), body),
    covered_event_id = CASE WHEN CAST(:body AS TEXT) IS NULL THEN covered_event_id
                            ELSE CAST(:covered_event_id AS BIGINT) END,
    next_attempt_at = COALESCE(:next_attempt_at, next_attempt_at),
    delivered_at = COALESCE(:delivered_at, delivered_at),
    receipt = COALESCE(:receipt, receipt),
    vtex_date = COALESCE(:vtex_date, vtex_date)
WHERE id = :delivery_id;
