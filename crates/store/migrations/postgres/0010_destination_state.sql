-- A destination's own record of a stream's delivery (the Fabric open-mirroring destination: the next
-- file number, the last audit entry its published files cover, the file in flight), as one JSON text
-- written in one statement, so the file number and the rows it covers move together.
CREATE TABLE destination_state (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    destination TEXT NOT NULL,
    stream TEXT NOT NULL,
    state_json TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, destination, stream)
);
