-- +goose Up
-- Fulfillment (docs/fulfillment.md): warehouses holding each SKU's stock,
-- shipments of an order's lines from one warehouse each, and the carrier's
-- events about them.
--
-- Stock per (sku, warehouse): warehouse_stock.on_hand summed over a SKU's
-- warehouses is always the SKU's inventory.on_hand. Reservations stay per
-- SKU; allocated is what shipments not yet picked up have promised from a
-- warehouse, so an allocation never promises a unit twice. Every change of
-- on_hand is an inventory_events row naming its warehouse, so the log
-- replays per SKU (as before) and per (sku, warehouse).
CREATE TABLE warehouses (
    warehouse  text PRIMARY KEY CHECK (warehouse ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    name       text NOT NULL,
    -- Allocation prefers lower priorities when warehouses tie.
    priority   integer NOT NULL DEFAULT 100,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO warehouses (warehouse, name, priority) VALUES ('main', 'Main warehouse', 0);

CREATE TABLE warehouse_stock (
    sku        text NOT NULL REFERENCES products (sku),
    warehouse  text NOT NULL REFERENCES warehouses (warehouse),
    on_hand    integer NOT NULL CHECK (on_hand >= 0),
    allocated  integer NOT NULL DEFAULT 0 CHECK (allocated >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, warehouse),
    CHECK (allocated <= on_hand)
);

ALTER TABLE inventory_events ADD COLUMN warehouse text REFERENCES warehouses (warehouse);
CREATE INDEX inventory_events_warehouse ON inventory_events (sku, warehouse, id) WHERE warehouse IS NOT NULL;

-- Every unit on hand today is in the main warehouse: a relocation moves it
-- there in the log, into main first and then out of "no warehouse", so a
-- replay never sees a SKU short of what it had reserved.
INSERT INTO warehouse_stock (sku, warehouse, on_hand) SELECT sku, 'main', on_hand FROM inventory;
INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason, warehouse)
SELECT sku, on_hand, 0, 'relocate', 'main' FROM inventory WHERE on_hand > 0 ORDER BY sku;
INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason, warehouse)
SELECT sku, -on_hand, 0, 'relocate', NULL FROM inventory WHERE on_hand > 0 ORDER BY sku;

-- How much of a held reservation has left in shipments.
ALTER TABLE reservations ADD COLUMN shipped integer NOT NULL DEFAULT 0 CHECK (shipped >= 0);
ALTER TABLE reservations ADD CONSTRAINT reservations_shipped_within CHECK (shipped <= quantity);

-- A shipment is an order's lines from one warehouse. status moves forward
-- only: allocated -> handed_over -> picked_up -> in_transit -> delivered,
-- or lost once it left; cancelled while it has not left.
CREATE TABLE shipments (
    shipment_id     uuid PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES orders (order_id),
    warehouse       text NOT NULL REFERENCES warehouses (warehouse),
    status          text NOT NULL CHECK (status IN ('allocated', 'handed_over', 'picked_up', 'in_transit', 'delivered', 'lost', 'cancelled')),
    tracking_number text,
    value_cents     bigint NOT NULL DEFAULT 0,
    left_at         timestamptz,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, warehouse)
);
CREATE INDEX shipments_order ON shipments (order_id);
CREATE INDEX shipments_waiting ON shipments (created_at) WHERE status IN ('allocated', 'handed_over');

CREATE TABLE shipment_items (
    shipment_id uuid NOT NULL REFERENCES shipments (shipment_id),
    sku         text NOT NULL REFERENCES products (sku),
    quantity    integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, sku)
);

-- The carrier's events, once per event id however often the carrier
-- re-sends one.
CREATE TABLE carrier_events (
    event_id        text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 128),
    shipment_id     uuid NOT NULL REFERENCES shipments (shipment_id),
    type            text NOT NULL,
    at              timestamptz NOT NULL,
    tracking_number text,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX carrier_events_shipment ON carrier_events (shipment_id, at);

-- +goose Down
DROP TABLE carrier_events, shipment_items, shipments;
ALTER TABLE reservations DROP CONSTRAINT reservations_shipped_within;
ALTER TABLE reservations DROP COLUMN shipped;
DELETE FROM inventory_events WHERE reason = 'relocate';
ALTER TABLE inventory_events DROP COLUMN warehouse;
DROP TABLE warehouse_stock, warehouses;
