-- Housekeeping deletes deliveries past DELIVERY_RETENTION_DAYS by the time they arrived.
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries (received_at);
