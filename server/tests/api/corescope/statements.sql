-- CoreScope's SQL, as its ingestor and server run it (Kpa-clawbot/CoreScope at a06ac8ac).
-- A test oracle for meshscope: every statement below is CoreScope's own SQL text (whitespace
-- re-indented, Go `?` placeholders renamed to the SQLite named parameters listed here; where Go
-- builds SQL dynamically one representative concrete form is given and a @note says which).
-- Each entry: @name (component.GoFunctionOrPurpose), @source (file:line at a06ac8ac where the SQL
-- string literal starts), @kind (read = returns rows, write), optional @nonnull (result columns Go
-- scans into a non-pointer, non-sql.Null* value: a NULL there makes rows.Scan fail) and @note lines.
-- Current-schema forms are given where Go adapts the text to PRAGMA-detected optional columns.
-- Components: schema (ingestor boot migrations), asyncmig (_async_migrations), ingestor (MQTT hot
-- path + backfills), maintenance (retention/prune/backfill ticker), neighbor (neighbor_edges
-- builder), server (read path), hashmigrate (server start-up hash rewrite).
-- Parameters (bind every one a statement uses; names may repeat inside one statement):
-- @param :tx_id            an existing transmissions.id (ideally one that has observations)
-- @param :tx_id2           a second existing transmissions.id (hash-migration merge survivor; may equal :tx_id)
-- @param :hash             transmissions.hash of :tx_id
-- @param :raw_hex          transmissions.raw_hex of :tx_id (uppercase or lowercase hex, as stored)
-- @param :new_hash         a 16-hex-char content hash not present in transmissions
-- @param :new_raw_hex      a plausible MeshCore packet as hex, not yet stored
-- @param :obs_id           an existing observations.id
-- @param :after_id         an id cursor for "id > :after_id" scans (e.g. 0, or an existing id minus 1)
-- @param :observer_id      an existing observers.id (text; a 64-hex pubkey, usually uppercase)
-- @param :observer_rowid   observers.rowid of :observer_id (what observations.observer_idx stores)
-- @param :new_observer_id  an observers.id not yet present
-- @param :pubkey           an existing nodes.public_key (lowercase 64 hex)
-- @param :node_a           lowercase pubkey, first of a neighbor_edges pair (node_a <= node_b)
-- @param :node_b           lowercase pubkey, second of a neighbor_edges pair
-- @param :pubkey_like      LIKE pattern: a hex prefix of :pubkey followed by %, e.g. 'ab12cd34%'
-- @param :name             a node/observer name, e.g. 'Test Node'
-- @param :name_like        LIKE pattern for a name search, e.g. '%Node%'
-- @param :role             a node role: 'repeater', 'companion', 'room' or 'sensor'
-- @param :iata             an upper-case IATA region code, e.g. 'SJC'
-- @param :lat              latitude (REAL)
-- @param :lon              longitude (REAL)
-- @param :lat_min          bounding box: minimum latitude
-- @param :lat_max          bounding box: maximum latitude
-- @param :lon_min          bounding box: minimum longitude
-- @param :lon_max          bounding box: maximum longitude
-- @param :now_text         current time as RFC3339 text, e.g. '2026-12-02T10:00:00Z' (ingest/wall-clock time)
-- @param :now_unix         current time as integer unix seconds (observations.timestamp / transmissions.last_seen axis)
-- @param :seen_text        an RFC3339 receive/advert time <= :now_text (envelope rxTime, advert time)
-- @param :cutoff_text      an RFC3339 time in the past (retention/since cutoff), e.g. now - 7 days
-- @param :cutoff_unix      the same kind of cutoff as integer unix seconds
-- @param :cutoff_date      a date floor as 'YYYY-MM-DD'
-- @param :limit            a row limit, e.g. 50
-- @param :offset           a row offset, e.g. 0
-- @param :channel_hash     a transmissions.channel_hash value, e.g. 'Public', '#test' or 'enc_3A'
-- @param :payload_type     a payload type number (4 = ADVERT, 5 = GRP_TXT, ...)
-- @param :route_type       a route type number 0-3 (0/3 transport, 1 flood, 2 direct)
-- @param :payload_version  payload version number (usually 0)
-- @param :decoded_json     CoreScope-style decoded payload JSON text
-- @param :path_json        a JSON array of hop hex prefixes, e.g. '["A1","B2"]' or '[]'
-- @param :path_like        LIKE pattern for one hop token inside path_json, e.g. '%"A1"%'
-- @param :resolved_path    JSON array of full pubkeys or nulls, e.g. '["ab..",null]', or NULL
-- @param :quoted_pubkey    a lowercase pubkey wrapped in double quotes, e.g. '"ab12..."'
-- @param :direction        observation direction text or NULL, e.g. 'rx'
-- @param :snr              signal-to-noise ratio (REAL) or NULL
-- @param :rssi             RSSI (number) or NULL
-- @param :score            observation score (INTEGER) or NULL
-- @param :scope_name       transport scope name ('#region', '' for unknown) or NULL
-- @param :battery_mv       battery millivolts (INTEGER) or NULL
-- @param :temperature_c    temperature in Celsius (REAL) or NULL
-- @param :noise_floor      noise floor dBm (REAL) or NULL
-- @param :uptime_secs      uptime seconds (INTEGER) or NULL
-- @param :model            observer hardware model text or NULL
-- @param :firmware         observer firmware version text or NULL
-- @param :client_version   observer client version text or NULL
-- @param :radio            observer radio description text or NULL
-- @param :can_relay        NULL (unknown), 0 or 1
-- @param :counter          a cumulative observer counter value (INTEGER) or NULL: tx/rx air seconds, recv errors, packets sent/received
-- @param :skew_seconds     signed clock skew in seconds (INTEGER)
-- @param :migration_name   an async migration name, e.g. 'tx_last_seen_backfill_v1'
-- @param :error_text       an error message text
-- @param :multibyte_sup    multibyte capability: 1 (suspected) or 2 (confirmed)
-- @param :evidence         multibyte evidence text
-- @param :reason           a drop reason text, e.g. 'bad signature'
-- @param :heard_key        client reception heard key: a 4-6 hex-char node prefix or a full 64-hex pubkey
-- @param :heard_keylen     byte length of :heard_key (2, 3 or 32)
-- @param :accuracy_m       GPS position accuracy in metres (REAL) or NULL
-- @param :src              client reception source tag text, e.g. 'app'

-- @name schema.DropPacketsView
-- @source cmd/ingestor/db.go:357
-- @kind write
-- @note Runs in the ingestor's applySchema at EVERY boot.
-- @note Always immediately followed by schema.CreatePacketsView.
DROP VIEW IF EXISTS packets_v;

-- @name schema.CreatePacketsView
-- @source cmd/ingestor/db.go:358
-- @kind write
-- @note Runs in the ingestor's applySchema at EVERY boot. Run schema.DropPacketsView first (CoreScope always does) or this fails with "view packets_v already exists".
-- @note SQLite does not resolve view columns at CREATE time, so this succeeds even on a wrong schema; it needs observations.raw_hex and observers.inactive only when the view is read. No Go code at a06ac8ac reads packets_v.
CREATE VIEW packets_v AS
SELECT o.id, COALESCE(o.raw_hex, t.raw_hex) AS raw_hex,
     datetime(o.timestamp, 'unixepoch') AS timestamp,
     obs.id AS observer_id, obs.name AS observer_name,
     o.direction, o.snr, o.rssi, o.score, t.hash, t.route_type,
     t.payload_type, t.payload_version, o.path_json, t.decoded_json,
     t.created_at
FROM observations o
JOIN transmissions t ON t.id = o.transmission_id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx AND (obs.inactive IS NULL OR obs.inactive = 0);

-- @name schema.MigrationGate
-- @source cmd/ingestor/db.go:377
-- @kind read
-- @nonnull #1
-- @note Representative of CoreScope's one-shot gates: the same statement with name literals advert_count_unique_v1, noise_floor_real_v1, node_telemetry_v1, obs_timestamp_index_v1, observer_metrics_v1, observer_metrics_ts_idx, observers_inactive_v1, observer_metrics_packets_v1, channel_hash_v1, dropped_packets_v1, observers_last_packet_at_v1, observers_clock_naive_v1, cleanup_legacy_null_hash_ts, foreign_advert_v1, from_pubkey_v1, channel_hash_casing_v1 (applySchema), obs_observer_ts_idx_v1 (db.go:144), backfill_path_json_from_raw_hex_v1 (db.go:1324), backfill_default_scope_v1 (db.go:1423).
-- @note Scanned into an int; ErrNoRows means "not done" and the migration runs. Needs table _migrations (created by applySchema if absent).
SELECT 1 FROM _migrations WHERE name = 'advert_count_unique_v1';

-- @name schema.AdvertCountUniqueV1
-- @source cmd/ingestor/db.go:385
-- @kind write
-- @note One-shot boot migration in applySchema: runs at ingestor boot unless _migrations has name 'advert_count_unique_v1' (a file without that row gets it on first CoreScope boot).
-- @note Recomputes EVERY nodes.advert_count as the count of ADVERT transmissions whose from_pubkey equals the node key.
UPDATE nodes SET advert_count = (
  SELECT COUNT(*) FROM transmissions t
  WHERE t.payload_type = 4
    AND t.from_pubkey = nodes.public_key
);

-- @name schema.RecordMigration
-- @source cmd/ingestor/db.go:392
-- @kind write
-- @note Representative: the same INSERT (no OR IGNORE) is run with each gate name listed under schema.MigrationGate after its migration; fails with a UNIQUE error if the row already exists (error ignored by CoreScope).
INSERT INTO _migrations (name) VALUES ('advert_count_unique_v1');

-- @name schema.NoiseFloorRealV1
-- @source cmd/ingestor/db.go:403
-- @kind write
-- @note One-shot boot migration in applySchema: runs at ingestor boot unless _migrations has name 'noise_floor_real_v1' (a file without that row gets it on first CoreScope boot).
UPDATE observers SET noise_floor = CAST(noise_floor AS REAL) WHERE noise_floor IS NOT NULL AND typeof(noise_floor) = 'integer';

-- @name schema.CountMixedCasePubkeys
-- @source cmd/ingestor/db.go:498
-- @kind read
-- @nonnull #1
-- @note Runs in the ingestor's applySchema at EVERY boot.
SELECT COUNT(*) FROM nodes WHERE public_key != lower(public_key);

-- @name schema.LowercasePubkeys
-- @source cmd/ingestor/db.go:503
-- @kind write
-- @note Runs in the ingestor's applySchema at EVERY boot. Only executed when schema.CountMixedCasePubkeys > 0; a lowercase/uppercase duplicate pair makes it fail on the PRIMARY KEY (logged, boot continues).
UPDATE nodes SET public_key = lower(public_key) WHERE public_key != lower(public_key);

-- @name schema.ChannelHashBackfillChan
-- @source cmd/ingestor/db.go:576
-- @kind write
-- @note One-shot boot migration in applySchema: runs at ingestor boot unless _migrations has name 'channel_hash_v1' (a file without that row gets it on first CoreScope boot).
UPDATE transmissions SET channel_hash = json_extract(decoded_json, '$.channel') WHERE payload_type = 5 AND channel_hash IS NULL AND json_extract(decoded_json, '$.type') = 'CHAN';

-- @name schema.ChannelHashBackfillEnc
-- @source cmd/ingestor/db.go:582
-- @kind write
-- @note One-shot boot migration in applySchema: runs at ingestor boot unless _migrations has name 'channel_hash_v1' (a file without that row gets it on first CoreScope boot).
UPDATE transmissions SET channel_hash = 'enc_' || json_extract(decoded_json, '$.channelHashHex') WHERE payload_type = 5 AND channel_hash IS NULL AND json_extract(decoded_json, '$.type') = 'GRP_TXT';

-- @name schema.LastPacketAtBackfill
-- @source cmd/ingestor/db.go:637
-- @kind write
-- @note One-shot boot migration in applySchema: runs at ingestor boot unless _migrations has name 'observers_last_packet_at_v1' (a file without that row gets it on first CoreScope boot).
UPDATE observers SET last_packet_at = last_seen
WHERE last_packet_at IS NULL
AND rowid IN (SELECT DISTINCT observer_idx FROM observations WHERE observer_idx IS NOT NULL);

-- @name schema.CleanupLegacyObservations
-- @source cmd/ingestor/db.go:678
-- @kind write
-- @note One-shot boot migration in applySchema: runs at ingestor boot unless _migrations has name 'cleanup_legacy_null_hash_ts' (a file without that row gets it on first CoreScope boot).
DELETE FROM observations WHERE transmission_id IN (SELECT id FROM transmissions WHERE hash = '' OR first_seen = '');

-- @name schema.CleanupLegacyTransmissions
-- @source cmd/ingestor/db.go:679
-- @kind write
-- @note One-shot boot migration in applySchema: runs at ingestor boot unless _migrations has name 'cleanup_legacy_null_hash_ts' (a file without that row gets it on first CoreScope boot).
DELETE FROM transmissions WHERE hash = '' OR first_seen = '';

-- @name schema.ChannelHashCasingV1
-- @source cmd/ingestor/db.go:736
-- @kind write
-- @note One-shot boot migration in applySchema: runs at ingestor boot unless _migrations has name 'channel_hash_casing_v1' (a file without that row gets it on first CoreScope boot). A failure here aborts ingestor boot.
UPDATE transmissions SET channel_hash = 'Public' WHERE channel_hash = 'public' AND payload_type = 5;

-- @name schema.RecordMigrationOrIgnore
-- @source internal/dbschema/dbschema.go:400
-- @kind write
-- @note dbschema.Apply runs this at EVERY boot; same statement with 'nodes_default_scope_v1' (dbschema.go:426), 'observations_raw_hex_v1' (dbschema.go:449); applySchema uses it for 'channel_hash_casing_v1' (db.go:743), OpenStore's async fn for 'obs_observer_ts_idx_v1' (db.go:151). A failure aborts ingestor boot.
INSERT OR IGNORE INTO _migrations (name) VALUES ('scope_name_v1');

-- @name schema.SoftDeleteBlacklistedObservers
-- @source internal/dbschema/dbschema.go:482
-- @kind write
-- @note Dynamic IN list: one "LOWER(?)" per configured observerBlacklist entry; shown with one. Runs at ingestor startup only when a blacklist is configured.
UPDATE observers SET inactive = 1 WHERE LOWER(id) IN (LOWER(:observer_id)) AND (inactive IS NULL OR inactive = 0);

-- @name asyncmig.TxLastSeenBackfillV1
-- @source cmd/ingestor/db.go:170
-- @kind write
-- @note Body of async migration 'tx_last_seen_backfill_v1' (scheduled at every ingestor boot; skipped once _async_migrations says done).
UPDATE transmissions
SET last_seen = COALESCE((
  SELECT MAX(timestamp) FROM observations WHERE transmission_id = transmissions.id
), last_seen)
WHERE last_seen = 0;

-- @name asyncmig.GetStatus
-- @source cmd/ingestor/async_migration.go:73
-- @kind read
-- @nonnull status
-- @note Same text also at async_migration.go:139 (AsyncMigrationStatus). status is scanned into a Go string: a NULL status makes RunAsyncMigration return an error (migration not scheduled).
SELECT status FROM _async_migrations WHERE name = :migration_name;

-- @name asyncmig.Reset
-- @source cmd/ingestor/async_migration.go:80
-- @kind write
UPDATE _async_migrations
SET status = 'pending_async', started_at = datetime('now'), ended_at = NULL, error = NULL
WHERE name = :migration_name;

-- @name asyncmig.Register
-- @source cmd/ingestor/async_migration.go:87
-- @kind write
-- @note Only run after asyncmig.GetStatus found no row; fails on the PRIMARY KEY if :migration_name is already registered.
INSERT INTO _async_migrations (name, status) VALUES (:migration_name, 'pending_async');

-- @name asyncmig.MarkFailed
-- @source cmd/ingestor/async_migration.go:106
-- @kind write
UPDATE _async_migrations
SET status = 'failed', ended_at = datetime('now'), error = :error_text
WHERE name = :migration_name;

-- @name asyncmig.MarkDone
-- @source cmd/ingestor/async_migration.go:115
-- @kind write
UPDATE _async_migrations
SET status = 'done', ended_at = datetime('now'), error = NULL
WHERE name = :migration_name;

-- @name ingestor.GetTxByHash
-- @source cmd/ingestor/db.go:755
-- @kind read
-- @nonnull id, first_seen
-- @note Scanned into int64 + string. ANY scan error (incl. NULL first_seen) is treated as "no such transmission": CoreScope then runs ingestor.InsertTransmission, which fails on UNIQUE(hash), and the packet is dropped.
SELECT id, first_seen FROM transmissions WHERE hash = :hash;

-- @name ingestor.InsertTransmission
-- @source cmd/ingestor/db.go:760
-- @kind write
-- @note from_pubkey is set only for ADVERTs (else NULL); channel_hash/scope_name may be NULL. Prepared at boot: a missing column fails OpenStore.
INSERT INTO transmissions (raw_hex, hash, first_seen, route_type, payload_type, payload_version, decoded_json, channel_hash, scope_name, from_pubkey, last_seen)
VALUES (:new_raw_hex, :new_hash, :seen_text, :route_type, :payload_type, :payload_version, :decoded_json, :channel_hash, :scope_name, :pubkey, :now_unix);

-- @name ingestor.UpdateTxFirstSeen
-- @source cmd/ingestor/db.go:768
-- @kind write
UPDATE transmissions SET first_seen = :seen_text WHERE id = :tx_id;

-- @name ingestor.BumpTxLastSeen
-- @source cmd/ingestor/db.go:782
-- @kind write
UPDATE transmissions SET last_seen = :now_unix WHERE id = :tx_id AND last_seen < :now_unix;

-- @name ingestor.InsertObservation
-- @source cmd/ingestor/db.go:787
-- @kind write
-- @note Prepared at ingestor boot. The ON CONFLICT target requires the expression UNIQUE index idx_observations_dedup ON observations(transmission_id, observer_idx, COALESCE(path_json, '')); without it prepare fails ("ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint") and the ingestor refuses to start. CoreScope only creates that index when it creates the observations table itself.
INSERT INTO observations (transmission_id, observer_idx, direction, snr, rssi, score, path_json, timestamp, raw_hex, resolved_path)
VALUES (:tx_id, :observer_rowid, :direction, :snr, :rssi, :score, :path_json, :now_unix, :raw_hex, :resolved_path)
ON CONFLICT(transmission_id, observer_idx, COALESCE(path_json, '')) DO UPDATE SET
  snr           = COALESCE(excluded.snr,           snr),
  rssi          = COALESCE(excluded.rssi,          rssi),
  score         = COALESCE(excluded.score,         score),
  raw_hex       = COALESCE(excluded.raw_hex,       raw_hex),
  resolved_path = COALESCE(excluded.resolved_path, resolved_path);

-- @name ingestor.UpsertNode
-- @source cmd/ingestor/db.go:801
-- @kind write
INSERT INTO nodes (public_key, name, role, lat, lon, last_seen, first_seen)
VALUES (:pubkey, :name, :role, :lat, :lon, :seen_text, :seen_text)
ON CONFLICT(public_key) DO UPDATE SET
  name = COALESCE(:name, name),
  role = COALESCE(:role, role),
  lat = COALESCE(:lat, lat),
  lon = COALESCE(:lon, lon),
  last_seen = MAX(MIN(COALESCE(last_seen, ''), :now_text), :seen_text);

-- @name ingestor.IncrementAdvertCount
-- @source cmd/ingestor/db.go:815
-- @kind write
-- @note A NULL advert_count stays NULL (NULL + 1).
UPDATE nodes SET advert_count = advert_count + 1 WHERE public_key = :pubkey;

-- @name ingestor.UpsertObserver
-- @source cmd/ingestor/db.go:822
-- @kind write
-- @note UpsertObserverAt. A NULL packet_count stays NULL (NULL + 1). :can_relay is NULL, 0 or 1.
INSERT INTO observers (id, name, iata, last_seen, first_seen, packet_count, model, firmware, client_version, radio, battery_mv, uptime_secs, noise_floor, can_relay, can_relay_seen)
VALUES (:observer_id, :name, :iata, :seen_text, :seen_text, 1, :model, :firmware, :client_version, :radio, :battery_mv, :uptime_secs, :noise_floor, COALESCE(:can_relay, 1), CASE WHEN :can_relay IS NULL THEN 0 ELSE 1 END)
ON CONFLICT(id) DO UPDATE SET
  name = COALESCE(:name, name),
  iata = COALESCE(:iata, iata),
  last_seen = MAX(MIN(COALESCE(last_seen, ''), :now_text), :seen_text),
  packet_count = packet_count + 1,
  model = COALESCE(:model, model),
  firmware = COALESCE(:firmware, firmware),
  client_version = COALESCE(:client_version, client_version),
  radio = COALESCE(:radio, radio),
  battery_mv = COALESCE(:battery_mv, battery_mv),
  uptime_secs = COALESCE(:uptime_secs, uptime_secs),
  noise_floor = COALESCE(:noise_floor, noise_floor),
  can_relay = COALESCE(:can_relay, can_relay),
  can_relay_seen = CASE WHEN :can_relay IS NULL THEN can_relay_seen ELSE 1 END;

-- @name ingestor.GetObserverRowid
-- @source cmd/ingestor/db.go:844
-- @kind read
-- @nonnull rowid
-- @note Same text at cmd/server/routes.go:1312 (handlePostPacket). Any error leaves observations.observer_idx NULL for the new observation.
SELECT rowid FROM observers WHERE id = :observer_id;

-- @name ingestor.UpdateObserverLastSeen
-- @source cmd/ingestor/db.go:852
-- @kind write
UPDATE observers SET
  last_seen      = MAX(MIN(COALESCE(last_seen, ''), :now_text), :now_text),
  last_packet_at = MAX(MIN(COALESCE(last_packet_at, ''), :now_text), :now_text)
WHERE rowid = :observer_rowid;

-- @name ingestor.UpdateNodeTelemetry
-- @source cmd/ingestor/db.go:861
-- @kind write
UPDATE nodes SET
  battery_mv = COALESCE(:battery_mv, battery_mv),
  temperature_c = COALESCE(:temperature_c, temperature_c)
WHERE public_key = :pubkey;

-- @name ingestor.UpsertMetrics
-- @source cmd/ingestor/db.go:871
-- @kind write
-- @note observer_metrics.timestamp is RFC3339 rounded to the sample interval.
INSERT OR REPLACE INTO observer_metrics (observer_id, timestamp, noise_floor, tx_air_secs, rx_air_secs, recv_errors, battery_mv, packets_sent, packets_recv)
VALUES (:observer_id, :now_text, :noise_floor, :counter, :counter, :counter, :battery_mv, :counter, :counter);

-- @name ingestor.MarkNodeForeign
-- @source cmd/ingestor/db.go:1041
-- @kind write
UPDATE nodes SET foreign_advert = 1 WHERE public_key = :pubkey;

-- @name ingestor.ReactivateObserver
-- @source cmd/ingestor/db.go:1154
-- @kind write
-- @note Runs after every ingestor.UpsertObserver.
UPDATE observers SET inactive = 0 WHERE id = :observer_id AND inactive = 1;

-- @name ingestor.BackfillPathJSONSelect
-- @source cmd/ingestor/db.go:1335
-- @kind read
-- @nonnull id, raw_hex
-- @note Async boot backfill gated by _migrations 'backfill_path_json_from_raw_hex_v1'. Scan errors skip the row.
-- @note SQL '--' comment lines inside CoreScope's string were dropped (they contain ';' or would confuse the parser); tokens otherwise verbatim.
SELECT o.id, o.raw_hex
FROM observations o
JOIN transmissions t ON o.transmission_id = t.id
WHERE o.raw_hex IS NOT NULL AND o.raw_hex != ''
AND (o.path_json IS NULL OR o.path_json = '')
AND t.payload_type != 9
LIMIT :limit;

-- @name ingestor.BackfillPathJSONEmpty
-- @source cmd/ingestor/db.go:1368
-- @kind write
UPDATE observations SET path_json = '[]' WHERE id = :obs_id;

-- @name ingestor.BackfillPathJSONSet
-- @source cmd/ingestor/db.go:1376
-- @kind write
UPDATE observations SET path_json = :path_json WHERE id = :obs_id;

-- @name ingestor.BackfillDefaultScope
-- @source cmd/ingestor/db.go:1427
-- @kind write
-- @note Async boot backfill (only when region keys are configured), gated by _migrations 'backfill_default_scope_v1'.
-- @note SQL '--' comment lines inside CoreScope's string were dropped (they contain ';' or would confuse the parser); tokens otherwise verbatim.
UPDATE nodes SET default_scope = (
  SELECT t.scope_name FROM transmissions t
  WHERE t.from_pubkey = nodes.public_key
    AND t.payload_type = 4
    AND t.scope_name IS NOT NULL AND t.scope_name != ''
  ORDER BY t.first_seen DESC LIMIT 1
) WHERE EXISTS (
  SELECT 1 FROM transmissions t
  WHERE t.from_pubkey = nodes.public_key
    AND t.payload_type = 4
    AND t.scope_name IS NOT NULL AND t.scope_name != ''
);

-- @name ingestor.InsertDroppedPacket
-- @source cmd/ingestor/db.go:1530
-- @kind write
-- @note Needs table dropped_packets (created by one-shot migration dropped_packets_v1).
INSERT INTO dropped_packets (hash, raw_hex, reason, observer_id, observer_name, node_pubkey, node_name) VALUES (:new_hash, :new_raw_hex, :reason, :observer_id, :name, :pubkey, :name);

-- @name ingestor.GetNodeDefaultScope
-- @source cmd/ingestor/db.go:1616
-- @kind read
-- @note Scanned into sql.NullString.
SELECT default_scope FROM nodes WHERE public_key = :pubkey;

-- @name ingestor.SetNodeDefaultScope
-- @source cmd/ingestor/db.go:1620
-- @kind write
UPDATE nodes SET default_scope = :scope_name WHERE public_key = :pubkey;

-- @name ingestor.SetInactiveNodeDefaultScope
-- @source cmd/ingestor/db.go:1624
-- @kind write
UPDATE inactive_nodes SET default_scope = :scope_name WHERE public_key = :pubkey;

-- @name ingestor.RecordNaiveSkew
-- @source cmd/ingestor/db.go:1646
-- @kind write
-- @note Can INSERT an observers row with only id + clock columns (name/last_seen NULL, packet_count DEFAULT 0).
INSERT INTO observers (id, clock_skew_seconds, clock_skew_count_24h, clock_last_naive_at)
VALUES (:observer_id, :skew_seconds, 1, :now_text)
ON CONFLICT(id) DO UPDATE SET
  clock_skew_seconds = excluded.clock_skew_seconds,
  clock_last_naive_at = excluded.clock_last_naive_at,
  clock_skew_count_24h = CASE
    WHEN clock_last_naive_at IS NULL OR clock_last_naive_at < :cutoff_text
      THEN 1
    ELSE COALESCE(clock_skew_count_24h, 0) + 1
  END;

-- @name ingestor.UpsertClientObserver
-- @source cmd/ingestor/client_reception.go:104
-- @kind write
-- @note Table client_observers (created by applySchema).
INSERT INTO client_observers (pubkey, name, last_seen) VALUES (:pubkey,:name,:now_text)
ON CONFLICT(pubkey) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen;

-- @name ingestor.InsertClientReception
-- @source cmd/ingestor/client_reception.go:212
-- @kind write
-- @note Table client_receptions (created by applySchema); ON CONFLICT needs its UNIQUE(rx_pubkey, heard_key, rx_at).
INSERT INTO client_receptions
  (rx_pubkey, heard_key, heard_keylen, rssi, snr, lat, lon, pos_acc_m, rx_at, ingested_at, src)
VALUES (:pubkey,:heard_key,:heard_keylen,:rssi,:snr,:lat,:lon,:accuracy_m,:now_text,:now_text,:src)
ON CONFLICT(rx_pubkey, heard_key, rx_at) DO NOTHING;

-- @name maintenance.MoveStaleNodesCopy
-- @source cmd/ingestor/db.go:1474
-- @kind write
-- @note Runs at ingestor startup and periodically. SELECT * positional copy: nodes and inactive_nodes must have the SAME number of columns (else "table inactive_nodes has N columns but M values were supplied") and the same column ORDER (else values land in the wrong columns silently). last_seen compared as TEXT against an RFC3339 cutoff.
INSERT OR REPLACE INTO inactive_nodes SELECT * FROM nodes WHERE last_seen < :cutoff_text;

-- @name maintenance.MoveStaleNodesDelete
-- @source cmd/ingestor/db.go:1478
-- @kind write
DELETE FROM nodes WHERE last_seen < :cutoff_text;

-- @name maintenance.RemoveStaleObservers
-- @source cmd/ingestor/db.go:1503
-- @kind write
UPDATE observers SET inactive = 1 WHERE last_seen < :cutoff_text AND (inactive IS NULL OR inactive = 0);

-- @name maintenance.PruneOrphanMetrics
-- @source cmd/ingestor/db.go:1510
-- @kind write
DELETE FROM observer_metrics WHERE observer_id IN (SELECT id FROM observers WHERE inactive = 1);

-- @name maintenance.PruneOldMetrics
-- @source cmd/ingestor/db.go:1228
-- @kind write
DELETE FROM observer_metrics WHERE timestamp < :cutoff_text;

-- @name maintenance.PruneDroppedPackets
-- @source cmd/ingestor/db.go:1547
-- @kind write
-- @note dropped_at defaults to CURRENT_TIMESTAMP ("YYYY-MM-DD HH:MM:SS") but is compared with an RFC3339 cutoff (CoreScope quirk).
DELETE FROM dropped_packets WHERE dropped_at < :cutoff_text;

-- @name maintenance.PruneOldObservations
-- @source cmd/ingestor/maintenance.go:29
-- @kind write
DELETE FROM observations WHERE transmission_id IN (
  SELECT id FROM transmissions WHERE first_seen < :cutoff_text
);

-- @name maintenance.PruneOldTransmissions
-- @source cmd/ingestor/maintenance.go:35
-- @kind write
-- @note first_seen compared as TEXT against an RFC3339 cutoff.
DELETE FROM transmissions WHERE first_seen < :cutoff_text;

-- @name maintenance.PruneClientReceptions
-- @source cmd/ingestor/maintenance.go:64
-- @kind write
DELETE FROM client_receptions WHERE rx_at < :cutoff_text;

-- @name maintenance.PruneClientObservers
-- @source cmd/ingestor/maintenance.go:70
-- @kind write
DELETE FROM client_observers WHERE last_seen < :cutoff_text;

-- @name maintenance.PruneNeighborEdges
-- @source cmd/ingestor/maintenance.go:106
-- @kind write
DELETE FROM neighbor_edges WHERE last_seen < :cutoff_text;

-- @name maintenance.FromPubkeyCount
-- @source cmd/ingestor/maintenance.go:151
-- @kind read
-- @nonnull #1
SELECT COUNT(*) FROM transmissions WHERE from_pubkey IS NULL AND payload_type = 4;

-- @name maintenance.FromPubkeySet
-- @source cmd/ingestor/maintenance.go:168
-- @kind write
-- @note Binds "" (sentinel: scanned, no pubkey) or the lowercase/as-decoded hex pubKey from decoded_json.
UPDATE transmissions SET from_pubkey = :pubkey WHERE id = :tx_id;

-- @name maintenance.FromPubkeySelect
-- @source cmd/ingestor/maintenance.go:178
-- @kind read
-- @nonnull id
-- @note decoded_json scanned into sql.NullString. Runs at every ingestor boot (goroutine).
SELECT id, decoded_json FROM transmissions WHERE from_pubkey IS NULL AND payload_type = 4 LIMIT :limit;

-- @name maintenance.DeleteNodesByPubkeys
-- @source cmd/ingestor/prune_geofilter.go:51
-- @kind write
-- @note Dynamic IN list (up to 500 "?" per chunk); shown with one. Driven by server-written prune-request marker files.
DELETE FROM nodes WHERE public_key IN (:pubkey);

-- @name maintenance.MultibyteUpdateNodes
-- @source cmd/ingestor/multibyte_persist.go:88
-- @kind write
UPDATE nodes SET multibyte_sup=:multibyte_sup, multibyte_evidence=:evidence WHERE public_key=:pubkey;

-- @name maintenance.MultibyteUpdateInactiveNodes
-- @source cmd/ingestor/multibyte_persist.go:93
-- @kind write
UPDATE inactive_nodes SET multibyte_sup=:multibyte_sup, multibyte_evidence=:evidence WHERE public_key=:pubkey;

-- @name maintenance.MultibyteProbeNode
-- @source cmd/ingestor/multibyte_persist.go:100
-- @kind read
-- @nonnull #1
SELECT 1 FROM nodes WHERE public_key=:pubkey LIMIT 1;

-- @name neighbor.Watermark
-- @source cmd/ingestor/neighbor_builder.go:169
-- @kind read
-- @note Scanned into sql.NullString; parsed with time.RFC3339 (a non-RFC3339 MAX(last_seen) silently means watermark 0 = full rescan each tick).
SELECT MAX(last_seen) FROM neighbor_edges;

-- @name neighbor.ScanObservations
-- @source cmd/ingestor/neighbor_builder.go:179
-- @kind read
-- @nonnull decoded_json, #3, #4, observer_id, timestamp
-- @note decoded_json is scanned into a Go string: a NULL decoded_json makes rows.Scan fail and the row is silently skipped (no edge). o.timestamp is scanned into int64 (must be INTEGER unix seconds; TEXT fails the scan). payload_type is sql.NullInt64. :cutoff_unix is the watermark (MAX(neighbor_edges.last_seen) as unix; 0 on an empty table).
SELECT
  t.payload_type,
  t.decoded_json,
  COALESCE(t.from_pubkey, ''),
  COALESCE(o.path_json, ''),
  COALESCE(obs.id, '') AS observer_id,
  o.timestamp
FROM observations o
JOIN transmissions t ON t.id = o.transmission_id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE o.timestamp > :cutoff_unix
ORDER BY o.timestamp
LIMIT :limit;

-- @name neighbor.UpsertEdge
-- @source cmd/ingestor/neighbor_builder.go:242
-- @kind write
-- @note node_a <= node_b, lowercase; last_seen RFC3339 text. Requires the (node_a, node_b) PRIMARY KEY/UNIQUE.
INSERT INTO neighbor_edges (node_a, node_b, count, last_seen)
VALUES (:node_a, :node_b, 1, :now_text)
ON CONFLICT(node_a, node_b) DO UPDATE SET
  count = count + 1,
  last_seen = MAX(last_seen, excluded.last_seen);

-- @name neighbor.PrefixIndexNodes
-- @source cmd/ingestor/neighbor_builder.go:300
-- @kind read
-- @nonnull public_key
-- @note Scan errors skip the row. Runs at ingestor boot and every 60s.
SELECT public_key FROM nodes;

-- @name neighbor.LoadGraph
-- @source cmd/ingestor/path_resolver.go:112
-- @kind read
-- @nonnull node_a, node_b
-- @note Scan errors skip the row.
SELECT node_a, node_b FROM neighbor_edges;

-- @name server.CountTransmissions
-- @source cmd/server/db.go:325
-- @kind read
-- @nonnull #1
-- @note Same text at cmd/server/db.go:525 and :577 (unfiltered packet totals), cmd/server/store.go:731 and cmd/server/chunked_load.go:209. At server boot via GetStats a failure here is only logged.
SELECT COUNT(*) FROM transmissions;

-- @name server.CountObservations
-- @source cmd/server/db.go:331
-- @kind read
-- @nonnull #1
SELECT COUNT(*) FROM observations;

-- @name server.CountActiveNodes
-- @source cmd/server/db.go:334
-- @kind read
-- @nonnull #1
-- @note last_seen compared as TEXT with an RFC3339 string (Go time.RFC3339 in LOCAL zone offset).
SELECT COUNT(*) FROM nodes WHERE last_seen > :cutoff_text;

-- @name server.CountNodes
-- @source cmd/server/db.go:335
-- @kind read
-- @nonnull #1
SELECT COUNT(*) FROM nodes;

-- @name server.CountActiveObservers
-- @source cmd/server/db.go:336
-- @kind read
-- @nonnull #1
SELECT COUNT(*) FROM observers WHERE inactive IS NULL OR inactive = 0;

-- @name server.CountObservationsSince
-- @source cmd/server/db.go:339
-- @kind read
-- @nonnull #1
-- @note Same text at db.go:342. observations.timestamp compared as integer unix seconds.
SELECT COUNT(*) FROM observations WHERE timestamp > :cutoff_unix;

-- @name server.CountObserversAll
-- @source cmd/server/db.go:397
-- @kind read
-- @nonnull #1
-- @note GetDBSizeStats/GetDBSizeStatsTyped (db.go:397, :441) build "SELECT COUNT(*) FROM " + table for transmissions, observations, nodes, observers; only the observers form is not already listed.
SELECT COUNT(*) FROM observers;

-- @name server.CountNodesByRoleActive
-- @source cmd/server/db.go:464
-- @kind read
-- @nonnull #1
SELECT COUNT(*) FROM nodes WHERE role = :role AND last_seen > :cutoff_text;

-- @name server.CountNodesByRole
-- @source cmd/server/db.go:475
-- @kind read
-- @nonnull #1
SELECT COUNT(*) FROM nodes WHERE role = :role;

-- @name server.QueryPacketsCountFiltered
-- @source cmd/server/db.go:527
-- @kind read
-- @nonnull #1
-- @note Dynamic: "SELECT COUNT(*) FROM transmissions t %s" with every optional clause of buildTransmissionWhere (cmd/server/db.go:714-790, v3) present, observer IN list with one id. Same WHERE is used by QueryPackets/QueryGroupedPackets (db.go:528, :579). Non-RFC3339 since/until fall back to "t.first_seen > ?" / "t.first_seen < ?".
SELECT COUNT(*) FROM transmissions t WHERE t.payload_type = :payload_type AND t.route_type = :route_type AND t.hash = :hash AND t.id IN (SELECT DISTINCT transmission_id FROM observations WHERE timestamp >= :cutoff_unix) AND t.id IN (SELECT DISTINCT transmission_id FROM observations WHERE timestamp <= :now_unix) AND t.from_pubkey = :pubkey AND t.channel_hash = :channel_hash AND EXISTS (SELECT 1 FROM observations oi JOIN observers obi ON obi.rowid = oi.observer_idx WHERE oi.transmission_id = t.id AND obi.id IN (:observer_id)) AND EXISTS (SELECT 1 FROM observations oi JOIN observers obi ON obi.rowid = oi.observer_idx WHERE oi.transmission_id = t.id AND obi.iata = :iata);

-- @name server.QueryPackets
-- @source cmd/server/db.go:538
-- @kind read
-- @nonnull id, observation_count
-- @note Unfiltered /api/packets DB fallback form (empty WHERE, order DESC). Column list/join from transmissionBaseSQL (cmd/server/db.go:162, v3 schema + hasScopeName, i.e. the current schema; without scope_name Go omits ", t.scope_name"). Rows are scanned by scanTransmissionRow: id and observation_count into int (a scan error drops the row).
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type, t.payload_type, t.decoded_json,
COALESCE((SELECT COUNT(*) FROM observations WHERE transmission_id = t.id), 0) AS observation_count,
obs.id AS observer_id, obs.name AS observer_name, COALESCE(obs.iata, '') AS observer_iata,
o.snr, o.rssi, o.path_json, o.direction, t.scope_name FROM transmissions t LEFT JOIN observations o ON o.id = (
SELECT id FROM observations WHERE transmission_id = t.id
ORDER BY length(COALESCE(path_json,'')) DESC LIMIT 1
)
LEFT JOIN observers obs ON obs.rowid = o.observer_idx  ORDER BY t.id DESC LIMIT :limit OFFSET :offset;

-- @name server.QueryGroupedPackets
-- @source cmd/server/db.go:589
-- @kind read
-- @nonnull count, observer_count
-- @note v3 form after fmt.Sprintf (%% -> %), unfiltered. strftime(..., 'unixepoch') assumes observations.timestamp is INTEGER unix seconds. Scan errors skip the row.
SELECT t.hash, t.first_seen, t.raw_hex, t.decoded_json, t.payload_type, t.route_type,
COALESCE((SELECT COUNT(*) FROM observations oi WHERE oi.transmission_id = t.id), 0) AS count,
COALESCE((SELECT COUNT(DISTINCT oi.observer_idx) FROM observations oi WHERE oi.transmission_id = t.id), 0) AS observer_count,
COALESCE((SELECT MAX(strftime('%Y-%m-%dT%H:%M:%fZ', oi.timestamp, 'unixepoch')) FROM observations oi WHERE oi.transmission_id = t.id), t.first_seen) AS latest,
obs.id AS observer_id, obs.name AS observer_name, COALESCE(obs.iata, '') AS observer_iata,
o.snr, o.rssi, o.path_json,
COALESCE((SELECT GROUP_CONCAT(DISTINCT obi.iata) FROM observations oi JOIN observers obi ON obi.rowid = oi.observer_idx WHERE oi.transmission_id = t.id AND obi.iata IS NOT NULL AND obi.iata != ''), '') AS distinct_iatas
FROM transmissions t
LEFT JOIN observations o ON o.id = (
SELECT id FROM observations WHERE transmission_id = t.id
ORDER BY length(COALESCE(path_json,'')) DESC LIMIT 1
)
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
 ORDER BY latest DESC LIMIT :limit OFFSET :offset;

-- @name server.ResolveNodePubkey
-- @source cmd/server/db.go:809
-- @kind read
-- @nonnull public_key
-- @note Both "?" get the same Go value (a pubkey or a node name).
SELECT public_key FROM nodes WHERE public_key = :pubkey OR name = :pubkey LIMIT 1;

-- @name server.GetTransmissionByID
-- @source cmd/server/db.go:820
-- @kind read
-- @nonnull id, observation_count
-- @note Column list/join from transmissionBaseSQL (cmd/server/db.go:162, v3 schema + hasScopeName, i.e. the current schema; without scope_name Go omits ", t.scope_name"). Rows are scanned by scanTransmissionRow: id and observation_count into int (a scan error drops the row).
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type, t.payload_type, t.decoded_json,
COALESCE((SELECT COUNT(*) FROM observations WHERE transmission_id = t.id), 0) AS observation_count,
obs.id AS observer_id, obs.name AS observer_name, COALESCE(obs.iata, '') AS observer_iata,
o.snr, o.rssi, o.path_json, o.direction, t.scope_name FROM transmissions t LEFT JOIN observations o ON o.id = (
SELECT id FROM observations WHERE transmission_id = t.id
ORDER BY length(COALESCE(path_json,'')) DESC LIMIT 1
)
LEFT JOIN observers obs ON obs.rowid = o.observer_idx WHERE t.id = :tx_id;

-- @name server.GetPacketByHash
-- @source cmd/server/db.go:836
-- @kind read
-- @nonnull id, observation_count
-- @note Go lower-cases the hash first. Column list/join from transmissionBaseSQL (cmd/server/db.go:162, v3 schema + hasScopeName, i.e. the current schema; without scope_name Go omits ", t.scope_name"). Rows are scanned by scanTransmissionRow: id and observation_count into int (a scan error drops the row).
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type, t.payload_type, t.decoded_json,
COALESCE((SELECT COUNT(*) FROM observations WHERE transmission_id = t.id), 0) AS observation_count,
obs.id AS observer_id, obs.name AS observer_name, COALESCE(obs.iata, '') AS observer_iata,
o.snr, o.rssi, o.path_json, o.direction, t.scope_name FROM transmissions t LEFT JOIN observations o ON o.id = (
SELECT id FROM observations WHERE transmission_id = t.id
ORDER BY length(COALESCE(path_json,'')) DESC LIMIT 1
)
LEFT JOIN observers obs ON obs.rowid = o.observer_idx WHERE t.hash = :hash;

-- @name server.GetTxIDByHash
-- @source cmd/server/db.go:854
-- @kind read
-- @nonnull id
-- @note GetObservationsForHash (packet-detail fallback). Same text in cmd/server/hash_migrate.go:75 (collision merge lookup).
SELECT id FROM transmissions WHERE hash = :hash;

-- @name server.GetNodesCountFiltered
-- @source cmd/server/db.go:937
-- @kind read
-- @nonnull #1
-- @note Dynamic: GetNodes WHERE with every optional clause (role, search, before, lastHeard, region subquery from db.go:906 with one IATA code). The same WHERE feeds server.GetNodes. Region match uses decoded_json $.pubKey, not from_pubkey.
SELECT COUNT(*) FROM nodes WHERE role = :role AND name LIKE :name_like AND first_seen <= :now_text AND last_seen > :cutoff_text AND public_key IN (
SELECT DISTINCT JSON_EXTRACT(t.decoded_json, '$.pubKey')
FROM transmissions t
JOIN observations o ON o.transmission_id = t.id
JOIN observers obs ON obs.rowid = o.observer_idx
WHERE t.payload_type = 4
AND UPPER(TRIM(obs.iata)) IN (:iata)
);

-- @name server.GetNodes
-- @source cmd/server/db.go:939
-- @kind read
-- @nonnull public_key, advert_count
-- @note Unfiltered /api/nodes form (default sort). Columns from nodeSelectCols (db.go:152) with hasDefaultScope (current schema; Go omits ", default_scope" when the column is absent). scanNodeRow scans public_key into string and advert_count into int: a NULL advert_count makes the scan fail and the node is dropped from the result (GetNodeByPubkey then returns nil -> 404).
SELECT public_key, name, role, lat, lon, last_seen, first_seen, advert_count, battery_mv, temperature_c, foreign_advert, default_scope FROM nodes  ORDER BY last_seen DESC LIMIT :limit OFFSET :offset;

-- @name server.SearchNodes
-- @source cmd/server/db.go:965
-- @kind read
-- @nonnull public_key, advert_count
-- @note Columns from nodeSelectCols (db.go:152) with hasDefaultScope (current schema; Go omits ", default_scope" when the column is absent). scanNodeRow scans public_key into string and advert_count into int: a NULL advert_count makes the scan fail and the node is dropped from the result (GetNodeByPubkey then returns nil -> 404).
SELECT public_key, name, role, lat, lon, last_seen, first_seen, advert_count, battery_mv, temperature_c, foreign_advert, default_scope FROM nodes WHERE name LIKE :name_like OR public_key LIKE :pubkey_like ORDER BY last_seen DESC LIMIT :limit;

-- @name server.GetNodeByPrefix
-- @source cmd/server/db.go:1003
-- @kind read
-- @nonnull public_key, advert_count
-- @note Columns from nodeSelectCols (db.go:152) with hasDefaultScope (current schema; Go omits ", default_scope" when the column is absent). scanNodeRow scans public_key into string and advert_count into int: a NULL advert_count makes the scan fail and the node is dropped from the result (GetNodeByPubkey then returns nil -> 404).
SELECT public_key, name, role, lat, lon, last_seen, first_seen, advert_count, battery_mv, temperature_c, foreign_advert, default_scope FROM nodes WHERE public_key LIKE :pubkey_like LIMIT 2;

-- @name server.GetNodeByPubkey
-- @source cmd/server/db.go:1032
-- @kind read
-- @nonnull public_key, advert_count
-- @note Node detail (/api/nodes/{pubkey}). Columns from nodeSelectCols (db.go:152) with hasDefaultScope (current schema; Go omits ", default_scope" when the column is absent). scanNodeRow scans public_key into string and advert_count into int: a NULL advert_count makes the scan fail and the node is dropped from the result (GetNodeByPubkey then returns nil -> 404).
SELECT public_key, name, role, lat, lon, last_seen, first_seen, advert_count, battery_mv, temperature_c, foreign_advert, default_scope FROM nodes WHERE public_key = :pubkey;

-- @name server.GetRecentTransmissionsForNode
-- @source cmd/server/db.go:1060
-- @kind read
-- @nonnull id, observation_count
-- @note Column list/join from transmissionBaseSQL (cmd/server/db.go:162, v3 schema + hasScopeName, i.e. the current schema; without scope_name Go omits ", t.scope_name"). Rows are scanned by scanTransmissionRow: id and observation_count into int (a scan error drops the row).
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type, t.payload_type, t.decoded_json,
COALESCE((SELECT COUNT(*) FROM observations WHERE transmission_id = t.id), 0) AS observation_count,
obs.id AS observer_id, obs.name AS observer_name, COALESCE(obs.iata, '') AS observer_iata,
o.snr, o.rssi, o.path_json, o.direction, t.scope_name FROM transmissions t LEFT JOIN observations o ON o.id = (
SELECT id FROM observations WHERE transmission_id = t.id
ORDER BY length(COALESCE(path_json,'')) DESC LIMIT 1
)
LEFT JOIN observers obs ON obs.rowid = o.observer_idx WHERE t.from_pubkey = :pubkey ORDER BY t.id DESC LIMIT :limit;

-- @name server.GetObservationsForTransmissions
-- @source cmd/server/db.go:1117
-- @kind read
-- @nonnull transmission_id, id
-- @note v3 form after Sprintf, IN list with one id (observations of a packet). Scan errors skip the row.
SELECT o.transmission_id, o.id, obs.id AS observer_id, obs.name AS observer_name, COALESCE(obs.iata, '') AS observer_iata,
o.direction, o.snr, o.rssi, o.path_json, strftime('%Y-%m-%dT%H:%M:%fZ', o.timestamp, 'unixepoch') AS obs_timestamp
FROM observations o
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE o.transmission_id IN (:tx_id)
ORDER BY o.timestamp DESC;

-- @name server.GetObservers
-- @source cmd/server/db.go:1186
-- @kind read
-- @nonnull id, packet_count, #18, #19
-- @note /api/observers. id into string, packet_count into int: a NULL there makes Scan fail and that observer is silently omitted from the list. name/iata/last_seen/... are *string, numeric extras sql.Null*. Current-schema form: Go substitutes "1" for COALESCE(can_relay, 1) when observers.can_relay is missing and "0" for COALESCE(can_relay_seen, 0) when can_relay_seen is missing.
SELECT id, name, iata, last_seen, first_seen, packet_count,
model, firmware, client_version, radio, battery_mv, uptime_secs, noise_floor, last_packet_at,
clock_skew_seconds, clock_skew_count_24h, clock_last_naive_at,
COALESCE(can_relay, 1), COALESCE(can_relay_seen, 0)
FROM observers WHERE inactive IS NULL OR inactive = 0 ORDER BY last_seen DESC;

-- @name server.GetNonRelayObserverPubkeys
-- @source cmd/server/db.go:1246
-- @kind read
-- @nonnull #1
-- @note Skipped entirely when observers.can_relay is missing. Scan errors skip the row.
SELECT LOWER(id) FROM observers
WHERE COALESCE(can_relay, 1) = 0
  AND (inactive IS NULL OR inactive = 0);

-- @name server.GetCanRelaySeenObserverPubkeys
-- @source cmd/server/db.go:1272
-- @kind read
-- @nonnull #1
-- @note Skipped entirely when observers.can_relay_seen is missing.
SELECT LOWER(id) FROM observers
WHERE COALESCE(can_relay_seen, 0) = 1
  AND (inactive IS NULL OR inactive = 0);

-- @name server.GetObserverByID
-- @source cmd/server/db.go:1304
-- @kind read
-- @nonnull id, packet_count, #18, #19
-- @note Observer detail: a NULL packet_count returns an error (HTTP error, not the observer). Current-schema form: Go substitutes "1" for COALESCE(can_relay, 1) when observers.can_relay is missing and "0" for COALESCE(can_relay_seen, 0) when can_relay_seen is missing.
SELECT id, name, iata, last_seen, first_seen, packet_count,
model, firmware, client_version, radio, battery_mv, uptime_secs, noise_floor, last_packet_at,
clock_skew_seconds, clock_skew_count_24h, clock_last_naive_at,
COALESCE(can_relay, 1), COALESCE(can_relay_seen, 0)
FROM observers WHERE id = :observer_id;

-- @name server.GetObserverIdsForRegion
-- @source cmd/server/db.go:1351
-- @kind read
-- @nonnull id
-- @note Dynamic IN list of upper-case IATA codes; shown with one. A scan error fails the whole call.
SELECT id FROM observers WHERE UPPER(TRIM(iata)) IN (:iata);

-- @name server.GetDistinctIATAs
-- @source cmd/server/db.go:1402
-- @kind read
-- @nonnull iata
-- @note Scan error ignored (value then "").
SELECT DISTINCT iata FROM observers WHERE iata IS NOT NULL;

-- @name server.GetNetworkStatus
-- @source cmd/server/db.go:1419
-- @kind read
-- @nonnull public_key
-- @note Scan error ignored (row still counted). last_seen parsed as RFC3339 or "2006-01-02 15:04:05".
SELECT public_key, name, role, last_seen FROM nodes;

-- @name server.GetTraces
-- @source cmd/server/db.go:1468
-- @kind read
-- @note v3 form. All columns sql.Null*.
SELECT obs.id AS observer_id, obs.name AS observer_name,
strftime('%Y-%m-%dT%H:%M:%fZ', o.timestamp, 'unixepoch') AS timestamp,
o.snr, o.rssi, o.path_json
FROM observations o
JOIN transmissions t ON t.id = o.transmission_id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE t.hash = :hash
ORDER BY o.timestamp ASC;

-- @name server.GetChannelsRegion
-- @source cmd/server/db.go:1542
-- @kind read
-- @nonnull msg_count
-- @note v3 region form after Sprintf (%% -> %), one IATA code.
SELECT t.channel_hash,
COUNT(*) AS msg_count,
MAX(t.first_seen) AS last_activity,
(SELECT t2.decoded_json FROM transmissions t2
WHERE t2.channel_hash = t.channel_hash AND t2.payload_type = 5
ORDER BY t2.first_seen DESC LIMIT 1) AS sample_json
FROM transmissions t
JOIN observations o ON o.transmission_id = t.id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE t.payload_type = 5
AND t.channel_hash IS NOT NULL
AND t.channel_hash NOT LIKE 'enc_%'
AND obs.rowid IS NOT NULL AND UPPER(TRIM(obs.iata)) IN (:iata)
GROUP BY t.channel_hash
ORDER BY last_activity DESC;

-- @name server.GetChannels
-- @source cmd/server/db.go:1578
-- @kind read
-- @nonnull msg_count
-- @note /api/channels (no region). Not passed through Sprintf, so the LIKE pattern is literally 'enc_%%' (equivalent to 'enc_%'). channel_hash/last_activity/sample_json are sql.NullString; sample_json is JSON-decoded for text/sender.
SELECT channel_hash,
  COUNT(*) AS msg_count,
  MAX(first_seen) AS last_activity,
  (SELECT t2.decoded_json FROM transmissions t2
   WHERE t2.channel_hash = t.channel_hash AND t2.payload_type = 5
   ORDER BY t2.first_seen DESC LIMIT 1) AS sample_json
FROM transmissions t
WHERE payload_type = 5
AND channel_hash IS NOT NULL
AND channel_hash NOT LIKE 'enc_%%'
GROUP BY channel_hash
ORDER BY last_activity DESC;

-- @name server.GetEncryptedChannels
-- @source cmd/server/db.go:1693
-- @kind read
-- @nonnull msg_count
-- @note No-region form (literal 'enc_%%').
SELECT channel_hash,
  COUNT(*) AS msg_count,
  MAX(first_seen) AS last_activity
FROM transmissions
WHERE payload_type = 5
AND channel_hash LIKE 'enc_%%'
GROUP BY channel_hash
ORDER BY last_activity DESC;

-- @name server.GetEncryptedChannelsRegion
-- @source cmd/server/db.go:1665
-- @kind read
-- @nonnull msg_count
-- @note v3 region form after Sprintf, one IATA code.
SELECT t.channel_hash,
COUNT(*) AS msg_count,
MAX(t.first_seen) AS last_activity
FROM transmissions t
JOIN observations o ON o.transmission_id = t.id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE t.payload_type = 5
AND t.channel_hash LIKE 'enc_%'
AND obs.rowid IS NOT NULL AND UPPER(TRIM(obs.iata)) IN (:iata)
GROUP BY t.channel_hash
ORDER BY last_activity DESC;

-- @name server.GetChannelMessagesCount
-- @source cmd/server/db.go:1786
-- @kind read
-- @nonnull #1
-- @note No-region form (regionFilter empty). Error fails the request.
SELECT COUNT(*) FROM transmissions t
WHERE t.channel_hash = :channel_hash AND t.payload_type = 5;

-- @name server.GetChannelMessagesPage
-- @source cmd/server/db.go:1814
-- @kind read
-- @nonnull id
-- @note No-region form. latest_obs_epoch is sql.NullInt64.
SELECT t.id,
COALESCE((SELECT MAX(timestamp) FROM observations WHERE transmission_id = t.id), 0) AS latest_obs_epoch
FROM transmissions t
WHERE t.channel_hash = :channel_hash AND t.payload_type = 5
ORDER BY latest_obs_epoch DESC, t.id DESC
LIMIT :limit OFFSET :offset;

-- @name server.GetChannelMessagesRegionCount
-- @source cmd/server/db.go:1771
-- @kind read
-- @nonnull #1
-- @note countSQL (db.go:1786) + v3 regionFilter (db.go:1771) with one IATA code.
SELECT COUNT(*) FROM transmissions t
WHERE t.channel_hash = :channel_hash AND t.payload_type = 5 AND EXISTS (
SELECT 1 FROM observations o
JOIN observers obs ON obs.rowid = o.observer_idx
WHERE o.transmission_id = t.id
AND UPPER(TRIM(obs.iata)) IN (:iata));

-- @name server.GetChannelMessagesObs
-- @source cmd/server/db.go:1861
-- @kind read
-- @nonnull #1, #2
-- @note v3 form; IN list of the page ids shown with one. The Scan error is NOT checked; rows whose decoded_json is NULL are skipped (message missing).
SELECT o.id, t.id, t.hash, t.decoded_json, t.first_seen,
obs.id, obs.name, o.snr, o.path_json, o.timestamp
FROM observations o
JOIN transmissions t ON t.id = o.transmission_id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE t.id IN (:tx_id)
ORDER BY o.id ASC;

-- @name server.GetNewTransmissionsSince
-- @source cmd/server/db.go:2007
-- @kind read
-- @nonnull id
-- @note WebSocket poller fallback (store nil). Scan error ignored.
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type, t.payload_type, t.payload_version, t.decoded_json
FROM transmissions t WHERE t.id > :after_id ORDER BY t.id ASC LIMIT :limit;

-- @name server.GetMaxTransmissionID
-- @source cmd/server/db.go:2037
-- @kind read
-- @nonnull #1
SELECT COALESCE(MAX(id), 0) FROM transmissions;

-- @name server.GetMaxObservationID
-- @source cmd/server/db.go:2044
-- @kind read
-- @nonnull #1
SELECT COALESCE(MAX(id), 0) FROM observations;

-- @name server.GetObserverPacketCounts
-- @source cmd/server/db.go:2054
-- @kind read
-- @nonnull id, cnt
-- @note v3 form. Scan error ignored.
SELECT obs.id, COUNT(*) as cnt
FROM observations o
JOIN observers obs ON obs.rowid = o.observer_idx
WHERE o.timestamp > :cutoff_unix
GROUP BY obs.id;

-- @name server.GetNodeLocations
-- @source cmd/server/db.go:2081
-- @kind read
-- @nonnull public_key
-- @note Scan error ignored.
SELECT public_key, lat, lon, role FROM nodes;

-- @name server.GetNodeLocationsByKeys
-- @source cmd/server/db.go:2116
-- @kind read
-- @nonnull public_key
-- @note Dynamic IN list, args lower-cased in Go: relies on nodes.public_key being stored lowercase (#1483). Scan error ignored.
SELECT public_key, lat, lon, role FROM nodes WHERE public_key IN (:pubkey);

-- @name server.QueryMultiNodePacketsCount
-- @source cmd/server/db.go:2175
-- @kind read
-- @nonnull #1
-- @note Dynamic (?nodes= on /api/packets): from_pubkey IN list with one key, since and until present.
SELECT COUNT(*) FROM transmissions t WHERE t.from_pubkey IN (:pubkey) AND t.first_seen >= :cutoff_text AND t.first_seen <= :now_text;

-- @name server.QueryMultiNodePackets
-- @source cmd/server/db.go:2179
-- @kind read
-- @nonnull id, observation_count
-- @note Column list/join from transmissionBaseSQL (cmd/server/db.go:162, v3 schema + hasScopeName, i.e. the current schema; without scope_name Go omits ", t.scope_name"). Rows are scanned by scanTransmissionRow: id and observation_count into int (a scan error drops the row).
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type, t.payload_type, t.decoded_json,
COALESCE((SELECT COUNT(*) FROM observations WHERE transmission_id = t.id), 0) AS observation_count,
obs.id AS observer_id, obs.name AS observer_name, COALESCE(obs.iata, '') AS observer_iata,
o.snr, o.rssi, o.path_json, o.direction, t.scope_name FROM transmissions t LEFT JOIN observations o ON o.id = (
SELECT id FROM observations WHERE transmission_id = t.id
ORDER BY length(COALESCE(path_json,'')) DESC LIMIT 1
)
LEFT JOIN observers obs ON obs.rowid = o.observer_idx WHERE t.from_pubkey IN (:pubkey) AND t.first_seen >= :cutoff_text AND t.first_seen <= :now_text ORDER BY t.id DESC LIMIT :limit OFFSET :offset;

-- @name server.GetObserverMetrics
-- @source cmd/server/db.go:2387
-- @kind read
-- @nonnull timestamp
-- @note Raw (5m) resolution with since and until. timestamp into string (scan error fails the request); others *int/*float64.
SELECT timestamp, noise_floor, tx_air_secs, rx_air_secs, recv_errors, battery_mv, packets_sent, packets_recv
FROM observer_metrics WHERE observer_id = :observer_id AND timestamp >= :cutoff_text AND timestamp <= :now_text ORDER BY timestamp ASC;

-- @name server.GetObserverMetricsHourly
-- @source cmd/server/db.go:2372
-- @kind read
-- @nonnull ts
-- @note resolution=1h with since. ts is strftime() of the TEXT timestamp: NULL (scan error, request fails) when timestamp is not a date SQLite can parse. 1d form identical with '%Y-%m-%dT00:00:00Z' (db.go:2380).
SELECT ts, noise_floor, tx_air_secs, rx_air_secs, recv_errors, battery_mv, packets_sent, packets_recv FROM (
SELECT
strftime('%Y-%m-%dT%H:00:00Z', timestamp) as ts,
noise_floor, tx_air_secs, rx_air_secs, recv_errors, battery_mv, packets_sent, packets_recv,
ROW_NUMBER() OVER (PARTITION BY observer_id, strftime('%Y-%m-%dT%H:00:00Z', timestamp) ORDER BY timestamp DESC) as rn
FROM observer_metrics WHERE observer_id = :observer_id AND timestamp >= :cutoff_text) WHERE rn = 1 ORDER BY ts ASC;

-- @name server.GetMetricsSummary
-- @source cmd/server/db.go:2567
-- @kind read
-- @nonnull observer_id, iata, sample_count
-- @note Scan error fails the request.
WITH ranked AS (
  SELECT observer_id, noise_floor, battery_mv,
    ROW_NUMBER() OVER (PARTITION BY observer_id ORDER BY timestamp DESC) as rn
  FROM observer_metrics
  WHERE timestamp >= :cutoff_text
)
SELECT m.observer_id, o.name, COALESCE(o.iata, '') as iata,
  r.noise_floor as current_nf,
  AVG(m.noise_floor) as avg_nf,
  MAX(m.noise_floor) as max_nf,
  r.battery_mv as current_batt,
  COUNT(*) as sample_count
FROM observer_metrics m
LEFT JOIN observers o ON o.id = m.observer_id
LEFT JOIN ranked r ON r.observer_id = m.observer_id AND r.rn = 1
WHERE m.timestamp >= :cutoff_text
GROUP BY m.observer_id
ORDER BY max_nf DESC;

-- @name server.GetMetricsSparkline
-- @source cmd/server/db.go:2607
-- @kind read
-- @nonnull observer_id
SELECT observer_id, noise_floor FROM observer_metrics
WHERE timestamp >= :cutoff_text ORDER BY observer_id, timestamp ASC;

-- @name server.TouchNodeLastSeen
-- @source cmd/server/db.go:2646
-- @kind write
-- @note Called from PacketStore (store.go:1768) but the server opens SQLite mode=ro, so in production this fails with "attempt to write a readonly database" (error ignored).
UPDATE nodes SET last_seen = :now_text WHERE public_key = :pubkey AND (last_seen IS NULL OR last_seen < :now_text);

-- @name server.GetDroppedPackets
-- @source cmd/server/db.go:2657
-- @kind read
-- @nonnull id
-- @note Both optional filters present.
SELECT id, hash, raw_hex, reason, observer_id, observer_name, node_pubkey, node_name, dropped_at FROM dropped_packets WHERE observer_id = :observer_id AND node_pubkey = :pubkey ORDER BY dropped_at DESC LIMIT :limit;

-- @name server.GetNodePubkeysInArea
-- @source cmd/server/db.go:2712
-- @kind read
-- @nonnull public_key
SELECT public_key, lat, lon FROM nodes WHERE lat IS NOT NULL AND lon IS NOT NULL;

-- @name server.GetSignatureDropCount
-- @source cmd/server/db.go:2751
-- @kind read
-- @nonnull #1
-- @note Error (e.g. no dropped_packets table) -> 0.
SELECT COUNT(*) FROM dropped_packets;

-- @name server.ScopeStatsSummary
-- @source cmd/server/db.go:2784
-- @kind read
-- @nonnull transport_total, scoped, unscoped, unknown_scope
-- @note routeTypeTransportSQL inlined. Skipped (error) if transmissions.scope_name is missing.
SELECT
COUNT(*) AS transport_total,
COUNT(scope_name) AS scoped,
COALESCE(SUM(CASE WHEN scope_name IS NULL THEN 1 ELSE 0 END), 0) AS unscoped,
COALESCE(SUM(CASE WHEN scope_name = '' THEN 1 ELSE 0 END), 0) AS unknown_scope
FROM transmissions
WHERE route_type IN (0, 3) AND first_seen >= :cutoff_text;

-- @name server.ScopeStatsNonTransport
-- @source cmd/server/db.go:2807
-- @kind read
-- @nonnull #1
SELECT COUNT(*) FROM transmissions
WHERE route_type IN (1, 2) AND first_seen >= :cutoff_text;

-- @name server.ScopeStatsByRegion
-- @source cmd/server/db.go:2816
-- @kind read
-- @nonnull scope_name, cnt
SELECT scope_name, COUNT(*) AS cnt
FROM transmissions
WHERE route_type IN (0, 3) AND scope_name IS NOT NULL AND scope_name != '' AND first_seen >= :cutoff_text
GROUP BY scope_name
ORDER BY cnt DESC;

-- @name server.ScopeStatsTimeSeries
-- @source cmd/server/db.go:2841
-- @kind read
-- @nonnull bucket, scoped, unscoped
-- @note window=24h bucket expression (1h/7d use other strftime/printf expressions on first_seen). bucket is NULL when first_seen is not a parseable date -> Scan fails and that bucket is silently dropped.
SELECT strftime('%Y-%m-%dT%H:00:00Z', first_seen) AS bucket,
COUNT(scope_name) AS scoped,
SUM(CASE WHEN scope_name IS NULL THEN 1 ELSE 0 END) AS unscoped
FROM transmissions
WHERE route_type IN (0, 3) AND first_seen >= :cutoff_text
GROUP BY bucket
ORDER BY bucket;

-- @name server.GetNodesForGeoPrune
-- @source cmd/server/db.go:2882
-- @kind read
-- @nonnull public_key
-- @note Scan errors skip the row.
SELECT public_key, name, lat, lon FROM nodes ORDER BY name;

-- @name server.CountFloodAdvertsForNode
-- @source cmd/server/advert_stats.go:66
-- @kind read
-- @nonnull #1, #2, #3
-- @note Go binds payload_type=4 (ADVERT), route_type=1 (FLOOD), a "2006-01-02" date floor and rowCap 50000. A scan error fails the call.
SELECT COALESCE(first_seen, ''), COALESCE(route_type, -1), COALESCE(hash, '') FROM transmissions WHERE from_pubkey = :pubkey AND payload_type = :payload_type AND route_type = :route_type AND first_seen >= :cutoff_date ORDER BY id DESC LIMIT :limit;

-- @name server.LoadChunkedCount
-- @source cmd/server/chunked_load.go:320
-- @kind read
-- @nonnull #1
-- @note Go interpolates the cutoff with %d (not a bound parameter); without transmissions.last_seen it uses "t2.first_seen >= '<RFC3339>'". Without a hot/retention window the WHERE is absent (= server.CountTransmissions shape).
SELECT COUNT(*) FROM transmissions t2 WHERE t2.last_seen >= :cutoff_unix;

-- @name server.LoadChunked
-- @source cmd/server/chunked_load.go:389
-- @kind read
-- @nonnull #1
-- @note THE server boot bulk load (RunStartupLoad -> LoadChunked). v3 form with hasObsRawHex, hasResolvedPath, hasScopeName, hasLastSeen (current schema); cutoff, cursor id and chunk size are interpolated with %d in Go. Only t.id is scanned into an int; everything else sql.Null*. A scan error skips the row. strftime(..., 'unixepoch') assumes INTEGER unix observations.timestamp.
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type,
t.payload_type, t.payload_version, t.decoded_json,
o.id, obs.id, obs.name, COALESCE(obs.iata, ''), o.direction,
o.snr, o.rssi, o.score, o.path_json, strftime('%Y-%m-%dT%H:%M:%fZ', o.timestamp, 'unixepoch'), o.raw_hex, o.resolved_path, t.scope_name
FROM (SELECT * FROM transmissions t2 WHERE t2.last_seen >= :cutoff_unix AND t2.id > :after_id ORDER BY t2.id ASC LIMIT :limit) AS t
LEFT JOIN observations o ON o.transmission_id = t.id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
ORDER BY t.id ASC, o.timestamp DESC;

-- @name server.StoreLoad
-- @source cmd/server/store.go:806
-- @kind read
-- @nonnull #1
-- @note Legacy PacketStore.Load() (v3, all optional columns, retention cutoff interpolated with %d; a memory cap adds "AND t.id IN (SELECT id FROM transmissions ORDER BY last_seen DESC LIMIT N)").
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type,
t.payload_type, t.payload_version, t.decoded_json,
o.id, obs.id, obs.name, COALESCE(obs.iata, ''), o.direction,
o.snr, o.rssi, o.score, o.path_json, strftime('%Y-%m-%dT%H:%M:%fZ', o.timestamp, 'unixepoch'), o.raw_hex,
o.resolved_path, t.scope_name
FROM transmissions t
LEFT JOIN observations o ON o.transmission_id = t.id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE t.last_seen >= :cutoff_unix
ORDER BY t.first_seen ASC, o.timestamp DESC;

-- @name server.LoadChunk
-- @source cmd/server/store.go:1112
-- @kind read
-- @nonnull #1
-- @note Background fill loader (loadBackgroundChunks -> loadChunk), v3 + all optional columns; bound window on last_seen. Only t.id is an int.
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type,
t.payload_type, t.payload_version, t.decoded_json,
o.id, obs.id, obs.name, o.direction,
o.snr, o.rssi, o.score, o.path_json, strftime('%Y-%m-%dT%H:%M:%fZ', o.timestamp, 'unixepoch'), o.raw_hex,
o.resolved_path, t.scope_name
FROM transmissions t
LEFT JOIN observations o ON o.transmission_id = t.id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE t.last_seen >= :cutoff_unix AND t.last_seen < :now_unix
ORDER BY t.first_seen ASC, o.timestamp DESC;

-- @name server.BackgroundLoadCount
-- @source cmd/server/store.go:1495
-- @kind read
-- @nonnull #1
-- @note hasLastSeen form; otherwise "WHERE first_seen >= ?" with RFC3339 text.
SELECT COUNT(*) FROM transmissions WHERE last_seen >= :cutoff_unix;

-- @name server.StoreStatsCounts
-- @source cmd/server/store.go:2086
-- @kind read
-- @nonnull active_nodes, all_nodes, observers
-- @note /api/stats (PacketStore.GetStoreStats).
SELECT
(SELECT COUNT(*) FROM nodes WHERE last_seen > :cutoff_text) AS active_nodes,
(SELECT COUNT(*) FROM nodes) AS all_nodes,
(SELECT COUNT(*) FROM observers) AS observers;

-- @name server.StoreStatsObservations
-- @source cmd/server/store.go:2097
-- @kind read
-- @nonnull #1, #2
-- @note Go binds (now-1h, now-24h, now-24h) as unix seconds.
SELECT
  COALESCE(SUM(CASE WHEN timestamp > :cutoff_unix THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN timestamp > :cutoff_unix THEN 1 ELSE 0 END), 0)
FROM observations WHERE timestamp > :cutoff_unix;

-- @name server.IngestNewFromDB
-- @source cmd/server/store.go:2609
-- @kind read
-- @nonnull #1
-- @note WebSocket poller (every tick). v3 + hasObsRawHex + hasScopeName. Scan errors skip the row.
SELECT t.id, t.raw_hex, t.hash, t.first_seen, t.route_type,
t.payload_type, t.payload_version, t.decoded_json,
o.id, obs.id, obs.name, COALESCE(obs.iata, ''), o.direction,
o.snr, o.rssi, o.score, o.path_json, strftime('%Y-%m-%dT%H:%M:%fZ', o.timestamp, 'unixepoch'), o.raw_hex, t.scope_name
FROM transmissions t
LEFT JOIN observations o ON o.transmission_id = t.id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE t.id > :after_id
ORDER BY t.id ASC, o.timestamp DESC;

-- @name server.IngestNewObservations
-- @source cmd/server/store.go:3016
-- @kind read
-- @nonnull #1, #2
-- @note v3 + hasObsRawHex. Scan errors skip the row.
SELECT o.id, o.transmission_id, obs.id, obs.name, COALESCE(obs.iata, ''), o.direction,
o.snr, o.rssi, o.score, o.path_json, strftime('%Y-%m-%dT%H:%M:%fZ', o.timestamp, 'unixepoch'), o.raw_hex
FROM observations o
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE o.id > :after_id
ORDER BY o.id ASC
LIMIT :limit;

-- @name server.GetAllNodes
-- @source cmd/server/store.go:6482
-- @kind read
-- @nonnull public_key
-- @note Node cache for hop resolution (30s TTL). On error it falls back to thinner SELECTs (store.go:6489, :6492, :6496). Scan error ignored.
SELECT public_key, name, role, lat, lon, last_seen, COALESCE(advert_count, 0), COALESCE(first_seen, '') FROM nodes;

-- @name server.LoadMultibyteCapFromDB
-- @source cmd/server/store.go:8855
-- @kind read
-- @nonnull public_key, #2, #3, #4, multibyte_sup, #6
-- @note Only when nodes.multibyte_sup exists. Scan errors skip the row.
SELECT public_key, COALESCE(name,''), COALESCE(role,''), COALESCE(last_seen,''), multibyte_sup, COALESCE(multibyte_evidence,'')
FROM nodes WHERE multibyte_sup > 0;

-- @name server.NodeLastSeenMap
-- @source cmd/server/store.go:9054
-- @kind read
-- @nonnull public_key
-- @note computeMultiByteCapability. Scan error ignored.
SELECT public_key, last_seen FROM nodes;

-- @name server.GetBulkHealthNodes
-- @source cmd/server/store.go:9163
-- @kind read
-- @nonnull public_key
-- @note Scan error ignored.
SELECT public_key, name, role, lat, lon FROM nodes ORDER BY last_seen DESC LIMIT :limit;

-- @name server.PostPacketInsertTransmission
-- @source cmd/server/routes.go:1290
-- @kind write
-- @note POST /api/packets. first_seen format "2006-01-02T15:04:05.000Z"; raw_hex upper-cased; last_seen left at DEFAULT 0. Fails in production (server is mode=ro).
INSERT INTO transmissions (hash, raw_hex, route_type, payload_type, payload_version, decoded_json, first_seen)
VALUES (:new_hash, :new_raw_hex, :route_type, :payload_type, :payload_version, :decoded_json, :now_text);

-- @name server.PostPacketInsertObserver
-- @source cmd/server/routes.go:1306
-- @kind write
INSERT OR IGNORE INTO observers (id, name, last_seen, first_seen) VALUES (:new_observer_id, :new_observer_id, :now_text, :now_text);

-- @name server.PostPacketInsertObservation
-- @source cmd/server/routes.go:1320
-- @kind write
-- @note Plain INSERT (no ON CONFLICT).
INSERT INTO observations (transmission_id, observer_idx, snr, rssi, path_json, timestamp)
VALUES (:tx_id, :observer_rowid, :snr, :rssi, :path_json, :now_unix);

-- @name server.ObserverIDNames
-- @source cmd/server/neighbor_api.go:471
-- @kind read
-- @nonnull id, name
-- @note buildNodeInfoMap (neighbor/reach APIs). Both scanned into Go strings: an observer with NULL name is silently left out of the map.
SELECT id, name FROM observers;

-- @name server.LoadNeighborEdges
-- @source cmd/server/neighbor_persist.go:34
-- @kind read
-- @nonnull node_a, node_b, count
-- @note At server boot and every 60s. count into int: a NULL count silently drops the edge. last_seen sql.NullString parsed as a timestamp.
SELECT node_a, node_b, count, last_seen FROM neighbor_edges;

-- @name server.NeighborEdgesNonEmpty
-- @source cmd/server/neighbor_persist.go:109
-- @kind read
-- @nonnull #1
-- @note Error (no table) -> false.
SELECT COUNT(*) FROM neighbor_edges;

-- @name server.GetNodeBatteryHistory
-- @source cmd/server/node_battery.go:53
-- @kind read
-- @nonnull timestamp, battery_mv
-- @note LOWER(observer_id) compared to the lower-cased node pubkey. Scan error fails the request.
SELECT timestamp, battery_mv
FROM observer_metrics
WHERE LOWER(observer_id) = :pubkey
  AND battery_mv IS NOT NULL
  AND timestamp >= :cutoff_text
ORDER BY timestamp ASC;

-- @name server.ReachDegreeSnapshot
-- @source cmd/server/node_reach.go:636
-- @kind read
-- @nonnull pk, neigh
-- @note Scan errors skip the row.
SELECT pk, COUNT(*) neigh FROM (
  SELECT node_a pk FROM neighbor_edges
  UNION ALL SELECT node_b FROM neighbor_edges
) GROUP BY pk;

-- @name server.ScanReachRows
-- @source cmd/server/node_reach.go:693
-- @kind read
-- @nonnull #1, #2, #3, path_json
-- @note Dynamic OR chain of "o.path_json LIKE ?" (one per hop token); shown with one. path_json is scanned into a Go string (NULL -> row discarded as malformed). Go LIMIT is 200000.
SELECT LOWER(COALESCE(obs.id,'')), LOWER(COALESCE(t.from_pubkey,'')), COALESCE(t.payload_type,0), o.path_json, o.snr
FROM observations o
JOIN transmissions t ON t.id = o.transmission_id
LEFT JOIN observers obs ON obs.rowid = o.observer_idx
WHERE o.timestamp >= :cutoff_unix AND (o.path_json LIKE :path_like)
LIMIT :limit;

-- @name server.ResolvePrefix
-- @source cmd/server/node_resolve.go:44
-- @kind read
-- @nonnull public_key, #2
-- @note A scan error returns HTTP 500.
SELECT public_key, COALESCE(name,'') FROM nodes WHERE public_key LIKE :pubkey_like LIMIT 2;

-- @name server.ConfirmResolvedPathContains
-- @source cmd/server/resolved_index.go:161
-- @kind read
-- @nonnull #1
SELECT COUNT(*) FROM observations WHERE transmission_id = :tx_id AND INSTR(LOWER(resolved_path), :quoted_pubkey) > 0;

-- @name server.FetchResolvedPathsForTx
-- @source cmd/server/resolved_index.go:177
-- @kind read
-- @nonnull id
SELECT id, resolved_path FROM observations WHERE transmission_id = :tx_id AND resolved_path IS NOT NULL;

-- @name server.FetchResolvedPathForObs
-- @source cmd/server/resolved_index.go:218
-- @kind read
SELECT resolved_path FROM observations WHERE id = :obs_id;

-- @name server.ResolvedPubkeysForEviction
-- @source cmd/server/resolved_index.go:366
-- @kind read
-- @nonnull transmission_id
-- @note Dynamic IN list (up to 499); shown with one.
SELECT transmission_id, resolved_path FROM observations WHERE transmission_id IN (:tx_id) AND resolved_path IS NOT NULL;

-- @name server.QueryCoverageRows
-- @source cmd/server/rx_coverage.go:270
-- @kind read
-- @nonnull lat, lon
-- @note Dynamic IN list of heard-key candidates; shown with one. Table client_receptions.
SELECT lat, lon, snr, rssi, heard_key, rx_at
FROM client_receptions
WHERE heard_key IN (:heard_key)
AND lat BETWEEN :lat_min AND :lat_max AND lon BETWEEN :lon_min AND :lon_max;

-- @name server.MobileRxStats
-- @source cmd/server/rx_coverage.go:293
-- @kind read
-- @nonnull #1, #2
SELECT COUNT(*), COUNT(DISTINCT rx_pubkey) FROM client_receptions
WHERE heard_key IN (:heard_key);

-- @name server.BatchResolveHeardKeys
-- @source cmd/server/rx_dashboard.go:102
-- @kind read
-- @nonnull pfx, public_key, nm
-- @note Dynamic: up to 200 of these joined with " UNION ALL "; shown with one.
SELECT * FROM (SELECT :heard_key AS pfx, public_key, COALESCE(name,'') AS nm FROM nodes WHERE public_key LIKE :pubkey_like LIMIT 2);

-- @name server.QueryCoverageFiltered
-- @source cmd/server/rx_dashboard.go:181
-- @kind read
-- @nonnull lat, lon
-- @note All optional filters present.
SELECT lat, lon, snr, rssi, heard_key, rx_at FROM client_receptions WHERE lat BETWEEN :lat_min AND :lat_max AND lon BETWEEN :lon_min AND :lon_max AND heard_key IN (:heard_key) AND rx_pubkey = :pubkey AND rx_at >= :cutoff_text;

-- @name server.RxLeaderboard
-- @source cmd/server/rx_dashboard.go:272
-- @kind read
-- @nonnull rx_pubkey, #2, lat, lon, heard_key
-- @note Scan error fails the request.
SELECT cr.rx_pubkey, COALESCE(NULLIF(n.name,''), NULLIF(co.name,''), ''),
       cr.lat, cr.lon, cr.heard_key
FROM client_receptions cr
LEFT JOIN nodes n ON n.public_key = cr.rx_pubkey
LEFT JOIN client_observers co ON co.pubkey = cr.rx_pubkey
WHERE cr.rx_at >= :cutoff_text
ORDER BY cr.rx_at DESC
LIMIT :limit;

-- @name server.PollerNextObsID
-- @source cmd/server/websocket.go:269
-- @kind read
-- @nonnull #1
SELECT COALESCE(MAX(id), :after_id) FROM (
  SELECT id FROM observations
  WHERE id > :after_id
  ORDER BY id ASC
  LIMIT 500
);

-- @name hashmigrate.UpdateHash
-- @source cmd/server/hash_migrate.go:62
-- @kind write
-- @note migrateContentHashesAsync runs at every server start for each in-memory packet whose stored hash != ComputeContentHash(raw_hex). The server connection is mode=ro, so in production this fails; the collision path below then runs. The collision lookup (SELECT id FROM transmissions WHERE hash = ?, hash_migrate.go:75) is server.GetTxIDByHash.
UPDATE transmissions SET hash = :new_hash WHERE id = :tx_id;

-- @name hashmigrate.MergeObservations
-- @source cmd/server/hash_migrate.go:76
-- @kind write
-- @note :tx_id2 = surviving transmission (the one already holding the new hash), :tx_id = duplicate.
UPDATE observations SET transmission_id = :tx_id2 WHERE transmission_id = :tx_id;

-- @name hashmigrate.DeleteDuplicate
-- @source cmd/server/hash_migrate.go:77
-- @kind write
DELETE FROM transmissions WHERE id = :tx_id;
