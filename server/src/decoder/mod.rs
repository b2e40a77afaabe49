//! MeshCore packet decoder and the CoreScope-compatible packet hash.
//!
//! Wire layout: header byte (route type bits 0-1, payload type bits 2-5,
//! version bits 6-7); four bytes of transport codes for the transport route
//! types; a path byte (hop count in the low 6 bits, bytes per hop = top two
//! bits + 1, where 4 is invalid) followed by the hop bytes; then the payload.

pub mod advert;
pub mod corescope;
pub mod fields;

use sha2::{Digest, Sha256};
use shared::packet::{RouteType, PAYLOAD_ADVERT, PAYLOAD_TRACE};

/// Largest payload MeshCore sends.
pub(crate) const MAX_PAYLOAD: usize = 184;
/// Largest path (hop count x bytes per hop).
pub(crate) const MAX_PATH_BYTES: usize = 64;
/// Length of an ADVERT's public key at the start of its payload.
pub(crate) const PUBKEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not valid hex: {0}")]
    NotHex(String),
    #[error("packet is {0} bytes; a packet needs at least 2")]
    TooShort(usize),
    #[error("packet ends inside the transport codes ({have} of 4 bytes)")]
    TruncatedTransport { have: usize },
    #[error("packet ends before its path byte")]
    MissingPathByte,
    #[error("path byte 0x{0:02x} declares 4 bytes per hop, which is invalid")]
    InvalidHopSize(u8),
    #[error("path of {hops} hops x {size} bytes is {total} bytes; at most 64 allowed")]
    PathTooLong {
        hops: usize,
        size: usize,
        total: usize,
    },
    #[error("packet ends inside its path ({have} of {need} path bytes)")]
    TruncatedPath { have: usize, need: usize },
    #[error("payload is {0} bytes; at most 184 allowed")]
    PayloadTooLong(usize),
}

/// A decoded packet; slices borrow the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub route_type: RouteType,
    pub payload_type: u8,
    pub payload_version: u8,
    pub(crate) transport_codes: Option<[u16; 2]>,
    pub(crate) path_byte: u8,
    pub hop_size: usize,
    pub path: &'a [u8],
    pub payload: &'a [u8],
}

/// The character that `s` starts with and its length in bytes, read as Go
/// reads runes: a byte that does not start a valid UTF-8 sequence is
/// `(None, 1)`, so every such byte stands for one U+FFFD.
pub(crate) fn next_rune(s: &[u8]) -> (Option<char>, usize) {
    let len = match s.first() {
        None => return (None, 0),
        Some(0..=0x7f) => 1,
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        Some(_) => return (None, 1),
    };
    match s.get(..len).map(std::str::from_utf8) {
        Some(Ok(t)) => (t.chars().next(), len),
        _ => (None, 1),
    }
}

/// Decodes a hex string (either case; spaces and line breaks anywhere are
/// ignored, as CoreScope's decoder ignores them) into bytes.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, DecodeError> {
    let cleaned: String;
    let s = if s.contains([' ', '\n', '\r', '\t']) {
        cleaned = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '\n' | '\r' | '\t'))
            .collect();
        cleaned.as_str()
    } else {
        s
    };
    if !s.len().is_multiple_of(2) {
        return Err(DecodeError::NotHex(format!("odd length {}", s.len())));
    }
    hex::decode(s).map_err(|e| DecodeError::NotHex(e.to_string()))
}

/// Decodes one packet.
pub fn decode(raw: &[u8]) -> Result<Packet<'_>, DecodeError> {
    if raw.len() < 2 {
        return Err(DecodeError::TooShort(raw.len()));
    }
    let header = raw[0];
    let route_type = RouteType::from_bits(header);
    let payload_type = (header >> 2) & 0x0f;
    let payload_version = header >> 6;
    let mut at = 1;
    let transport_codes = if route_type.has_transport_codes() {
        let codes = raw.get(at..at + 4).ok_or(DecodeError::TruncatedTransport {
            have: raw.len() - at,
        })?;
        at += 4;
        Some([
            u16::from_le_bytes([codes[0], codes[1]]),
            u16::from_le_bytes([codes[2], codes[3]]),
        ])
    } else {
        None
    };
    let path_byte = *raw.get(at).ok_or(DecodeError::MissingPathByte)?;
    at += 1;
    let hops = usize::from(path_byte & 0x3f);
    let hop_size = usize::from(path_byte >> 6) + 1;
    if hop_size == 4 {
        return Err(DecodeError::InvalidHopSize(path_byte));
    }
    let path_len = hops * hop_size;
    if path_len > MAX_PATH_BYTES {
        return Err(DecodeError::PathTooLong {
            hops,
            size: hop_size,
            total: path_len,
        });
    }
    let path = raw
        .get(at..at + path_len)
        .ok_or(DecodeError::TruncatedPath {
            have: raw.len() - at,
            need: path_len,
        })?;
    at += path_len;
    let payload = &raw[at..];
    if payload.len() > MAX_PAYLOAD {
        return Err(DecodeError::PayloadTooLong(payload.len()));
    }
    Ok(Packet {
        route_type,
        payload_type,
        payload_version,
        transport_codes,
        path_byte,
        hop_size,
        path,
        payload,
    })
}

impl Packet<'_> {
    /// The dedup key: first 16 lowercase hex chars of SHA-256 over the
    /// payload type byte, (TRACE only) the path byte and a zero byte, and the
    /// payload. The path is otherwise left out, so one packet heard over
    /// different paths has one hash.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update([self.payload_type]);
        if self.payload_type == PAYLOAD_TRACE {
            h.update([self.path_byte, 0x00]);
        }
        h.update(self.payload);
        let digest = h.finalize();
        hex::encode(&digest[..8])
    }

    /// The hops as a JSON array of uppercase hex strings, e.g.
    /// `["A1","B2"]`: the header path's, except for a TRACE that carries its
    /// route, whose header bytes are SNRs and whose hops are in the payload
    /// (`1 << (flags & 3)` bytes each), as CoreScope stores `path_json` (a
    /// part of the sighting dedup key both programs must agree on).
    pub fn path_json(&self) -> String {
        let (bytes, size) = match self.trace_route() {
            Some(route) => route,
            None => (self.path, self.hop_size),
        };
        let hops: Vec<String> = bytes
            .chunks_exact(size.max(1))
            .map(hex::encode_upper)
            .collect();
        serde_json::to_string(&hops).unwrap_or_else(|_| "[]".to_string())
    }

    /// A TRACE's route from its payload (the hop bytes and their size),
    /// when it has one.
    fn trace_route(&self) -> Option<(&[u8], usize)> {
        if self.payload_type != PAYLOAD_TRACE {
            return None;
        }
        let flags = *self.payload.get(8)?;
        let route = self.payload.get(9..).filter(|r| !r.is_empty())?;
        Some((route, 1usize << (flags & 3)))
    }

    /// The advertiser's public key (lowercase hex) for an ADVERT long
    /// enough to be signed (as CoreScope sets `from_pubkey`).
    pub fn advert_pubkey(&self) -> Option<String> {
        (self.payload_type == PAYLOAD_ADVERT && self.payload.len() >= advert::FIXED_LEN)
            .then(|| hex::encode(&self.payload[..PUBKEY_LEN]))
    }
}

/// CoreScope's hash of a stored packet (`ComputeContentHash`): the same
/// bytes as [`Packet::hash`], found with CoreScope's looser reading (no
/// path or payload length limits, 4-byte hops allowed); a packet too short
/// or not hex to find a payload in is named by its first 16 characters as
/// given. A stored `hash` that differs from this is stale (an older
/// CoreScope's rule) and is re-hashed by `hashes_v1`.
pub fn content_hash(raw_hex: &str) -> String {
    let fallback = || raw_hex.get(..16).unwrap_or(raw_hex).to_string();
    let Ok(buf) = hex::decode(raw_hex) else {
        return fallback();
    };
    if buf.len() < 2 {
        return fallback();
    }
    let header = buf[0];
    let mut at = if matches!(header & 3, 0 | 3) { 5 } else { 1 };
    let Some(&path_byte) = buf.get(at) else {
        return fallback();
    };
    at += 1 + (usize::from(path_byte >> 6) + 1) * usize::from(path_byte & 0x3f);
    let Some(payload) = buf.get(at..) else {
        return fallback();
    };
    let payload_type = (header >> 2) & 0x0f;
    let mut h = Sha256::new();
    h.update([payload_type]);
    if payload_type == PAYLOAD_TRACE {
        h.update([path_byte, 0x00]);
    }
    h.update(payload);
    hex::encode(&h.finalize()[..8])
}

/// Builds raw packet bytes; used by the seed generator and tests.
pub fn encode(
    route_type: u8,
    payload_type: u8,
    version: u8,
    transport: Option<[u16; 2]>,
    hop_size: usize,
    hops: &[&[u8]],
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + hops.len() * hop_size + payload.len());
    out.push((route_type & 3) | ((payload_type & 0x0f) << 2) | ((version & 3) << 6));
    if let Some([a, b]) = transport {
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
    }
    let size_bits = (hop_size.clamp(1, 4) - 1) as u8;
    out.push((hops.len() as u8 & 0x3f) | (size_bits << 6));
    for hop in hops {
        out.extend_from_slice(hop);
    }
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha_prefix(parts: &[&[u8]]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        hex::encode(&h.finalize()[..8])
    }

    #[test]
    fn each_route_type_decodes() {
        for rt in 0..4u8 {
            let transport = matches!(rt, 0 | 3).then_some([0x1234, 0xabcd]);
            let raw = encode(rt, 2, 1, transport, 1, &[&[0xa1], &[0xb2]], b"hello");
            let p = decode(&raw).unwrap();
            assert_eq!(p.route_type as u8, rt);
            assert_eq!(p.payload_type, 2);
            assert_eq!(p.payload_version, 1);
            assert_eq!(p.transport_codes, transport);
            assert_eq!(p.payload, b"hello");
            assert_eq!(p.path_json(), r#"["A1","B2"]"#);
        }
    }

    #[test]
    fn transport_codes_are_little_endian_and_skipped() {
        let raw = [5 << 2, 0x34, 0x12, 0xcd, 0xab, 0x00, 0x99];
        let p = decode(&raw).unwrap();
        assert_eq!(p.transport_codes, Some([0x1234, 0xabcd]));
        assert_eq!(p.payload, &[0x99]);
        assert_eq!(
            decode(&[0x00, 0x01, 0x02]).unwrap_err(),
            DecodeError::TruncatedTransport { have: 2 }
        );
    }

    #[test]
    fn hop_sizes_one_to_three() {
        for size in 1..=3usize {
            let a = vec![0xaa; size];
            let b = vec![0x0b; size];
            let raw = encode(1, 5, 0, None, size, &[&a, &b], b"xy");
            let p = decode(&raw).unwrap();
            assert_eq!(p.hop_size, size);
            assert_eq!(p.path.len(), 2 * size);
            let want = format!(
                "[\"{}\",\"{}\"]",
                hex::encode_upper(&a),
                hex::encode_upper(&b)
            );
            assert_eq!(p.path_json(), want);
            assert_eq!(p.payload, b"xy");
        }
    }

    #[test]
    fn hop_size_four_is_invalid() {
        let raw = [0x01 << 2 | 1, 0b1100_0001, 1, 2, 3, 4, 9];
        assert_eq!(decode(&raw).unwrap_err(), DecodeError::InvalidHopSize(0xc1));
    }

    #[test]
    fn too_short_and_truncated() {
        assert_eq!(decode(&[]).unwrap_err(), DecodeError::TooShort(0));
        assert_eq!(decode(&[0x05]).unwrap_err(), DecodeError::TooShort(1));
        // flood, path byte says 3 one-byte hops but only 1 follows
        assert_eq!(
            decode(&[0x05, 0x03, 0xaa]).unwrap_err(),
            DecodeError::TruncatedPath { have: 1, need: 3 }
        );
    }

    #[test]
    fn over_long_path_is_rejected() {
        // 33 hops x 2 bytes = 66 > 64
        let mut raw = vec![0x05, 0b0110_0001];
        raw.extend(vec![0u8; 70]);
        assert_eq!(
            decode(&raw).unwrap_err(),
            DecodeError::PathTooLong {
                hops: 33,
                size: 2,
                total: 66
            }
        );
        // 64 x 1 is the largest allowed
        let mut ok = vec![0x05, 0x3f];
        ok.extend(vec![0u8; 63 + 1]);
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn over_long_payload_is_rejected() {
        let raw = encode(1, 2, 0, None, 1, &[], &[7u8; 185]);
        assert_eq!(decode(&raw).unwrap_err(), DecodeError::PayloadTooLong(185));
        let raw = encode(1, 2, 0, None, 1, &[], &[7u8; 184]);
        assert!(decode(&raw).is_ok());
    }

    #[test]
    fn advert_pubkey_is_lowercase_hex_of_first_32_bytes() {
        let mut payload = (0u8..32)
            .map(|b| b.wrapping_mul(7) | 0xa0)
            .collect::<Vec<_>>();
        payload.extend_from_slice(b"rest-of-advert");
        let raw = encode(1, 4, 0, None, 1, &[], &payload);
        let p = decode(&raw).unwrap();
        assert_eq!(p.advert_pubkey(), None, "too short to be signed");
        payload.resize(advert::FIXED_LEN, 0x11);
        let raw = encode(1, 4, 0, None, 1, &[], &payload);
        let p = decode(&raw).unwrap();
        assert_eq!(p.advert_pubkey(), Some(hex::encode(&payload[..32])));
        // A short ADVERT is still a packet (CoreScope stores it too).
        let short = encode(1, 4, 0, None, 1, &[], &[1; 10]);
        assert_eq!(decode(&short).unwrap().advert_pubkey(), None);
        let txt_raw = encode(1, 2, 0, None, 1, &[], &payload);
        assert_eq!(decode(&txt_raw).unwrap().advert_pubkey(), None);
    }

    #[test]
    fn hash_ignores_path_except_for_trace() {
        let a = encode(1, 5, 0, None, 1, &[&[1], &[2]], b"same");
        let b = encode(2, 5, 0, None, 2, &[&[9, 9]], b"same");
        let ha = decode(&a).unwrap().hash();
        assert_eq!(ha, decode(&b).unwrap().hash());
        assert_eq!(ha, sha_prefix(&[&[5], b"same"]));
        assert_eq!(ha.len(), 16);
        assert_eq!(ha, ha.to_lowercase());

        let t1 = encode(1, 9, 0, None, 1, &[&[1]], b"trace");
        let t2 = encode(1, 9, 0, None, 1, &[&[1], &[2]], b"trace");
        let h1 = decode(&t1).unwrap().hash();
        assert_eq!(h1, sha_prefix(&[&[9], &[0x01, 0x00], b"trace"]));
        assert_ne!(
            h1,
            decode(&t2).unwrap().hash(),
            "TRACE hash covers the path byte"
        );
    }

    #[test]
    fn content_hash_is_the_packet_hash_and_falls_back_like_corescope() {
        for raw in [
            encode(1, 5, 0, None, 1, &[&[1], &[2]], b"same"),
            encode(0, 2, 0, Some([1, 2]), 2, &[&[9, 9]], b"transported"),
            encode(
                2,
                9,
                0,
                None,
                1,
                &[&[7]],
                &[1, 2, 3, 4, 5, 6, 7, 8, 0, 0xaa],
            ),
        ] {
            let h = hex::encode_upper(&raw);
            assert_eq!(content_hash(&h), decode(&raw).unwrap().hash(), "{h}");
            assert_eq!(content_hash(&h.to_lowercase()), content_hash(&h));
        }
        // Truncated inside the path: the first 16 characters, as given.
        assert_eq!(content_hash("0A3FAABBCCDDEEFF00"), "0A3FAABBCCDDEEFF");
        assert_eq!(content_hash("zz"), "zz");
        // A 74-byte path is past meshscope's limit but CoreScope still
        // hashes it (CoreScope's fixture, transmission 465).
        let mut long = vec![0x15, 0x65];
        long.extend(vec![0x42; 74]);
        long.extend_from_slice(b"payload");
        let want = sha_prefix(&[&[5], b"payload"]);
        assert_eq!(content_hash(&hex::encode(&long)), want);
    }

    #[test]
    fn trace_paths_are_the_route_in_the_payload() {
        // Header hops are SNRs; the route (2-byte hops: flags 1) follows
        // the tag, auth code and flags.
        let mut payload = vec![0u8; 8];
        payload.push(1);
        payload.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
        let raw = encode(2, 9, 0, None, 1, &[&[0x10], &[0x20]], &payload);
        assert_eq!(decode(&raw).unwrap().path_json(), r#"["AABB","CCDD"]"#);
        let bare = encode(2, 9, 0, None, 1, &[&[0x10]], &[0u8; 9]);
        assert_eq!(decode(&bare).unwrap().path_json(), r#"["10"]"#);
    }

    #[test]
    fn hex_input_errors_are_named() {
        assert!(matches!(parse_hex("abc"), Err(DecodeError::NotHex(m)) if m.contains("odd")));
        assert!(matches!(parse_hex("zz"), Err(DecodeError::NotHex(_))));
        assert_eq!(parse_hex(" 0A0b ").unwrap(), vec![0x0a, 0x0b]);
        assert_eq!(parse_hex("0A 0b\r\n01").unwrap(), vec![0x0a, 0x0b, 0x01]);
    }
}
