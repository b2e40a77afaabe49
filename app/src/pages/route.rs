//! A sighting's path with names (each hop linked to its node, the choice
//! among several candidates visible) and its route drawn as SVG from the
//! located hops: no map library, so the packet page stays light.

use std::fmt::Write;

use shared::api::{HopConfidence, HopNode, PacketObservation, ResolvedHop};

use crate::components::table::esc;

/// The hops as names: `Name` links, with the hop and how it was chosen
/// when it was a choice, or the bare hop when no node is known.
pub(crate) fn named_path(hops: &[ResolvedHop]) -> String {
    if hops.is_empty() {
        return "direct (no hops)".into();
    }
    let mut out = String::from("<span class=\"hops\">");
    for (i, h) in hops.iter().enumerate() {
        if i > 0 {
            out.push_str(" → ");
        }
        match &h.node {
            Some(n) => {
                let name = n
                    .name
                    .clone()
                    .unwrap_or_else(|| n.public_key[..8].to_string());
                let _ = write!(
                    out,
                    "<a href=\"/nodes/{}\" data-nav class=\"hop hop-{}\" title=\"{}\">{}</a>",
                    esc(&n.public_key),
                    confidence_class(h.confidence),
                    esc(&shared::api::hop_note(h)),
                    esc(&name)
                );
                if h.confidence.is_choice() {
                    let _ = write!(
                        out,
                        "<sup class=\"ambiguous\">{} of {}</sup>",
                        esc(&h.hop),
                        h.candidates
                    );
                }
            }
            None => {
                let _ = write!(
                    out,
                    "<span class=\"hop hop-unknown mono\" title=\"no known node\">{}</span>",
                    esc(&h.hop)
                );
            }
        }
    }
    out.push_str("</span>");
    out
}

fn confidence_class(c: HopConfidence) -> &'static str {
    match c {
        HopConfidence::Unique => "unique",
        HopConfidence::Unknown => "unknown",
        _ => "chosen",
    }
}

/// The located points of a sighting's route: its hops, then the observer.
fn points(o: &PacketObservation) -> Vec<(f64, f64, String)> {
    let label = |n: &HopNode| {
        n.name
            .clone()
            .unwrap_or_else(|| n.public_key[..8].to_string())
    };
    o.resolved_path
        .iter()
        .filter_map(|h| h.node.as_ref())
        .chain(o.observer_node.as_ref())
        .filter_map(|n| n.location().map(|(lat, lon)| (lat, lon, label(n))))
        .collect()
}

/// The first sighting with a route of two located points or more (its
/// index), drawn.
pub(crate) fn route(observations: &[PacketObservation]) -> Option<(usize, String)> {
    let (i, pts) = observations
        .iter()
        .enumerate()
        .map(|(i, o)| (i, points(o)))
        .find(|(_, p)| p.len() >= 2)?;
    let (w, h, pad) = (640.0, 320.0, 24.0);
    let mid_lat = pts.iter().map(|p| p.0).sum::<f64>() / pts.len() as f64;
    let k = mid_lat.to_radians().cos().max(0.1);
    let xs: Vec<f64> = pts.iter().map(|p| p.1 * k).collect();
    let ys: Vec<f64> = pts.iter().map(|p| -p.0).collect();
    let (x0, x1) = bounds(&xs);
    let (y0, y1) = bounds(&ys);
    let span = (x1 - x0).max(y1 - y0).max(1e-6);
    let scale = ((w - 2.0 * pad) / span).min((h - 2.0 * pad) / span);
    let at = |j: usize| (pad + (xs[j] - x0) * scale, pad + (ys[j] - y0) * scale);
    let mut line = String::new();
    let mut marks = String::new();
    for (j, p) in pts.iter().enumerate() {
        let (x, y) = at(j);
        let _ = write!(line, "{x:.1},{y:.1} ");
        let last = j + 1 == pts.len();
        let _ = write!(
            marks,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" class=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            if last { "observer" } else { "relay" },
            x + 8.0,
            y - 6.0,
            esc(&p.2)
        );
    }
    Some((
        i,
        format!(
            "<figure class=\"route\"><svg id=\"route\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"Route of sighting {n}\"><polyline points=\"{line}\"/>{marks}</svg>\
         <figcaption>Sighting {n}: {count} located points, hops then the observer \
         (north up, not to a map's scale).</figcaption></figure>",
            n = i + 1,
            count = pts.len()
        ),
    ))
}

fn bounds(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}
