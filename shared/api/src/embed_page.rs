//! The embeddable dashboard page: self-contained HTML with one server-rendered SVG bar chart
//! per series (no external scripts, fonts or styles), and one small inline script that tells
//! the embedding page, by `postMessage` to its origin only, that the dashboard rendered, its
//! height (to size the iframe) and the numbers the charts show.

use herald_domain::analytics::dashboard::{DashboardData, Series};
use std::fmt::Write;

/// Text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const BAR_H: u32 = 22;
const GAP: u32 = 6;
const LABEL_W: u32 = 110;
const CHART_W: u32 = 520;
const COLORS: [&str; 3] = ["#2563eb", "#16a34a", "#d97706"];

fn chart(series: &Series, color: &str) -> String {
    let max = series
        .points
        .iter()
        .map(|p| p.value)
        .max()
        .unwrap_or(0)
        .max(1);
    let height = (BAR_H + GAP) * series.points.len() as u32 + GAP;
    let room = CHART_W - LABEL_W - 50;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure class="chart" data-series="{id}"><figcaption>{title}</figcaption><svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" width="{CHART_W}" height="{height}" viewBox="0 0 {CHART_W} {height}">"#,
        id = escape(series.id),
        title = escape(series.title),
    );
    for (i, p) in series.points.iter().enumerate() {
        let y = GAP + i as u32 * (BAR_H + GAP);
        let w = if p.value == 0 {
            0
        } else {
            ((p.value as f64 / max as f64) * f64::from(room))
                .round()
                .max(2.0) as u32
        };
        let _ = write!(
            svg,
            r#"<g class="bar" data-label="{label}" data-value="{value}"><text x="{tx}" y="{ty}" text-anchor="end">{label}</text><rect x="{LABEL_W}" y="{y}" width="{w}" height="{BAR_H}" rx="3" fill="{color}"></rect><text x="{vx}" y="{ty}">{value}</text></g>"#,
            label = escape(&p.label),
            value = p.value,
            tx = LABEL_W - 8,
            ty = y + BAR_H / 2 + 5,
            vx = LABEL_W + w + 6,
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// The page. `nonce` allows the inline style and script (the CSP allows nothing else);
/// `parent` is the verified embedding origin the script may post to.
pub fn render(data: &DashboardData, tenant_name: &str, nonce: &str, parent: &str) -> String {
    let charts: String = data
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| chart(s, COLORS[i % COLORS.len()]))
        .collect();
    // JSON inside a script: `<` escaped so no value can close the element.
    let parent_json = serde_json::to_string(parent)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c");
    let dashboard_json = serde_json::to_string(&data.dashboard)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c");
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · Herald</title>
<style nonce="{nonce}">
body{{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#111827;background:#fff}}
h1{{font-size:18px;margin:0 0 4px}} .meta{{color:#6b7280;margin:0 0 12px}}
.totals{{display:flex;gap:12px;margin:0 0 12px}} .totals div{{background:#f3f4f6;border-radius:6px;padding:8px 12px}}
.totals b{{display:block;font-size:20px}} .chart{{margin:0 0 16px}} figcaption{{font-weight:600;margin:0 0 4px}}
svg text{{font-size:12px;fill:#374151}}
</style></head>
<body>
<h1>{name}</h1>
<p class="meta">Dashboard <span id="dashboard">{dashboard}</span> · generated {generated}</p>
<div class="totals"><div><b id="total-posts">{posts}</b>posts</div><div><b id="total-published">{published}</b>published</div></div>
{charts}
<script nonce="{nonce}">
(function () {{
  var parent_origin = {parent_json};
  var series = Array.prototype.map.call(document.querySelectorAll("[data-series]"), function (f) {{
    return {{ id: f.getAttribute("data-series"),
      points: Array.prototype.map.call(f.querySelectorAll(".bar"), function (b) {{
        return [b.getAttribute("data-label"), Number(b.getAttribute("data-value"))];
      }}) }};
  }});
  if (parent_origin && window.parent !== window) {{
    window.parent.postMessage({{ type: "herald:embed-ready", dashboard: {dashboard_json},
      height: document.documentElement.scrollHeight, series: series }}, parent_origin);
  }}
}})();
</script>
</body></html>
"#,
        name = escape(tenant_name),
        dashboard = escape(&data.dashboard),
        generated = escape(
            &data
                .generated_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ),
        posts = data.posts,
        published = data.published,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_domain::analytics::dashboard::Point;

    #[test]
    fn the_page_escapes_names_and_draws_one_bar_per_point() {
        let data = DashboardData {
            tenant_id: "t".into(),
            dashboard: "overview".into(),
            generated_at: time::macros::datetime!(2026-03-01 12:00 UTC),
            posts: 3,
            published: 2,
            series: vec![Series {
                id: "published_by_platform",
                title: "Published",
                points: vec![
                    Point {
                        label: "x".into(),
                        value: 2,
                    },
                    Point {
                        label: "<b>".into(),
                        value: 0,
                    },
                ],
            }],
        };
        let html = render(&data, "Acme <script>", "n0nce", "https://shop.example");
        assert!(html.contains("Acme &lt;script&gt;"));
        assert!(!html.contains("<b>"));
        assert_eq!(html.matches(r#"class="bar""#).count(), 2);
        assert!(html.contains(r#"data-label="x" data-value="2""#));
        assert!(html.contains(r#"<script nonce="n0nce">"#));
        assert!(html.contains(r#""https://shop.example""#));
    }
}
