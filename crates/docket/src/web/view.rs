//! Page rendering: the embedded minijinja templates (HTML auto-escaped), the filters they
//! use (times, sizes, Markdown), and the HTML response of a page.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use jiff::tz::TimeZone;
use minijinja::{Environment, Value as JValue};
use serde_json::Value;

use super::assets;

/// Every template, embedded at build time: (name, source).
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("tickets.html", include_str!("templates/tickets.html")),
    ("ticket.html", include_str!("templates/ticket.html")),
    ("new_ticket.html", include_str!("templates/new_ticket.html")),
    ("account.html", include_str!("templates/account.html")),
    ("admin.html", include_str!("templates/admin.html")),
    (
        "help_search.html",
        include_str!("templates/help_search.html"),
    ),
];

/// The compiled templates of the UI.
pub struct Views {
    env: Environment<'static>,
}

impl Views {
    /// Compiles every template; a broken template is a startup error, not a page error.
    pub fn new(tz: TimeZone) -> Result<Views, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let tz_ago = tz.clone();
        env.add_filter("markdown", |s: String| {
            JValue::from_safe_string(super::markdown::to_safe_html(&s))
        });
        env.add_filter("ago", move |secs: i64| {
            ago(secs, jiff::Timestamp::now().as_second())
        });
        env.add_filter("iso", |secs: i64| iso(secs));
        let tz_day = tz.clone();
        env.add_filter("day", move |secs: i64| day(secs, &tz_day));
        env.add_filter("localtime", move |secs: i64| local_time(secs, &tz_ago));
        env.add_filter("filesize", |n: u64| file_size(n));
        env.add_filter("qs", |s: String| {
            serde_urlencoded::to_string([("", s.as_str())])
                .unwrap_or_default()
                .trim_start_matches('=')
                .to_string()
        });
        env.add_global("asset_v", assets::version());
        Ok(Views { env })
    }

    /// Renders template `name` with `ctx` into a page response.
    pub fn page_with_status(&self, status: StatusCode, name: &str, ctx: &Value) -> Response {
        let rendered = self
            .env
            .get_template(name)
            .and_then(|t| t.render(JValue::from_serialize(ctx)));
        match rendered {
            Ok(html) => {
                let mut response = (status, Html(html)).into_response();
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            Err(e) => {
                tracing::error!(error = %e, template = name, "rendering a page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The page could not be rendered.",
                )
                    .into_response()
            }
        }
    }
}

/// "3 minutes ago", "in 2 days": a person's sense of a time relative to `now`.
pub fn ago(secs: i64, now: i64) -> String {
    if secs <= 0 {
        return String::new();
    }
    let delta = now - secs;
    let (future, d) = if delta < 0 {
        (true, -delta)
    } else {
        (false, delta)
    };
    let (n, unit) = match d {
        0..=44 => return "just now".to_string(),
        45..=89 => (1, "minute"),
        90..=3_299 => ((d + 30) / 60, "minute"),
        3_300..=5_399 => (1, "hour"),
        5_400..=79_199 => ((d + 1_800) / 3_600, "hour"),
        79_200..=129_599 => (1, "day"),
        129_600..=2_505_599 => ((d + 43_200) / 86_400, "day"),
        2_505_600..=31_535_999 => ((d + 1_296_000) / 2_592_000, "month"),
        _ => ((d + 15_768_000) / 31_536_000, "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if future {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

fn iso(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn day(secs: i64, tz: &TimeZone) -> String {
    if secs <= 0 {
        return String::new();
    }
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn local_time(secs: i64, tz: &TimeZone) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default()
}

fn file_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut size = n as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = 1_000_000_000;
        assert_eq!(ago(now - 10, now), "just now");
        assert_eq!(ago(now - 60, now), "1 minute ago");
        assert_eq!(ago(now - 600, now), "10 minutes ago");
        assert_eq!(ago(now - 7_200, now), "2 hours ago");
        assert_eq!(ago(now - 86_400, now), "1 day ago");
        assert_eq!(ago(now + 3 * 86_400, now), "in 3 days");
        assert_eq!(ago(now - 400 * 86_400, now), "1 year ago");
        assert_eq!(ago(0, now), "");
    }

    #[test]
    fn sizes() {
        assert_eq!(file_size(10), "10 B");
        assert_eq!(file_size(2048), "2.0 KB");
        assert_eq!(file_size(5 * 1024 * 1024), "5.0 MB");
    }

    #[test]
    fn every_template_compiles() {
        assert!(Views::new(TimeZone::UTC).is_ok());
    }
}
