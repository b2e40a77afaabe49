//! ADVERT payloads: who a node is, as it announces itself.
//!
//! Layout (MeshCore firmware, as CoreScope's `decodeAdvert` reads it): the
//! public key (32 bytes), the advert's own timestamp (u32 LE), the signature
//! (64 bytes), then the app data: a flags byte (low nibble the node type:
//! 1 companion, 2 repeater, 3 room server, 4 sensor; 0x10 location, 0x20
//! feature 1, 0x40 feature 2, 0x80 name), latitude and longitude (i32 LE,
//! millionths of a degree) when flagged, the two optional u16 feature
//! fields, the name (up to a NUL), and for sensors battery millivolts (u16
//! LE) and temperature (i16 LE, hundredths of a degree C).
//!
//! CoreScope's checks before it stores a node are kept: a public key of
//! zeros, a latitude outside ±90 or longitude outside ±180 refuse the
//! advert as a node (the packet itself is still stored, where CoreScope
//! drops it). Names lose control characters and are cut to 32 bytes, the
//! firmware's buffer. Optional fields are read only when all their bytes
//! are there, as CoreScope's `decodeAdvert` reads them.

/// Public key, timestamp and signature: what every ADVERT starts with.
pub const FIXED_LEN: usize = 32 + 4 + 64;
/// The firmware's name buffer.
const MAX_NAME_BYTES: usize = 32;

const HAS_LOCATION: u8 = 0x10;
const HAS_FEATURE1: u8 = 0x20;
const HAS_FEATURE2: u8 = 0x40;
const HAS_NAME: u8 = 0x80;
const TYPE_SENSOR: u8 = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct Advert {
    /// Lowercase hex, as `transmissions.from_pubkey` and CoreScope store it.
    pub public_key: String,
    /// The sender's clock when it signed the advert (unix seconds).
    pub timestamp: u32,
    pub signature: String,
    /// The app data's flags byte; `None` when the advert has no app data.
    pub flags: Option<u8>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub feature1: Option<u16>,
    pub feature2: Option<u16>,
    /// The name as shown (invalid bytes as U+FFFD); `None` when empty.
    pub name: Option<String>,
    /// The name's bytes as CoreScope keeps them (see [`parse`]).
    pub name_bytes: Vec<u8>,
    pub battery_mv: Option<u16>,
    pub temperature_c: Option<f64>,
}

/// Why an ADVERT does not describe a node.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdvertError {
    #[error("ADVERT payload is {0} bytes; public key, timestamp and signature need 100")]
    TooShort(usize),
    #[error("ADVERT public key is all zeros")]
    ZeroKey,
    #[error("ADVERT latitude {0} is outside -90..90")]
    Latitude(f64),
    #[error("ADVERT longitude {0} is outside -180..180")]
    Longitude(f64),
}

pub use shared::packet::role_name;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A name as CoreScope keeps it: each byte that does not start valid
/// UTF-8 becomes U+FFFD, controls (but tab and newline) and DEL are
/// dropped, then the bytes are cut at the firmware's 32 (which may split a
/// character; the JSON writer shows such bytes as U+FFFD).
fn clean_name(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    while at < raw.len() {
        let (c, len) = super::next_rune(&raw[at..]);
        let c = c.unwrap_or('\u{fffd}');
        if c == '\t' || c == '\n' || (c >= ' ' && c != '\u{7f}') {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        at += len;
    }
    out.truncate(MAX_NAME_BYTES);
    out
}

/// Reads an ADVERT payload (the packet's payload bytes) the way CoreScope's
/// decoder does, without judging it (see [`Advert::check`]): optional
/// fields are read only when all their bytes are there, and the read
/// position moves only past fields that were read.
pub fn parse(payload: &[u8]) -> Result<Advert, AdvertError> {
    if payload.len() < FIXED_LEN {
        return Err(AdvertError::TooShort(payload.len()));
    }
    let mut a = Advert {
        public_key: hex::encode(&payload[..32]),
        timestamp: u32::from_le_bytes([payload[32], payload[33], payload[34], payload[35]]),
        signature: hex::encode(&payload[36..100]),
        flags: None,
        lat: None,
        lon: None,
        feature1: None,
        feature2: None,
        name: None,
        name_bytes: Vec::new(),
        battery_mv: None,
        temperature_c: None,
    };
    let app = &payload[FIXED_LEN..];
    let Some(&flags) = app.first() else {
        return Ok(a);
    };
    a.flags = Some(flags);
    let mut at = 1;
    if flags & HAS_LOCATION != 0 {
        if let (Some(lat), Some(lon)) = (i32_at(app, at), i32_at(app, at + 4)) {
            a.lat = Some(f64::from(lat) / 1e6);
            a.lon = Some(f64::from(lon) / 1e6);
            at += 8;
        }
    }
    if flags & HAS_FEATURE1 != 0 {
        if let Some(v) = u16_at(app, at) {
            a.feature1 = Some(v);
            at += 2;
        }
    }
    if flags & HAS_FEATURE2 != 0 {
        if let Some(v) = u16_at(app, at) {
            a.feature2 = Some(v);
            at += 2;
        }
    }
    if flags & HAS_NAME != 0 {
        let start = at.min(app.len());
        let end = app[start..]
            .iter()
            .position(|b| *b == 0)
            .map_or(app.len(), |p| start + p);
        a.name_bytes = clean_name(&app[start..end]);
        if !a.name_bytes.is_empty() {
            a.name = Some(String::from_utf8_lossy(&a.name_bytes).into_owned());
        }
        at = end;
        while app.get(at) == Some(&0) {
            at += 1;
        }
    }
    if flags & 0x0f == TYPE_SENSOR {
        if let (Some(mv), Some(t)) = (u16_at(app, at), u16_at(app, at + 2)) {
            let t = t as i16;
            a.battery_mv = (1..=10_000).contains(&mv).then_some(mv);
            a.temperature_c = (-5_000..=10_000).contains(&t).then(|| f64::from(t) / 100.0);
        }
    }
    Ok(a)
}

/// Reads an ADVERT that describes a node: [`parse`], then [`Advert::check`].
pub fn decode(payload: &[u8]) -> Result<Advert, AdvertError> {
    let a = parse(payload)?;
    a.check()?;
    Ok(a)
}

/// Whether the ADVERT's ed25519 signature (over the public key, the
/// timestamp and the app data) is good; `false` for a payload too short
/// to carry one or a key that is not a curve point.
pub fn signature_valid(payload: &[u8]) -> bool {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    if payload.len() < FIXED_LEN {
        return false;
    }
    let Ok(key) = <[u8; 32]>::try_from(&payload[..32]) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(&payload[36..100]) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    let mut message = Vec::with_capacity(payload.len() - 64);
    message.extend_from_slice(&payload[..36]);
    message.extend_from_slice(&payload[FIXED_LEN..]);
    key.verify(&message, &Signature::from_bytes(&sig)).is_ok()
}

impl Advert {
    /// CoreScope's checks before it keeps an advert as a node: a key of
    /// zeros, or a location off the globe, is refused.
    pub fn check(&self) -> Result<(), AdvertError> {
        if self.public_key.bytes().all(|b| b == b'0') {
            return Err(AdvertError::ZeroKey);
        }
        if let Some(lat) = self.lat.filter(|l| !(-90.0..=90.0).contains(l)) {
            return Err(AdvertError::Latitude(lat));
        }
        if let Some(lon) = self.lon.filter(|l| !(-180.0..=180.0).contains(l)) {
            return Err(AdvertError::Longitude(lon));
        }
        Ok(())
    }

    /// The node type (low nibble of the flags), when the advert has flags.
    pub fn node_type(&self) -> Option<u8> {
        self.flags.map(|f| f & 0x0f)
    }

    /// `nodes.role`: the node type's stored name; an advert without app
    /// data is a companion's, as CoreScope labels it.
    pub fn role(&self) -> Option<String> {
        Some(
            self.node_type()
                .map_or_else(|| "companion".into(), role_name),
        )
    }
}

/// Builds an ADVERT payload; for the seed generator and tests.
pub fn encode(
    key: &[u8; 32],
    timestamp: u32,
    node_type: u8,
    location: Option<(f64, f64)>,
    name: Option<&str>,
) -> Vec<u8> {
    let mut p = key.to_vec();
    p.extend_from_slice(&timestamp.to_le_bytes());
    // A stand-in signature: meshscope does not verify signatures.
    p.extend((0..64u8).map(|i| i.wrapping_mul(37) ^ key[usize::from(i) % 32]));
    let mut flags = node_type & 0x0f;
    if location.is_some() {
        flags |= HAS_LOCATION;
    }
    if name.is_some() {
        flags |= HAS_NAME;
    }
    p.push(flags);
    if let Some((lat, lon)) = location {
        p.extend_from_slice(&((lat * 1e6).round() as i32).to_le_bytes());
        p.extend_from_slice(&((lon * 1e6).round() as i32).to_le_bytes());
    }
    if let Some(n) = name {
        p.extend_from_slice(n.as_bytes());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0xab; 32];

    /// Hand-built: every byte placed here, not by `encode`.
    fn hand_built(app: &[u8]) -> Vec<u8> {
        let mut p = vec![0xab; 32];
        p.extend_from_slice(&[0x10, 0x32, 0x54, 0x76]); // 0x76543210
        p.extend_from_slice(&[0x5a; 64]);
        p.extend_from_slice(app);
        p
    }

    #[test]
    fn repeater_with_location_and_name() {
        // 0x92: has name, has location, type 2 (repeater).
        let mut app = vec![0x92];
        app.extend_from_slice(&47_606_200i32.to_le_bytes());
        app.extend_from_slice(&(-122_332_100i32).to_le_bytes());
        app.extend_from_slice(b"Ridge Rptr");
        let a = decode(&hand_built(&app)).unwrap();
        assert_eq!(a.public_key, "ab".repeat(32));
        assert_eq!(a.timestamp, 0x7654_3210);
        assert_eq!(a.signature, "5a".repeat(64));
        assert_eq!(a.flags, Some(0x92));
        assert_eq!(a.role().as_deref(), Some("repeater"));
        assert_eq!(a.lat, Some(47.6062));
        assert_eq!(a.lon, Some(-122.3321));
        assert_eq!(a.name.as_deref(), Some("Ridge Rptr"));
        assert_eq!((a.feature1, a.feature2, a.battery_mv), (None, None, None));
    }

    #[test]
    fn companion_without_location() {
        let mut app = vec![0x81];
        app.extend_from_slice(b"alice\0\0");
        let a = decode(&hand_built(&app)).unwrap();
        assert_eq!(a.role().as_deref(), Some("companion"));
        assert_eq!((a.lat, a.lon), (None, None));
        assert_eq!(a.name.as_deref(), Some("alice"));
    }

    #[test]
    fn room_server_with_features_shifts_the_name() {
        // 0xe3: name, feature 2, feature 1, type 3; no location.
        let mut app = vec![0xe3];
        app.extend_from_slice(&0x0102u16.to_le_bytes());
        app.extend_from_slice(&0x0304u16.to_le_bytes());
        app.extend_from_slice(b"Hall");
        let a = decode(&hand_built(&app)).unwrap();
        assert_eq!(a.role().as_deref(), Some("room"));
        assert_eq!(a.feature1, Some(0x0102));
        assert_eq!(a.feature2, Some(0x0304));
        assert_eq!(a.name.as_deref(), Some("Hall"));
    }

    #[test]
    fn sensor_telemetry_after_the_name() {
        let mut app = vec![0x94];
        app.extend_from_slice(&(-33_868_800i32).to_le_bytes());
        app.extend_from_slice(&151_209_300i32.to_le_bytes());
        app.extend_from_slice(b"tank\0");
        app.extend_from_slice(&3_700u16.to_le_bytes());
        app.extend_from_slice(&(-1_250i16).to_le_bytes());
        let a = decode(&hand_built(&app)).unwrap();
        assert_eq!(a.role().as_deref(), Some("sensor"));
        assert_eq!(a.lat, Some(-33.8688));
        assert_eq!(a.lon, Some(151.2093));
        assert_eq!(a.name.as_deref(), Some("tank"));
        assert_eq!(a.battery_mv, Some(3_700));
        assert_eq!(a.temperature_c, Some(-12.5));
        // Out-of-range telemetry is dropped, not stored.
        let mut bad = vec![0x84];
        bad.extend_from_slice(b"t\0");
        bad.extend_from_slice(&20_000u16.to_le_bytes());
        bad.extend_from_slice(&20_000i16.to_le_bytes());
        let a = decode(&hand_built(&bad)).unwrap();
        assert_eq!((a.battery_mv, a.temperature_c), (None, None));
    }

    #[test]
    fn no_app_data_and_unknown_types() {
        let a = decode(&hand_built(&[])).unwrap();
        assert_eq!(a.role().as_deref(), Some("companion"));
        assert_eq!((a.flags, a.name), (None, None));
        assert_eq!(
            decode(&hand_built(&[0x00])).unwrap().role().as_deref(),
            Some("none")
        );
        assert_eq!(
            decode(&hand_built(&[0x07])).unwrap().role().as_deref(),
            Some("type-7")
        );
    }

    #[test]
    fn names_lose_control_characters_and_stop_at_32_bytes() {
        let mut app = vec![0x81];
        app.extend_from_slice(b"a\x01b\x7fc");
        assert_eq!(
            decode(&hand_built(&app)).unwrap().name.as_deref(),
            Some("abc")
        );
        let mut long = vec![0x81];
        long.extend_from_slice("é".repeat(20).as_bytes()); // 40 bytes
        let name = decode(&hand_built(&long)).unwrap().name.unwrap();
        assert_eq!(name, "é".repeat(16));
    }

    #[test]
    fn refusals() {
        assert_eq!(decode(&[1; 99]), Err(AdvertError::TooShort(99)));
        let mut zero = hand_built(&[0x81]);
        zero[..32].fill(0);
        assert_eq!(decode(&zero), Err(AdvertError::ZeroKey));
        let mut app = vec![0x11];
        app.extend_from_slice(&91_000_000i32.to_le_bytes());
        app.extend_from_slice(&0i32.to_le_bytes());
        assert_eq!(decode(&hand_built(&app)), Err(AdvertError::Latitude(91.0)));
        let mut app = vec![0x11];
        app.extend_from_slice(&0i32.to_le_bytes());
        app.extend_from_slice(&(-181_000_000i32).to_le_bytes());
        assert_eq!(
            decode(&hand_built(&app)),
            Err(AdvertError::Longitude(-181.0))
        );
    }

    #[test]
    fn encode_round_trips() {
        let p = encode(&KEY, 1_700_000_000, 2, Some((47.5, -122.25)), Some("n1"));
        let a = decode(&p).unwrap();
        assert_eq!(a.public_key, hex::encode(KEY));
        assert_eq!(a.timestamp, 1_700_000_000);
        assert_eq!((a.lat, a.lon), (Some(47.5), Some(-122.25)));
        assert_eq!(a.role().as_deref(), Some("repeater"));
        assert_eq!(a.name.as_deref(), Some("n1"));
        let bare = decode(&encode(&KEY, 1, 1, None, None)).unwrap();
        assert_eq!((bare.lat, bare.name), (None, None));
    }
}
