//! What the admin verbs print: aligned tables, times, sizes and bytes for
//! people; the API's JSON, pretty-printed, for `--json`.

use serde_json::Value;
use wactor_api::wire::BytesView;

/// A table printed with aligned columns, two spaces apart.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty). Control characters (a
    /// terminal's escape sequences, newlines) in cells come from names and
    /// texts other programs wrote: each is printed as `?`.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|cell| printable(&cell)).collect());
    }

    /// The table as text, one line per row, ending with a newline.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut out = String::new();
        let lines = std::iter::once(&self.headers).chain(self.rows.iter());
        for line in lines {
            let mut text = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = line.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == columns {
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(w - width(cell) + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table on stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// `text` with every control character replaced by `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Prints a JSON value, pretty, on stdout.
pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(_) => println!("{value}"),
    }
}

/// A time (ms since the epoch) as RFC 3339 UTC, to the second.
pub fn time(ms: i64) -> String {
    wactor_api::time::format_ms(ms.saturating_sub(ms.rem_euclid(1000))).replacen('T', " ", 1)
}

/// An optional time, or `-`.
pub fn maybe_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_string(), time)
}

/// A size in bytes, readable: `812 B`, `1.2 KiB`, `3.4 MiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Bytes on one line: the text, or `base64:...`; `-` for none.
pub fn bytes_arg(view: Option<&BytesView>) -> String {
    view.map_or_else(|| "-".to_string(), BytesView::to_arg)
}

/// Text cut to `max` characters (with `…`), on one line.
pub fn clip(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A payload for people: pretty JSON when it is JSON, the text otherwise,
/// or `base64:...` for binary.
pub fn payload(view: &BytesView) -> String {
    match view {
        BytesView::Text { text } => serde_json::from_str::<Value>(text)
            .ok()
            .filter(|v| v.is_object() || v.is_array())
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| text.clone()),
        BytesView::Base64 { .. } => view.to_arg(),
    }
}

/// `n thing` or `n things`.
pub fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["NAME", "VERSION", "STATE"]);
        table.row(vec![
            "payment-reversal".into(),
            "v12".into(),
            "running".into(),
        ]);
        table.row(vec!["echo".into(), "v1".into(), "paused".into()]);
        assert_eq!(
            table.render(),
            "NAME              VERSION  STATE\n\
             payment-reversal  v12      running\n\
             echo              v1       paused\n"
        );
    }

    #[test]
    fn cells_cannot_send_escape_sequences_to_the_terminal() {
        let mut table = Table::new(&["HOST"]);
        table.row(vec!["evil\u{1b}]0;pwned\u{7}\u{1b}[2J\nfake row".into()]);
        let text = table.render();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 2, "{text:?}");
        // Times at the ends of the range print without overflowing.
        let _ = time(i64::MIN);
        let _ = time(i64::MAX);
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(format_size(812), "812 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
        assert_eq!(time(1_714_564_800_250), "2024-05-01 12:00:00Z");
        assert_eq!(maybe_time(None), "-");
    }

    #[test]
    fn clipping_keeps_one_line() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("abcdefghijkl", 5), "abcd…");
    }

    #[test]
    fn json_payloads_are_pretty_printed() {
        let view = BytesView::Text {
            text: "{\"a\":1}".into(),
        };
        assert_eq!(payload(&view), "{\n  \"a\": 1\n}");
        let plain = BytesView::Text { text: "42".into() };
        assert_eq!(payload(&plain), "42");
    }
}
