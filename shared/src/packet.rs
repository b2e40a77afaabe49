//! MeshCore packet vocabulary: route and payload type codes and their names.

/// Route type, bits 0-1 of the header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    TransportFlood = 0,
    Flood = 1,
    Direct = 2,
    TransportDirect = 3,
}

impl RouteType {
    pub fn from_bits(bits: u8) -> RouteType {
        match bits & 0x03 {
            0 => RouteType::TransportFlood,
            1 => RouteType::Flood,
            2 => RouteType::Direct,
            _ => RouteType::TransportDirect,
        }
    }

    /// Transport routes carry four bytes of transport codes after the header.
    pub fn has_transport_codes(self) -> bool {
        matches!(self, RouteType::TransportFlood | RouteType::TransportDirect)
    }

    pub fn name(self) -> &'static str {
        match self {
            RouteType::TransportFlood => "TRANSPORT_FLOOD",
            RouteType::Flood => "FLOOD",
            RouteType::Direct => "DIRECT",
            RouteType::TransportDirect => "TRANSPORT_DIRECT",
        }
    }
}

/// Payload type codes (bits 2-5 of the header byte) and their names.
pub const PAYLOAD_TYPES: &[(u8, &str)] = &[
    (0, "REQ"),
    (1, "RESPONSE"),
    (2, "TXT_MSG"),
    (3, "ACK"),
    (4, "ADVERT"),
    (5, "GRP_TXT"),
    (6, "GRP_DATA"),
    (7, "ANON_REQ"),
    (8, "PATH"),
    (9, "TRACE"),
    (10, "MULTIPART"),
    (11, "CONTROL"),
    (15, "RAW_CUSTOM"),
];

pub const PAYLOAD_ADVERT: u8 = 4;
pub const PAYLOAD_TRACE: u8 = 9;

/// The name of a payload type code, or `UNKNOWN_<n>` for a code MeshCore does not define.
pub fn payload_type_name(code: u8) -> String {
    PAYLOAD_TYPES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| format!("UNKNOWN_{code}"))
}

/// The label of a stored `payload_type` column: its name, `UNKNOWN_<n>` for
/// a code MeshCore does not define, and `UNKNOWN` when the column is NULL or
/// out of range (the one rule for the API's counts and the dashboard's rows).
pub fn payload_label(stored: Option<i64>) -> String {
    match stored.and_then(|t| u8::try_from(t).ok()) {
        Some(code) => payload_type_name(code),
        None => "UNKNOWN".to_string(),
    }
}

/// The code of a payload type given by name (case-insensitive) or number.
pub fn parse_payload_type(s: &str) -> Option<u8> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u8>() {
        return (n <= 15).then_some(n);
    }
    PAYLOAD_TYPES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(s))
        .map(|(c, _)| *c)
}

/// The roles a node's ADVERT gives it that the node list can be narrowed
/// to (`nodes.role` also holds `none` and `type-N` for MeshCore's reserved
/// types).
pub const ROLES: [&str; 4] = ["companion", "repeater", "room", "sensor"];

/// The stored role of an ADVERT's node type (its flags' low nibble), as
/// CoreScope writes `nodes.role`.
pub fn role_name(node_type: u8) -> String {
    match node_type {
        0 => "none".into(),
        1..=4 => ROLES[usize::from(node_type) - 1].into(),
        n => format!("type-{n}"),
    }
}

/// A stored role as people say it (`room` is a room server).
pub fn role_label(role: Option<&str>) -> String {
    match role {
        Some("room") => "room server".into(),
        Some(r) => r.to_string(),
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_node_type() {
        let names: Vec<String> = (0..=5).map(role_name).collect();
        assert_eq!(
            names,
            ["none", "companion", "repeater", "room", "sensor", "type-5"]
        );
        assert_eq!(role_label(Some("room")), "room server");
        assert_eq!(role_label(None), "unknown");
    }

    #[test]
    fn payload_names_round_trip() {
        for (code, name) in PAYLOAD_TYPES {
            assert_eq!(payload_type_name(*code), *name);
            assert_eq!(parse_payload_type(name), Some(*code));
            assert_eq!(parse_payload_type(&name.to_lowercase()), Some(*code));
        }
        assert_eq!(payload_type_name(13), "UNKNOWN_13");
        assert_eq!(payload_label(Some(4)), "ADVERT");
        assert_eq!(payload_label(Some(13)), "UNKNOWN_13");
        assert_eq!(payload_label(None), "UNKNOWN");
        assert_eq!(payload_label(Some(-1)), "UNKNOWN");
        assert_eq!(parse_payload_type("4"), Some(4));
        assert_eq!(parse_payload_type("16"), None);
        assert_eq!(parse_payload_type("NOPE"), None);
    }

    #[test]
    fn route_bits() {
        assert_eq!(RouteType::from_bits(0b0101_0110), RouteType::Direct);
        assert!(RouteType::from_bits(0).has_transport_codes());
        assert!(RouteType::from_bits(3).has_transport_codes());
        assert!(!RouteType::from_bits(1).has_transport_codes());
    }
}
