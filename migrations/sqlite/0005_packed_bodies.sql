-- Bodies stored from this version on are LZ4-compressed, their length first ('lz4'); NULL
-- marks a body stored as GitHub sent it, by an earlier version.
ALTER TABLE deliveries ADD COLUMN body_encoding TEXT;
