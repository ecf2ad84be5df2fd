-- Webhooks and the events they bring.

-- name: add_events @sqlite
-- A commit group's events (the VALUES row repeated per event: SQLite would parse a JSON
-- row once per column); one already known (same identity) stays as it is. Returns the
-- identities that were new.
INSERT INTO events (identity, carrier, tracking_number, occurred_at, status, carrier_status,
                    description, city, state, webhook_id, received_at)
VALUES (:identity, :carrier, :number, :occurred_at, :status, :carrier_status, :description,
        :city, :state, :webhook_id, :received_at)
ON CONFLICT DO NOTHING
RETURNING identity;

-- name: add_events @postgresql
INSERT INTO events (identity, carrier, tracking_number, occurred_at, status, carrier_status,
                    description, city, state, webhook_id, received_at)
SELECT value ->> 'identity', value ->> 'carrier', value ->> 'number',
       CAST(value ->> 'occurred_at' AS timestamptz), value ->> 'status',
       value ->> 'carrier_status', value ->> 'description', value ->> 'city',
       value ->> 'state', value ->> 'webhook_id', CAST(value ->> 'received_at' AS timestamptz)
FROM jsonb_array_elements(CAST(:rows AS jsonb))
ON CONFLICT DO NOTHING
RETURNING identity;

-- name: add_webhooks
-- A commit group's accepted webhooks: the VALUES row is repeated once per webhook (the raw
-- body is bytes, which JSON cannot carry; a group holds at most engine.MAX_GROUP).
INSERT INTO webhooks (id, carrier, received_at, body, state, new_events, duplicate_events)
VALUES (:id, :carrier, :received_at, :body, 'accepted', :new_events, :duplicate_events);
