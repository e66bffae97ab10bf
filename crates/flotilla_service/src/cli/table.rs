//! Plain-text tables that fit the terminal: wide columns are shortened with `…`.

use serde_json::Value;

/// Gap between columns.
const GAP: usize = 2;
/// A column is never shortened below this many characters (or its natural width).
const MIN_COLUMN: usize = 6;

/// A table of text cells.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    keep: Vec<bool>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        let headers: Vec<String> = headers.into_iter().map(Into::into).collect();
        Table {
            keep: vec![false; headers.len()],
            headers,
            rows: Vec::new(),
        }
    }

    /// Shortens this column only when shortening every other one was not enough: ids must
    /// stay whole to be copied into the next command.
    pub fn keep(mut self, header: &str) -> Table {
        if let Some(i) = self.headers.iter().position(|h| h == header) {
            self.keep[i] = true;
        }
        self
    }

    /// Adds a row (missing cells are empty; extra cells are dropped).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(|c| clean(&c.into())).collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// A table of JSON objects: the given columns, or every key of the first object.
    pub fn from_items(items: &[Value], columns: Option<&[&str]>) -> Table {
        let columns: Vec<String> = match columns {
            Some(c) => c.iter().map(|s| s.to_string()).collect(),
            None => items
                .first()
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
        };
        let mut table = Table::new(columns.clone());
        for item in items {
            table.row(columns.iter().map(|c| cell(pointer(item, c))));
        }
        table
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the table within `width` characters per line.
    pub fn render(&self, width: usize) -> String {
        let n = self.headers.len();
        if n == 0 {
            return String::new();
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let budget = width.saturating_sub(GAP * (n - 1));
        // Shrink the widest column one character at a time: narrow columns (states, counts)
        // stay whole and long free text (names, messages) gives way first; kept columns (ids)
        // only once everything else is down to its minimum.
        for include_kept in [false, true] {
            while widths.iter().sum::<usize>() > budget {
                let widest = widths
                    .iter()
                    .copied()
                    .enumerate()
                    .filter(|(i, w)| (include_kept || !self.keep[*i]) && *w > MIN_COLUMN)
                    .max_by_key(|(_, w)| *w);
                let Some((i, w)) = widest else { break };
                widths[i] = w - 1;
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str(&" ".repeat(GAP));
                }
                let text = truncate(c, *w);
                let pad = w - text.chars().count();
                line.push_str(&text);
                line.push_str(&" ".repeat(pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Shortens `s` to at most `width` characters, ending with `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Control characters (a newline in a message) would break the layout.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `a.b` looks up nested fields (`credential.fingerprint`, `progress.done`).
fn pointer<'a>(item: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(item, |v, key| v.get(key).unwrap_or(&Value::Null))
}

/// One JSON value as a cell: strings as-is, lists of scalars comma-joined, objects as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

/// The width to fit tables to: the terminal's, else `COLUMNS`, else 120.
pub fn terminal_width() -> usize {
    if let Some((_, cols)) = console::Term::stdout().size_checked() {
        return usize::from(cols).max(20);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|c| *c >= 20)
        .unwrap_or(120)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wide_columns_are_truncated_to_fit() {
        let mut t = Table::new(["id", "name", "state"]);
        t.row(["1", &"x".repeat(100), "succeeded"]);
        t.row(["2", "short", "failed"]);
        let out = t.render(40);
        for line in out.lines() {
            assert!(line.chars().count() <= 40, "{line:?}");
        }
        assert!(out.contains('…'));
        assert!(
            out.contains("succeeded"),
            "narrow columns stay whole: {out}"
        );
        assert!(out.lines().nth(2).unwrap().contains("short"));
    }

    #[test]
    fn kept_columns_give_way_last() {
        let id = "01a24211-8e60-70c7-97ed-f0b27bb5aa11";
        let mut t = Table::new(["ID", "NAME"]).keep("ID");
        t.row([id, &"n".repeat(50)]);
        let out = t.render(60);
        assert!(out.contains(id), "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= 60), "{out}");
        let out = t.render(30);
        assert!(
            out.lines().all(|l| l.chars().count() <= 30),
            "the width wins in the end: {out}"
        );
    }

    #[test]
    fn narrow_tables_are_left_alone() {
        let mut t = Table::new(["a", "b"]);
        t.row(["x", "line\nbreak"]);
        assert_eq!(t.render(80), "a  b\nx  line break\n");
    }

    #[test]
    fn items_become_rows_with_nested_and_list_cells() {
        let items = vec![
            json!({"id": "w1", "labels": ["east", "vip"], "credential": {"fingerprint": "sha256:ab"}, "n": 3}),
        ];
        let t = Table::from_items(
            &items,
            Some(&["id", "labels", "credential.fingerprint", "n", "missing"]),
        );
        let out = t.render(200);
        assert!(out.contains("w1  east,vip  sha256:ab"), "{out}");
        assert!(out.lines().nth(1).unwrap().trim_end().ends_with('3'));
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
