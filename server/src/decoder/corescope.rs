//! `transmissions.decoded_json` and `channel_hash` exactly as CoreScope's
//! ingestor writes them, so a file meshscope wrote reads in CoreScope as if
//! CoreScope had stored the packet itself (its neighbour builder, packet
//! and channel views read these columns).
//!
//! The facts come from CoreScope's source at Kpa-clawbot/CoreScope a06ac8ac
//! (`cmd/ingestor/decoder.go`: the `Payload` struct, whose field order is
//! the key order, and one `decode*` per payload type; `db.go`
//! `BuildPacketData` for `channel_hash`), read for this and not copied; the
//! tests compare with the `decoded_json` of CoreScope's own test database.
//!
//! The column holds the payload object only (no header, path or transport
//! codes), as Go's `encoding/json` writes it: keys in struct order, no
//! whitespace, `omitempty` (empty strings, and zero for the plain numbers
//! `timestamp`, `channelHash`, `sender_timestamp`, `tag`, `authCode`),
//! floats in their shortest form without a fraction when whole (`12`, not
//! `12.0`), `<`, `>`, `&`, U+2028 and U+2029 escaped, each invalid UTF-8 byte
//! as `\ufffd`. serde_json does several of these differently, so the object
//! is written by [`Obj`] below.
//!
//! Group messages (GRP_TXT, GRP_DATA) are opened with the channel keys given
//! (the firmware's public channel always among them): the MAC (HMAC-SHA256
//! keyed with the 16-byte key and 16 zero bytes, over the ciphertext, first
//! two bytes) is checked before anything is decrypted (AES-128-ECB), and a
//! text must read as UTF-8 with at most two control characters. What no key
//! opens is stored as CoreScope stores it: `decryption_failed`.

use aes::cipher::{generic_array::GenericArray, BlockDecrypt, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Packet;

/// The key of the firmware's default public channel (CoreScope's built-in
/// `Public` key).
pub const PUBLIC_CHANNEL_KEY: [u8; 16] = [
    0x8b, 0x33, 0x87, 0xe9, 0xc5, 0xcd, 0xea, 0x6a, 0xc9, 0xe5, 0xed, 0xba, 0xa1, 0x15, 0xcd, 0x72,
];

/// A channel meshscope can open: its name (as `channel` shows it) and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelKey {
    pub name: String,
    pub key: [u8; 16],
}

impl ChannelKey {
    /// The firmware's default public channel.
    pub fn public() -> ChannelKey {
        ChannelKey {
            name: "Public".into(),
            key: PUBLIC_CHANNEL_KEY,
        }
    }

    /// A hashtag channel (`#name`): its key is the first 16 bytes of the
    /// SHA-256 of its name.
    pub fn hashtag(name: &str) -> ChannelKey {
        let name = if name.starts_with('#') {
            name.to_string()
        } else {
            format!("#{name}")
        };
        let digest = Sha256::digest(name.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        ChannelKey { name, key }
    }
}

/// The channels meshscope opens at ingest: the firmware's public channel.
pub fn default_keys() -> &'static [ChannelKey] {
    static KEYS: std::sync::OnceLock<Vec<ChannelKey>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| vec![ChannelKey::public()])
}

/// What CoreScope stores for one packet beside its hash and header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub decoded_json: String,
    /// GRP_TXT only: the channel's name when a key opened it, `enc_XX` (the
    /// channel byte) when none did, `None` when too short to say.
    pub channel_hash: Option<String>,
}

/// `decoded_json` and `channel_hash` of a decoded packet.
pub fn stored(p: &Packet<'_>, keys: &[ChannelKey]) -> Stored {
    let b = p.payload;
    let mut channel_hash = None;
    let json = match p.payload_type {
        0..=2 => encrypted(type_name(p.payload_type), b),
        3 => ack(b),
        4 => advert(b),
        5 => {
            let (json, ch) = group(b, keys, false);
            channel_hash = ch;
            json
        }
        6 => group(b, keys, true).0,
        7 => anon_req(b),
        8 => path(b),
        9 => trace(b, p),
        10 => multipart(b),
        11 => control(b),
        15 => raw_custom(b),
        _ => {
            let mut o = Obj::new("UNKNOWN");
            o.hex("raw", b);
            o.finish()
        }
    };
    Stored {
        decoded_json: json,
        channel_hash,
    }
}

/// CoreScope's payload type names (`innerTypeName` and the `type` keys).
fn type_name(t: u8) -> &'static str {
    match t {
        0 => "REQ",
        1 => "RESPONSE",
        2 => "TXT_MSG",
        3 => "ACK",
        4 => "ADVERT",
        5 => "GRP_TXT",
        6 => "GRP_DATA",
        7 => "ANON_REQ",
        8 => "PATH",
        9 => "TRACE",
        10 => "MULTIPART",
        11 => "CONTROL",
        15 => "RAW_CUSTOM",
        _ => "UNKNOWN",
    }
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// `{"type":T,"raw":…,"error":…}`: a payload too short for its type.
fn too_short(t: &str, b: &[u8], error: &str) -> String {
    let mut o = Obj::new(t);
    o.hex("raw", b);
    o.str("error", error);
    o.finish()
}

fn encrypted(t: &str, b: &[u8]) -> String {
    if b.len() < 4 {
        return too_short(t, b, "too short");
    }
    let mut o = Obj::new(t);
    o.hex("destHash", &b[..1]);
    o.hex("srcHash", &b[1..2]);
    o.hex("mac", &b[2..4]);
    o.hex("encryptedData", &b[4..]);
    o.finish()
}

fn ack(b: &[u8]) -> String {
    let Some(crc) = u32le(b, 0) else {
        return too_short("ACK", b, "too short");
    };
    let mut o = Obj::new("ACK");
    o.str("extraHash", &format!("{crc:08x}"));
    o.int("ackLen", b.len().min(6) as i64);
    if let Some(&v) = b.get(4) {
        o.int("ackAttempt", i64::from(v));
    }
    if let Some(&v) = b.get(5) {
        o.int("ackRand", i64::from(v));
    }
    o.finish()
}

fn advert(b: &[u8]) -> String {
    use super::advert;
    let a = match advert::parse(b) {
        Ok(a) => a,
        Err(_) => return too_short("ADVERT", b, "too short for advert"),
    };
    let mut o = Obj::new("ADVERT");
    o.str("pubKey", &a.public_key);
    o.int_nz("timestamp", i64::from(a.timestamp));
    o.str(
        "timestampISO",
        &shared::timefmt::format_unix_ms(i64::from(a.timestamp) * 1000),
    );
    o.str("signature", &a.signature);
    o.bool("signatureValid", advert::signature_valid(b));
    if let Some(f) = a.flags {
        let t = f & 0x0f;
        let mut flags = Obj::bare();
        flags.int("raw", i64::from(f));
        flags.int("type", i64::from(t));
        flags.bool("chat", t == 1);
        flags.bool("repeater", t == 2);
        flags.bool("room", t == 3);
        flags.bool("sensor", t == 4);
        flags.bool("hasLocation", f & 0x10 != 0);
        flags.bool("hasFeat1", f & 0x20 != 0);
        flags.bool("hasFeat2", f & 0x40 != 0);
        flags.bool("hasName", f & 0x80 != 0);
        o.raw("flags", &flags.finish());
    }
    if let (Some(lat), Some(lon)) = (a.lat, a.lon) {
        o.float("lat", lat);
        o.float("lon", lon);
    }
    o.bytes("name", &a.name_bytes);
    if let Some(v) = a.feature1 {
        o.int("feat1", i64::from(v));
    }
    if let Some(v) = a.feature2 {
        o.int("feat2", i64::from(v));
    }
    if let Some(v) = a.battery_mv {
        o.int("battery_mv", i64::from(v));
    }
    if let Some(v) = a.temperature_c {
        o.float("temperature_c", v);
    }
    o.finish()
}

/// The plaintext of a group message, if `key` opens it: the MAC first,
/// then AES-128-ECB over whole blocks.
fn open(key: &[u8; 16], mac: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    let mut secret = [0u8; 32];
    secret[..16].copy_from_slice(key);
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(&secret).ok()?;
    h.update(ct);
    let tag = h.finalize().into_bytes();
    if tag[..2] != *mac || !ct.len().is_multiple_of(16) {
        return None;
    }
    let cipher = aes::Aes128::new(GenericArray::from_slice(key));
    let mut pt = ct.to_vec();
    for block in pt.chunks_exact_mut(16) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    Some(pt)
}

/// A decrypted channel text: the sender's clock and the message, if it
/// reads as text (UTF-8, at most two control characters or U+FFFD).
fn text_of(pt: &[u8]) -> Option<(u32, &str)> {
    if pt.len() < 5 {
        return None;
    }
    let ts = u32le(pt, 0)?;
    let body = &pt[5..];
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    let msg = std::str::from_utf8(&body[..end]).ok()?;
    let odd = msg
        .chars()
        .filter(|c| (*c < ' ' && *c != '\n' && *c != '\t') || *c == '\u{fffd}')
        .count();
    (odd <= 2).then_some((ts, msg))
}

/// Splits `"Sender: text"` as CoreScope does: at the first `": "` within
/// the first 50 bytes, when the part before holds no `:`, `[` or `]`.
fn split_sender(msg: &str) -> (&str, &str) {
    if let Some(i) = msg.find(": ") {
        let head = &msg[..i];
        if i > 0 && i < 50 && !head.contains([':', '[', ']']) {
            return (head, &msg[i + 2..]);
        }
    }
    ("", msg)
}

/// GRP_TXT (`data` false) or GRP_DATA: the JSON and, for GRP_TXT, the
/// `channel_hash` column.
fn group(b: &[u8], keys: &[ChannelKey], data: bool) -> (String, Option<String>) {
    let t = if data { "GRP_DATA" } else { "GRP_TXT" };
    if b.len() < 3 {
        return (too_short(t, b, "too short"), None);
    }
    let (channel, mac, ct) = (b[0], &b[1..3], &b[3..]);
    let channel_hex = format!("{channel:02X}");
    if ct.len() >= 5 {
        for k in keys {
            let Some(pt) = open(&k.key, mac, ct) else {
                continue;
            };
            if data {
                let mut o = Obj::new(t);
                o.int_nz("channelHash", i64::from(channel));
                o.str("channelHashHex", &channel_hex);
                o.str("decryptionStatus", "decrypted");
                o.str("channel", &k.name);
                match (u16le(&pt, 0), pt.get(2)) {
                    (Some(kind), Some(&len)) => {
                        o.int("dataType", i64::from(kind));
                        o.int("dataLen", i64::from(len));
                        match pt.get(3..3 + usize::from(len)) {
                            Some(blob) => o.hex("decryptedBlob", blob),
                            None => o.str("error", "inner data_len exceeds buffer"),
                        }
                    }
                    _ => o.str("error", "inner too short"),
                }
                return (o.finish(), None);
            }
            let Some((ts, msg)) = text_of(&pt) else {
                continue;
            };
            let name = if k.name.eq_ignore_ascii_case("public") {
                "Public".to_string()
            } else {
                k.name.clone()
            };
            let (sender, rest) = split_sender(msg);
            let text = if !sender.is_empty() && !rest.is_empty() {
                format!("{sender}: {rest}")
            } else {
                rest.to_string()
            };
            let mut o = Obj::new("CHAN");
            o.int_nz("channelHash", i64::from(channel));
            o.str("channelHashHex", &channel_hex);
            o.str("decryptionStatus", "decrypted");
            o.str("channel", &name);
            o.str("text", &text);
            o.str("sender", sender);
            o.int_nz("sender_timestamp", i64::from(ts));
            return (o.finish(), Some(name));
        }
    }
    let mut o = Obj::new(t);
    o.hex("mac", mac);
    o.hex("encryptedData", ct);
    o.int_nz("channelHash", i64::from(channel));
    o.str("channelHashHex", &channel_hex);
    o.str(
        "decryptionStatus",
        if ct.len() >= 5 {
            "decryption_failed"
        } else {
            "no_key"
        },
    );
    let column = (!data).then(|| format!("enc_{channel_hex}"));
    (o.finish(), column)
}

fn anon_req(b: &[u8]) -> String {
    if b.len() < 35 {
        return too_short("ANON_REQ", b, "too short");
    }
    let mut o = Obj::new("ANON_REQ");
    o.hex("destHash", &b[..1]);
    o.hex("mac", &b[33..35]);
    o.hex("encryptedData", &b[35..]);
    o.hex("ephemeralPubKey", &b[1..33]);
    o.finish()
}

fn path(b: &[u8]) -> String {
    if b.len() < 4 {
        return too_short("PATH", b, "too short");
    }
    let mut o = Obj::new("PATH");
    o.hex("destHash", &b[..1]);
    o.hex("srcHash", &b[1..2]);
    o.hex("mac", &b[2..4]);
    o.hex("pathData", &b[4..]);
    o.finish()
}

fn trace(b: &[u8], p: &Packet<'_>) -> String {
    if b.len() < 9 {
        return too_short("TRACE", b, "too short");
    }
    let path = &b[9..];
    let mut o = Obj::new("TRACE");
    o.hex("pathData", path);
    // Each 1-byte hop of the header path is the SNR a hop measured, in
    // quarter dB.
    if !path.is_empty() && !p.path.is_empty() && p.hop_size == 1 {
        let snrs: Vec<f64> = p.path.iter().map(|h| f64::from(*h as i8) / 4.0).collect();
        o.floats("snrValues", &snrs);
    }
    o.int_nz("tag", i64::from(u32le(b, 0).unwrap_or(0)));
    o.int_nz("authCode", i64::from(u32le(b, 4).unwrap_or(0)));
    o.int("traceFlags", i64::from(b[8]));
    o.finish()
}

fn multipart(b: &[u8]) -> String {
    let Some(&first) = b.first() else {
        return too_short("MULTIPART", b, "too short");
    };
    let inner = first & 0x0f;
    let mut o = Obj::new("MULTIPART");
    o.int("remaining", i64::from(first >> 4));
    o.int("innerType", i64::from(inner));
    o.str("innerTypeName", type_name(inner));
    match u32le(b, 1).filter(|_| inner == 3) {
        Some(crc) => {
            o.str("innerAckCrc", &format!("{crc:08x}"));
            o.int("innerAckLen", (b.len() - 1).min(6) as i64);
            if let Some(&v) = b.get(5) {
                o.int("innerAckAttempt", i64::from(v));
            }
            if let Some(&v) = b.get(6) {
                o.int("innerAckRand", i64::from(v));
            }
        }
        None => o.hex("innerPayload", &b[1..]),
    }
    o.finish()
}

fn control(b: &[u8]) -> String {
    let Some(&flags) = b.first() else {
        return too_short("CONTROL", b, "too short");
    };
    let mut o = Obj::new("CONTROL");
    o.hex("raw", b);
    o.str("ctrlFlags", &format!("{flags:02x}"));
    o.bool("ctrlZeroHop", flags & 0x80 != 0);
    o.int("ctrlLength", b.len() as i64);
    match flags & 0xf0 {
        0x80 => {
            o.str("ctrlSubtype", "DISCOVER_REQ");
            if b.len() >= 6 {
                o.int("ctrlFilter", i64::from(b[1]));
                o.int("ctrlTag", i64::from(u32le(b, 2).unwrap_or(0)));
            }
            if let Some(since) = u32le(b, 6) {
                o.int("ctrlSince", i64::from(since));
            }
        }
        0x90 => {
            o.str("ctrlSubtype", "DISCOVER_RESP");
            o.int("ctrlNodeType", i64::from(flags & 0x0f));
            if b.len() >= 6 {
                o.int("ctrlSNR", i64::from(b[1] as i8));
                o.int("ctrlTag", i64::from(u32le(b, 2).unwrap_or(0)));
                let key = &b[6..];
                if key.len() >= 32 {
                    o.hex("ctrlPubKey", &key[..32]);
                } else if key.len() >= 8 {
                    o.hex("ctrlPubKey", &key[..8]);
                }
            }
        }
        _ => o.str("ctrlSubtype", "UNKNOWN"),
    }
    o.finish()
}

fn raw_custom(b: &[u8]) -> String {
    let mut o = Obj::new("RAW_CUSTOM");
    o.hex("raw", b);
    o.int("rawLength", b.len() as i64);
    if let Some(first) = b.first() {
        o.str("firstByteTag", &format!("{first:02X}"));
    }
    o.finish()
}

/// A JSON object written as Go's `encoding/json` writes a struct: keys in
/// the order they are added, `omitempty` where the method says so.
struct Obj {
    out: String,
    first: bool,
}

impl Obj {
    /// An object starting with `"type"`.
    fn new(kind: &str) -> Obj {
        let mut o = Obj::bare();
        o.str("type", kind);
        o
    }

    fn bare() -> Obj {
        Obj {
            out: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }

    /// A string, left out when empty.
    fn str(&mut self, k: &str, v: &str) {
        self.bytes(k, v.as_bytes());
    }

    /// Text from the wire (maybe not UTF-8), left out when empty.
    fn bytes(&mut self, k: &str, v: &[u8]) {
        if v.is_empty() {
            return;
        }
        self.key(k);
        go_string(&mut self.out, v);
    }

    /// Lowercase hex, left out when empty.
    fn hex(&mut self, k: &str, v: &[u8]) {
        if !v.is_empty() {
            self.str(k, &hex::encode(v));
        }
    }

    fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        self.out.push_str(&v.to_string());
    }

    /// A plain number field: left out when zero.
    fn int_nz(&mut self, k: &str, v: i64) {
        if v != 0 {
            self.int(k, v);
        }
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
    }

    fn float(&mut self, k: &str, v: f64) {
        self.key(k);
        go_float(&mut self.out, v);
    }

    fn floats(&mut self, k: &str, v: &[f64]) {
        self.key(k);
        self.out.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            go_float(&mut self.out, *x);
        }
        self.out.push(']');
    }

    /// A nested object already written.
    fn raw(&mut self, k: &str, json: &str) {
        self.key(k);
        self.out.push_str(json);
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Go's float64 in JSON: the shortest text that reads back the same, with
/// no fraction when whole. Rust's `Display` is the same for every value
/// these fields can hold (no exponent is reached: |v| is between 1e-6 and
/// 1e21 or zero).
fn go_float(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(&v.to_string());
    } else {
        out.push('0');
    }
}

/// Go's JSON string: `"`, `\` and the controls escaped (`\b \f \n \r \t`,
/// else `\u00xx`), `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes, and
/// each byte that does not start a valid UTF-8 sequence as `\ufffd`.
fn go_string(out: &mut String, s: &[u8]) {
    out.push('"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                0x08 => out.push_str("\\b"),
                0x0c => out.push_str("\\f"),
                b'<' => out.push_str("\\u003c"),
                b'>' => out.push_str("\\u003e"),
                b'&' => out.push_str("\\u0026"),
                c if c < 0x20 => out.push_str(&format!("\\u{c:04x}")),
                c => out.push(char::from(c)),
            }
            i += 1;
            continue;
        }
        let (rune, len) = super::next_rune(&s[i..]);
        match rune {
            Some('\u{2028}') => out.push_str("\\u2028"),
            Some('\u{2029}') => out.push_str("\\u2029"),
            Some(c) => out.push(c),
            None => out.push_str("\\ufffd"),
        }
        i += len;
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::{decode, encode, parse_hex};

    fn json_of(raw_hex: &str) -> Stored {
        let bytes = parse_hex(raw_hex).unwrap();
        let p = decode(&bytes).unwrap();
        stored(&p, &[ChannelKey::public()])
    }

    #[test]
    fn go_strings_escape_html_separators_controls_and_bad_bytes() {
        let mut out = String::new();
        go_string(&mut out, "a<b>&c\u{8}\u{1} \u{2028}\"\\\t\n😀’".as_bytes());
        assert_eq!(out, r#""a\u003cb\u003e\u0026c\b\u0001 \u2028\"\\\t\n😀’""#);
        let mut out = String::new();
        // A 3-byte sequence cut after two bytes, then a stray continuation.
        go_string(&mut out, &[b'x', 0xe2, 0x82, b'y', 0x80]);
        assert_eq!(out, r#""x\ufffd\ufffdy\ufffd""#);
    }

    #[test]
    fn go_floats_have_no_fraction_when_whole() {
        for (v, want) in [
            (12.0, "12"),
            (0.0, "0"),
            (-2.0, "-2"),
            (37.658604, "37.658604"),
            (-122.058554, "-122.058554"),
            (3.75, "3.75"),
            (1e-6, "0.000001"),
        ] {
            let mut out = String::new();
            go_float(&mut out, v);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn encrypted_types_and_too_short_payloads() {
        // CoreScope's fixture, transmission 1 (RESPONSE).
        let raw = encode(
            2,
            1,
            0,
            None,
            1,
            &[],
            &hex::decode("1f5d97f8ed9eec25").unwrap(),
        );
        let p = decode(&raw).unwrap();
        assert_eq!(
            stored(&p, &[]).decoded_json,
            r#"{"type":"RESPONSE","destHash":"1f","srcHash":"5d","mac":"97f8","encryptedData":"ed9eec25"}"#
        );
        let raw = encode(1, 0, 0, None, 1, &[], &[1, 2]);
        assert_eq!(
            stored(&decode(&raw).unwrap(), &[]).decoded_json,
            r#"{"type":"REQ","raw":"0102","error":"too short"}"#
        );
        let raw = encode(1, 0, 0, None, 1, &[], &[]);
        assert_eq!(
            stored(&decode(&raw).unwrap(), &[]).decoded_json,
            r#"{"type":"REQ","error":"too short"}"#
        );
    }

    #[test]
    fn ack_multipart_control_raw_custom_and_unknown() {
        let one = |t: u8, payload: &str| {
            let raw = encode(1, t, 0, None, 1, &[], &hex::decode(payload).unwrap());
            stored(&decode(&raw).unwrap(), &[]).decoded_json
        };
        assert_eq!(
            one(3, "78563412"),
            r#"{"type":"ACK","extraHash":"12345678","ackLen":4}"#
        );
        assert_eq!(
            one(3, "785634120207"),
            r#"{"type":"ACK","extraHash":"12345678","ackLen":6,"ackAttempt":2,"ackRand":7}"#
        );
        assert_eq!(
            one(10, "23785634120207"),
            r#"{"type":"MULTIPART","remaining":2,"innerType":3,"innerTypeName":"ACK","innerAckCrc":"12345678","innerAckLen":6,"innerAckAttempt":2,"innerAckRand":7}"#
        );
        assert_eq!(
            one(10, "2c0102"),
            r#"{"type":"MULTIPART","remaining":2,"innerType":12,"innerTypeName":"UNKNOWN","innerPayload":"0102"}"#
        );
        assert_eq!(
            one(15, "ab01"),
            r#"{"type":"RAW_CUSTOM","raw":"ab01","rawLength":2,"firstByteTag":"AB"}"#
        );
        assert_eq!(one(15, ""), r#"{"type":"RAW_CUSTOM","rawLength":0}"#);
        assert_eq!(one(13, "0102"), r#"{"type":"UNKNOWN","raw":"0102"}"#);
        assert_eq!(
            one(11, "8103040000000a000000"),
            r#"{"type":"CONTROL","raw":"8103040000000a000000","ctrlFlags":"81","ctrlZeroHop":true,"ctrlLength":10,"ctrlSubtype":"DISCOVER_REQ","ctrlFilter":3,"ctrlTag":4,"ctrlSince":10}"#
        );
    }

    #[test]
    fn trace_reads_snrs_only_from_one_byte_header_hops() {
        // CoreScope's fixture, transmission 363, as CoreScope decodes it today.
        let s = json_of("26010FBA74E45D000000000027");
        assert_eq!(
            s.decoded_json,
            r#"{"type":"TRACE","pathData":"27","snrValues":[3.75],"tag":1575253178,"traceFlags":0}"#
        );
        assert_eq!(s.channel_hash, None);
    }

    #[test]
    fn group_text_opens_with_the_public_key_and_checks_the_mac() {
        // A message on the public channel, encrypted here with its key.
        let plain = {
            let mut p = 1_774_805_359u32.to_le_bytes().to_vec();
            p.push(0);
            p.extend_from_slice(b"Bob: hi <there>");
            p.resize(32, 0);
            p
        };
        let cipher = aes::Aes128::new(GenericArray::from_slice(&PUBLIC_CHANNEL_KEY));
        let mut ct = plain.clone();
        for block in ct.chunks_exact_mut(16) {
            aes::cipher::BlockEncrypt::encrypt_block(&cipher, GenericArray::from_mut_slice(block));
        }
        let mut secret = [0u8; 32];
        secret[..16].copy_from_slice(&PUBLIC_CHANNEL_KEY);
        let mut h = <Hmac<Sha256> as Mac>::new_from_slice(&secret).unwrap();
        h.update(&ct);
        let mac = h.finalize().into_bytes();
        let channel = Sha256::digest(PUBLIC_CHANNEL_KEY)[0];
        let mut payload = vec![channel, mac[0], mac[1]];
        payload.extend_from_slice(&ct);
        let raw = encode(1, 5, 0, None, 1, &[], &payload);
        let p = decode(&raw).unwrap();
        let s = stored(&p, &[ChannelKey::hashtag("#other"), ChannelKey::public()]);
        assert_eq!(
            s.decoded_json,
            r#"{"type":"CHAN","channelHash":17,"channelHashHex":"11","decryptionStatus":"decrypted","channel":"Public","text":"Bob: hi \u003cthere\u003e","sender":"Bob","sender_timestamp":1774805359}"#
        );
        assert_eq!(s.channel_hash.as_deref(), Some("Public"));
        // A wrong MAC opens nothing: nothing decrypted is shown.
        payload[1] ^= 1;
        let raw = encode(1, 5, 0, None, 1, &[], &payload);
        let s = stored(&decode(&raw).unwrap(), &[ChannelKey::public()]);
        assert!(s
            .decoded_json
            .contains(r#""decryptionStatus":"decryption_failed""#));
        assert!(!s.decoded_json.contains("Bob"));
        assert_eq!(s.channel_hash.as_deref(), Some("enc_11"));
    }

    #[test]
    fn senders_split_as_corescope_splits_them() {
        assert_eq!(split_sender("Bob: hi"), ("Bob", "hi"));
        assert_eq!(split_sender("a:b: c"), ("", "a:b: c"));
        assert_eq!(split_sender("[x]: y"), ("", "[x]: y"));
        assert_eq!(split_sender(": y"), ("", ": y"));
        let long = format!("{}: y", "n".repeat(50));
        assert_eq!(split_sender(&long), ("", long.as_str()));
    }
}
