//! Which node a hop of a path names. A hop is the first 1, 2 or 3 bytes of
//! the public key of a node that relayed the packet, so several nodes may
//! match it; the rule below chooses with what is known and says how sure it
//! is ([`HopConfidence`]). `docs/mesh.md` states it for operators.
//!
//! 1. The candidates are the nodes whose key starts with the hop (the hop
//!    size is how much of the key is known: a 1-byte hop has 256 values, a
//!    2-byte one 65,536). None: `unknown`; one: `unique`.
//! 2. With several, the sender and the observer are dropped (neither relays
//!    its own packet to itself), then only repeaters are kept when any is
//!    among them (companions and room servers do not relay floods); one
//!    left: `role`.
//! 3. Hops left with one candidate are taken first; then, from the sender's
//!    end, each remaining hop takes the candidate nearest (great-circle
//!    distance, summed) to its located neighbours: the hop before (the
//!    sender for the first hop) and the hop after (the observer for the
//!    last): `nearest`. A chosen hop is a neighbour for the next.
//! 4. With no located neighbour or no located candidate: the candidate
//!    heard most recently (`recent`).

use shared::api::{HopConfidence, HopNode, ResolvedHop};

/// A node as the resolver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub node: HopNode,
    /// Its last advert (stored text; compared as text, one shape per file).
    pub last_seen: String,
}

impl NodeInfo {
    fn location(&self) -> Option<(f64, f64)> {
        self.node.location()
    }

    fn relays(&self) -> bool {
        self.node.role.as_deref() == Some("repeater")
    }
}

/// Great-circle distance in km.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let dp = p2 - p1;
    let dl = (b.1 - a.1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    6371.0 * 2.0 * h.sqrt().min(1.0).asin()
}

/// A hop as hex bytes (1-3 of them), uppercase; `None` for anything else.
pub fn hop_text(hop: &str) -> Option<String> {
    let h = hop.trim();
    (matches!(h.len(), 2 | 4 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| h.to_ascii_uppercase())
}

/// Resolves `hops` (sender's end first). `candidates(prefix)` lists the
/// nodes whose key starts with the lowercase `prefix`; `sender` and
/// `observer` are the packet's ends when known.
pub fn resolve<'a>(
    hops: &[String],
    candidates: impl Fn(&str) -> Vec<&'a NodeInfo>,
    sender: Option<&NodeInfo>,
    observer: Option<&NodeInfo>,
) -> Vec<ResolvedHop> {
    let ends: Vec<&str> = [sender, observer]
        .into_iter()
        .flatten()
        .map(|n| n.node.public_key.as_str())
        .collect();
    // Rules 1 and 2.
    let pools: Vec<(u32, Vec<&NodeInfo>)> = hops
        .iter()
        .map(|hop| {
            let Some(h) = hop_text(hop) else {
                return (0, Vec::new());
            };
            let all = candidates(&h.to_ascii_lowercase());
            let n = all.len() as u32;
            if all.len() <= 1 {
                return (n, all);
            }
            let others: Vec<&NodeInfo> = all
                .iter()
                .copied()
                .filter(|c| !ends.contains(&c.node.public_key.as_str()))
                .collect();
            let pool = if others.is_empty() { all } else { others };
            let relays: Vec<&NodeInfo> = pool.iter().copied().filter(|c| c.relays()).collect();
            (n, if relays.is_empty() { pool } else { relays })
        })
        .collect();
    let mut chosen: Vec<Option<(&NodeInfo, HopConfidence)>> = pools
        .iter()
        .map(|(n, pool)| match pool.len() {
            1 if *n == 1 => Some((pool[0], HopConfidence::Unique)),
            1 => Some((pool[0], HopConfidence::Role)),
            _ => None,
        })
        .collect();
    // Rules 3 and 4.
    for i in 0..hops.len() {
        let pool = &pools[i].1;
        if chosen[i].is_some() || pool.is_empty() {
            continue;
        }
        let before = if i == 0 {
            sender
        } else {
            chosen[i - 1].map(|c| c.0)
        };
        let after = if i + 1 == hops.len() {
            observer
        } else {
            chosen[i + 1].map(|c| c.0)
        };
        let anchors: Vec<(f64, f64)> = [before, after]
            .into_iter()
            .flatten()
            .filter_map(NodeInfo::location)
            .collect();
        let nearest = (!anchors.is_empty())
            .then(|| {
                pool.iter()
                    .filter_map(|c| {
                        let at = c.location()?;
                        let d: f64 = anchors.iter().map(|a| distance_km(at, *a)).sum();
                        Some((d, *c))
                    })
                    .min_by(|a, b| {
                        a.0.total_cmp(&b.0)
                            .then_with(|| b.1.last_seen.cmp(&a.1.last_seen))
                    })
                    .map(|(_, c)| c)
            })
            .flatten();
        chosen[i] = Some(match nearest {
            Some(c) => (c, HopConfidence::Nearest),
            None => {
                let recent = pool
                    .iter()
                    .copied()
                    .max_by(|a, b| {
                        a.last_seen
                            .cmp(&b.last_seen)
                            .then_with(|| b.node.public_key.cmp(&a.node.public_key))
                    })
                    .unwrap_or(pool[0]);
                (recent, HopConfidence::Recent)
            }
        });
    }
    hops.iter()
        .zip(pools.iter().zip(chosen))
        .map(|(hop, ((n, _), c))| ResolvedHop {
            hop: hop.trim().to_ascii_uppercase(),
            node: c.map(|(info, _)| info.node.clone()),
            candidates: *n,
            confidence: c.map_or(HopConfidence::Unknown, |(_, conf)| conf),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: &str, role: &str, at: Option<(f64, f64)>, seen: &str) -> NodeInfo {
        NodeInfo {
            node: HopNode {
                public_key: key.to_string(),
                name: Some(format!("n-{}", &key[..6])),
                role: Some(role.to_string()),
                lat: at.map(|a| a.0),
                lon: at.map(|a| a.1),
            },
            last_seen: seen.to_string(),
        }
    }

    fn key(prefix: &str) -> String {
        format!("{prefix}{}", "0".repeat(64 - prefix.len()))
    }

    fn run(
        nodes: &[NodeInfo],
        hops: &[&str],
        s: Option<&NodeInfo>,
        o: Option<&NodeInfo>,
    ) -> Vec<ResolvedHop> {
        let hops: Vec<String> = hops.iter().map(|h| h.to_string()).collect();
        resolve(
            &hops,
            |p| {
                nodes
                    .iter()
                    .filter(|n| n.node.public_key.starts_with(p))
                    .collect()
            },
            s,
            o,
        )
    }

    #[test]
    fn distance_is_great_circle() {
        // San Francisco to San Jose: about 68 km.
        let d = distance_km((37.7749, -122.4194), (37.3382, -121.8863));
        assert!((d - 67.8).abs() < 1.0, "{d}");
    }

    #[test]
    fn unique_unknown_and_malformed_hops() {
        let nodes = [node(&key("a1b2"), "repeater", None, "2026-01-01")];
        let r = run(&nodes, &["A1", "ff", "zz", "a1b2c"], None, None);
        assert_eq!(r[0].confidence, HopConfidence::Unique);
        assert_eq!(r[0].node.as_ref().unwrap().public_key, key("a1b2"));
        assert_eq!(r[1].confidence, HopConfidence::Unknown);
        assert_eq!(
            (r[2].candidates, r[2].confidence),
            (0, HopConfidence::Unknown)
        );
        assert_eq!(r[3].confidence, HopConfidence::Unknown);
    }

    #[test]
    fn a_collision_takes_the_candidate_near_its_neighbours() {
        // Two repeaters share the hop 7C: one in San Jose, one in Sacramento.
        // The hops beside it are in the South Bay, so San Jose is chosen,
        // though Sacramento's advert is newer.
        let sj = node(
            &key("7c01"),
            "repeater",
            Some((37.33, -121.89)),
            "2026-01-01",
        );
        let sac = node(
            &key("7c02"),
            "repeater",
            Some((38.58, -121.49)),
            "2026-06-01",
        );
        let before = node(
            &key("1111"),
            "repeater",
            Some((37.40, -121.95)),
            "2026-01-01",
        );
        let after = node(
            &key("2222"),
            "repeater",
            Some((37.25, -121.80)),
            "2026-01-01",
        );
        let nodes = [sj.clone(), sac.clone(), before, after];
        let r = run(&nodes, &["11", "7C", "22"], None, None);
        assert_eq!(r[1].candidates, 2);
        assert_eq!(r[1].confidence, HopConfidence::Nearest);
        assert_eq!(r[1].node.as_ref().unwrap().public_key, sj.node.public_key);
        // Seen from the other side: neighbours near Sacramento pick it.
        let b2 = node(
            &key("3333"),
            "repeater",
            Some((38.60, -121.50)),
            "2026-01-01",
        );
        let nodes = [sj, sac.clone(), b2];
        let r = run(&nodes, &["33", "7C"], None, None);
        assert_eq!(r[1].node.as_ref().unwrap().public_key, sac.node.public_key);
    }

    #[test]
    fn the_ends_anchor_the_first_and_last_hops() {
        let near = node(
            &key("5a01"),
            "repeater",
            Some((37.80, -122.27)),
            "2026-01-01",
        );
        let far = node(
            &key("5a02"),
            "repeater",
            Some((34.05, -118.24)),
            "2026-09-01",
        );
        let sender = node(
            &key("beef"),
            "companion",
            Some((37.81, -122.26)),
            "2026-01-01",
        );
        let observer = node(
            &key("cafe"),
            "repeater",
            Some((34.00, -118.20)),
            "2026-01-01",
        );
        let nodes = [near.clone(), far.clone()];
        let r = run(&nodes, &["5A"], Some(&sender), None);
        assert_eq!(r[0].node.as_ref().unwrap().public_key, near.node.public_key);
        let r = run(&nodes, &["5A"], None, Some(&observer));
        assert_eq!(r[0].node.as_ref().unwrap().public_key, far.node.public_key);
    }

    #[test]
    fn role_then_recency_when_nothing_is_located() {
        let companion = node(&key("9901"), "companion", None, "2026-09-01");
        let old = node(&key("9902"), "repeater", None, "2026-01-01");
        let new = node(&key("9903"), "repeater", None, "2026-05-01");
        let nodes = [companion.clone(), old.clone()];
        // The only repeater is taken: chosen by role among two.
        let r = run(&nodes, &["99"], None, None);
        assert_eq!(r[0].node.as_ref().unwrap().public_key, old.node.public_key);
        assert_eq!((r[0].candidates, r[0].confidence), (2, HopConfidence::Role));
        let nodes = [companion, old, new.clone()];
        let r = run(&nodes, &["99"], None, None);
        assert_eq!(r[0].node.as_ref().unwrap().public_key, new.node.public_key);
        assert_eq!(r[0].confidence, HopConfidence::Recent);
    }

    #[test]
    fn the_sender_is_not_its_own_relay() {
        let sender = node(&key("4401"), "repeater", None, "2026-09-01");
        let other = node(&key("4402"), "repeater", None, "2026-01-01");
        let nodes = [sender.clone(), other.clone()];
        let r = run(&nodes, &["44"], Some(&sender), None);
        assert_eq!(
            r[0].node.as_ref().unwrap().public_key,
            other.node.public_key
        );
    }
}
