//! The payload's fields, decoded per payload type for people and the API
//! (`GET /api/packets/{hash}`). Names follow CoreScope's decoded JSON
//! (camelCase: `destHash`, `srcHash`, `mac`, `channelHash`, …) so an
//! operator reading both sees the same words.
//!
//! Encrypted payloads show their envelope (who to, who from, MAC, the
//! ciphertext's hex); meshscope holds no keys. A payload too short for its
//! type says so in `error` and keeps its bytes in `raw`.

use serde_json::{json, Map, Value};
use shared::packet::{payload_type_name, PAYLOAD_ADVERT, PAYLOAD_TRACE};

use super::advert;

type Fields = Map<String, Value>;

fn obj(v: Value) -> Fields {
    match v {
        Value::Object(m) => m,
        _ => Fields::new(),
    }
}

fn too_short(b: &[u8]) -> Fields {
    obj(json!({ "error": "too short", "raw": hex::encode(b) }))
}

fn u32_le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// REQ, RESPONSE, TXT_MSG (the rest is `encryptedData`) and PATH (the rest
/// is `pathData`): destination and source hash, MAC, then the rest.
fn addressed(b: &[u8], rest: &str) -> Fields {
    if b.len() < 4 {
        return too_short(b);
    }
    let mut f = obj(json!({
        "destHash": hex::encode(&b[0..1]),
        "srcHash": hex::encode(&b[1..2]),
        "mac": hex::encode(&b[2..4]),
    }));
    f.insert(rest.into(), json!(hex::encode(&b[4..])));
    f
}

fn ack(b: &[u8]) -> Fields {
    if b.len() < 4 {
        return too_short(b);
    }
    let mut f = obj(json!({ "checksum": format!("{:08x}", u32_le(b)) }));
    // Firmware 1.16 adds an attempt counter and a random byte.
    if let Some(a) = b.get(4) {
        f.insert("attempt".into(), json!(a));
    }
    if let Some(r) = b.get(5) {
        f.insert("random".into(), json!(r));
    }
    f
}

fn advert_fields(b: &[u8]) -> Fields {
    match advert::decode(b) {
        Err(e) => obj(json!({ "error": e.to_string(), "raw": hex::encode(b) })),
        Ok(a) => {
            let mut f = obj(json!({
                "publicKey": a.public_key,
                "timestamp": a.timestamp,
                "signature": a.signature,
            }));
            let mut put = |k: &str, v: Value| {
                if !v.is_null() {
                    f.insert(k.into(), v);
                }
            };
            put("flags", json!(a.flags.map(|x| format!("{x:02x}"))));
            put("role", json!(a.role()));
            put("lat", json!(a.lat));
            put("lon", json!(a.lon));
            put("feature1", json!(a.feature1));
            put("feature2", json!(a.feature2));
            put("name", json!(a.name));
            put("batteryMv", json!(a.battery_mv));
            put("temperatureC", json!(a.temperature_c));
            f
        }
    }
}

/// GRP_TXT and GRP_DATA: the channel's one-byte hash, MAC, ciphertext.
fn group(b: &[u8]) -> Fields {
    if b.len() < 3 {
        return too_short(b);
    }
    obj(json!({
        "channelHash": format!("{:02X}", b[0]),
        "mac": hex::encode(&b[1..3]),
        "encryptedData": hex::encode(&b[3..]),
    }))
}

fn anon_req(b: &[u8]) -> Fields {
    if b.len() < 35 {
        return too_short(b);
    }
    obj(json!({
        "destHash": hex::encode(&b[0..1]),
        "ephemeralPubKey": hex::encode(&b[1..33]),
        "mac": hex::encode(&b[33..35]),
        "encryptedData": hex::encode(&b[35..]),
    }))
}

/// TRACE: tag, auth code, flags; the route to trace is in the payload
/// (hop size `1 << (flags & 3)`), and the header path holds one SNR byte
/// (quarter dB) per hop completed so far.
fn trace(b: &[u8], header_path: &[u8]) -> Fields {
    if b.len() < 9 {
        return too_short(b);
    }
    let flags = b[8];
    let size = 1usize << (flags & 3);
    let hops: Vec<String> = b[9..].chunks_exact(size).map(hex::encode_upper).collect();
    let snrs: Vec<f64> = header_path
        .iter()
        .map(|s| f64::from(*s as i8) / 4.0)
        .collect();
    obj(json!({
        "tag": u32_le(&b[0..4]),
        "authCode": u32_le(&b[4..8]),
        "traceFlags": flags,
        "traceHops": hops,
        "hopsCompleted": header_path.len(),
        "snrs": snrs,
    }))
}

fn multipart(b: &[u8]) -> Fields {
    let Some(&first) = b.first() else {
        return too_short(b);
    };
    let inner = first & 0x0f;
    let mut f = obj(json!({
        "remaining": first >> 4,
        "innerType": payload_type_name(inner),
    }));
    if inner == 3 && b.len() >= 5 {
        f.insert(
            "innerChecksum".into(),
            json!(format!("{:08x}", u32_le(&b[1..5]))),
        );
    } else if b.len() > 1 {
        f.insert("innerPayload".into(), json!(hex::encode(&b[1..])));
    }
    f
}

/// CONTROL: node discovery requests and responses (subtype in the high nibble).
fn control(b: &[u8]) -> Fields {
    let Some(&first) = b.first() else {
        return too_short(b);
    };
    let mut f = obj(json!({ "controlFlags": format!("{first:02x}") }));
    match first & 0xf0 {
        0x80 => {
            f.insert("subtype".into(), json!("DISCOVER_REQ"));
            if b.len() >= 6 {
                f.insert("filter".into(), json!(b[1]));
                f.insert("tag".into(), json!(u32_le(&b[2..6])));
            }
            if b.len() >= 10 {
                f.insert("since".into(), json!(u32_le(&b[6..10])));
            }
        }
        0x90 => {
            f.insert("subtype".into(), json!("DISCOVER_RESP"));
            f.insert("nodeType".into(), json!(advert::role_name(first & 0x0f)));
            if b.len() >= 6 {
                f.insert("snr".into(), json!(b[1] as i8));
                f.insert("tag".into(), json!(u32_le(&b[2..6])));
                let key = match b.len() - 6 {
                    n if n >= 32 => Some(&b[6..38]),
                    n if n >= 8 => Some(&b[6..14]),
                    _ => None,
                };
                if let Some(k) = key {
                    f.insert("publicKey".into(), json!(hex::encode(k)));
                }
            }
        }
        _ => {
            f.insert("subtype".into(), json!("UNKNOWN"));
            f.insert("raw".into(), json!(hex::encode(b)));
        }
    }
    f
}

fn raw_custom(b: &[u8]) -> Fields {
    let mut f = obj(json!({ "length": b.len(), "raw": hex::encode(b) }));
    if let Some(t) = b.first() {
        f.insert("firstByte".into(), json!(format!("{t:02X}")));
    }
    f
}

/// The decoded fields of a payload of `payload_type`; `header_path` is the
/// header's hop bytes (TRACE keeps SNRs there).
pub fn payload_fields(payload_type: u8, payload: &[u8], header_path: &[u8]) -> Fields {
    match payload_type {
        0..=2 => addressed(payload, "encryptedData"),
        3 => ack(payload),
        PAYLOAD_ADVERT => advert_fields(payload),
        5 | 6 => group(payload),
        7 => anon_req(payload),
        8 => addressed(payload, "pathData"),
        PAYLOAD_TRACE => trace(payload, header_path),
        10 => multipart(payload),
        11 => control(payload),
        15 => raw_custom(payload),
        _ => obj(json!({ "raw": hex::encode(payload) })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(t: u8, b: &[u8]) -> Value {
        Value::Object(payload_fields(t, b, &[]))
    }

    #[test]
    fn addressed_types_show_their_envelope() {
        for t in [0u8, 1, 2] {
            assert_eq!(
                f(t, &[0x11, 0x22, 0xaa, 0xbb, 0x01, 0x02]),
                json!({"destHash": "11", "srcHash": "22", "mac": "aabb", "encryptedData": "0102"})
            );
        }
        assert_eq!(f(2, &[1, 2]), json!({"error": "too short", "raw": "0102"}));
    }

    #[test]
    fn ack_checksum_and_extended_bytes() {
        assert_eq!(
            f(3, &[0x78, 0x56, 0x34, 0x12]),
            json!({"checksum": "12345678"})
        );
        assert_eq!(
            f(3, &[0x78, 0x56, 0x34, 0x12, 2, 9]),
            json!({"checksum": "12345678", "attempt": 2, "random": 9})
        );
    }

    #[test]
    fn advert_fields_and_refusal() {
        let p = advert::encode(&[7; 32], 1_700_000_000, 2, Some((1.5, -2.25)), Some("R1"));
        let v = f(4, &p);
        assert_eq!(v["publicKey"], json!("07".repeat(32)));
        assert_eq!(v["timestamp"], json!(1_700_000_000u32));
        assert_eq!(v["role"], json!("repeater"));
        assert_eq!(v["flags"], json!("92"));
        assert_eq!(
            (v["lat"].clone(), v["lon"].clone()),
            (json!(1.5), json!(-2.25))
        );
        assert_eq!(v["name"], json!("R1"));
        assert!(v.get("batteryMv").is_none());
        let short = f(4, &[7; 40]);
        assert!(
            short["error"].as_str().unwrap().contains("40 bytes"),
            "{short}"
        );
    }

    #[test]
    fn group_anon_path() {
        assert_eq!(
            f(5, &[0xd9, 0x01, 0x02, 0xff]),
            json!({"channelHash": "D9", "mac": "0102", "encryptedData": "ff"})
        );
        assert_eq!(f(6, &[0x0a, 1, 2])["channelHash"], json!("0A"));
        let mut anon = vec![0x33];
        anon.extend_from_slice(&[0xee; 32]);
        anon.extend_from_slice(&[0x01, 0x02, 0x99]);
        assert_eq!(
            f(7, &anon),
            json!({"destHash": "33", "ephemeralPubKey": "ee".repeat(32), "mac": "0102", "encryptedData": "99"})
        );
        assert_eq!(f(7, &[0; 34])["error"], json!("too short"));
        assert_eq!(
            f(8, &[1, 2, 3, 4, 5]),
            json!({"destHash": "01", "srcHash": "02", "mac": "0304", "pathData": "05"})
        );
    }

    #[test]
    fn trace_hops_and_snrs() {
        // Tag 1, auth 2, flags 1 (2-byte hops), two hops to trace.
        let b = [1, 0, 0, 0, 2, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd];
        let v = Value::Object(payload_fields(9, &b, &[40, 0xf8]));
        assert_eq!(
            v,
            json!({"tag": 1, "authCode": 2, "traceFlags": 1, "traceHops": ["AABB", "CCDD"],
                   "hopsCompleted": 2, "snrs": [10.0, -2.0]})
        );
    }

    #[test]
    fn multipart_control_raw_custom_unknown() {
        assert_eq!(
            f(10, &[0x23, 0x78, 0x56, 0x34, 0x12]),
            json!({"remaining": 2, "innerType": "ACK", "innerChecksum": "12345678"})
        );
        assert_eq!(
            f(10, &[0x15, 0xab]),
            json!({"remaining": 1, "innerType": "GRP_TXT", "innerPayload": "ab"})
        );
        assert_eq!(
            f(11, &[0x80, 3, 1, 0, 0, 0]),
            json!({"controlFlags": "80", "subtype": "DISCOVER_REQ", "filter": 3, "tag": 1})
        );
        let mut resp = vec![0x92, 0xf4, 5, 0, 0, 0];
        resp.extend_from_slice(&[0xcd; 8]);
        assert_eq!(
            f(11, &resp),
            json!({"controlFlags": "92", "subtype": "DISCOVER_RESP", "nodeType": "repeater",
                   "snr": -12, "tag": 5, "publicKey": "cd".repeat(8)})
        );
        assert_eq!(
            f(15, &[0x7e, 1]),
            json!({"length": 2, "raw": "7e01", "firstByte": "7E"})
        );
        assert_eq!(f(12, &[1, 2]), json!({"raw": "0102"}));
    }
}
