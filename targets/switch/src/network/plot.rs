//! A plain-SVG bar chart of the traffic per tier of a simulation (bytes and entries per tier,
//! from the mappers' uplinks to the reducer's), for `naasc simulate --plot`.

use super::{counted, Report};

/// Draws bytes per tier as bars (log scale when tiers differ by more than 100x), with entries
/// and packets as labels. Returns the SVG document.
pub fn plot_svg(report: &Report) -> String {
    let (width, height, left, bottom, top) = (720.0, 420.0, 90.0, 90.0, 60.0);
    let tiers = &report.tiers;
    let max = tiers.iter().map(|t| t.bytes).max().unwrap_or(1).max(1) as f64;
    let min = tiers.iter().map(|t| t.bytes).filter(|b| *b > 0).min().unwrap_or(1).max(1) as f64;
    let log = max / min > 100.0;
    let scale = |bytes: u64| -> f64 {
        let plot = height - bottom - top;
        if bytes == 0 {
            0.0
        } else if log {
            plot * ((bytes as f64).log10() + 1.0) / (max.log10() + 1.0)
        } else {
            plot * bytes as f64 / max
        }
    };
    let slot = (width - left - 20.0) / tiers.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    svg.push_str(&format!("<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n"));
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">{}: bytes per tier on {} ({}, {})</text>\n",
        width / 2.0,
        escape(&report.aggregate),
        escape(&report.topology),
        counted(report.records_in, "record", "records"),
        counted(report.keys, "key", "keys")
    ));
    svg.push_str(&format!(
        "<text x=\"18\" y=\"{}\" transform=\"rotate(-90 18 {})\" text-anchor=\"middle\">bytes{}</text>\n",
        height / 2.0,
        height / 2.0,
        if log { " (log scale)" } else { "" }
    ));
    let base = height - bottom;
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{base}\" stroke=\"black\"/>\n",
        width - 20.0
    ));
    for (i, tier) in tiers.iter().enumerate() {
        let h = scale(tier.bytes);
        let x = left + slot * i as f64 + slot * 0.15;
        let w = slot * 0.7;
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"#4a7ab7\"><title>{}, {}, {}</title></rect>\n",
            base - h,
            counted(tier.bytes, "byte", "bytes"),
            counted(tier.packets, "packet", "packets"),
            counted(tier.entries, "entry", "entries")
        ));
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            x + w / 2.0,
            base - h - 6.0,
            tier.bytes
        ));
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
            x + w / 2.0,
            base + 18.0,
            escape(&tier.name),
            x + w / 2.0,
            base + 34.0,
            counted(tier.entries, "entry", "entries")
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">reducer receives {} (ideal {}), reduction {:.1}x; result matches reference: {}</text>\n",
        width / 2.0,
        height - 20.0,
        counted(report.entries_at_reducer, "entry", "entries"),
        report.ideal_entries_at_reducer,
        report.traffic_reduction,
        report.result_matches_reference
    ));
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
