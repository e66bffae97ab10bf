//! `--watch`: follows `GET /v1/operations/{id}/events` (server-sent `progress` and `done`
//! events) with a live progress bar on stderr.

use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::client::{Api, CliError, CliResult};

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field (`message` when absent, as the SSE spec says).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// An incremental parser of a `text/event-stream` body (WHATWG HTML, "server-sent events").
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed. Chunks may split lines (and UTF-8
    /// characters) anywhere.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() || self.event.is_some() {
                    out.push(SseEvent {
                        event: self.event.take().unwrap_or_else(|| "message".into()),
                        data: std::mem::take(&mut self.data).join("\n"),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // a comment: axum's keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => self.data.push(value.to_string()),
                _ => {} // id, retry: not used by Flotilla
            }
        }
        out
    }
}

/// The progress bar's message: counts per state, rate and ETA from the server's figures.
pub fn progress_message(payload: &Value) -> String {
    let mut parts = vec![payload["status"].as_str().unwrap_or("?").to_string()];
    if let Some(counts) = payload["counts"].as_object() {
        for state in [
            "pending",
            "running",
            "succeeded",
            "failed",
            "skipped",
            "cancelled",
        ] {
            if let Some(n) = counts.get(state).and_then(Value::as_i64).filter(|n| *n > 0) {
                parts.push(format!("{state} {n}"));
            }
        }
    }
    let progress = &payload["progress"];
    if let Some(rate) = progress["rate_per_second"].as_f64() {
        parts.push(format!("{rate:.1}/s"));
    }
    if let Some(eta) = progress["eta_seconds"].as_f64() {
        parts.push(format!("ETA {}", human_secs(eta)));
    }
    parts.join(" · ")
}

fn human_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// How often a dropped event stream is reopened before giving up.
const RECONNECTS: u32 = 10;

/// Follows an operation until its `done` event; returns the final operation resource.
pub async fn follow(api: &Api, id: &str, quiet: bool) -> CliResult<Value> {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
            .map_err(|e| CliError::Other(e.into()))?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let path = format!("/v1/operations/{id}/events");
    let mut failures = 0u32;
    let result = loop {
        let outcome = stream_once(api, &path, &bar).await;
        match outcome {
            Ok(true) => break Ok(()),
            // The API refused (unknown operation, bad token): reconnecting cannot help.
            Err(err @ CliError::Api { .. }) => break Err(err),
            // The stream ended without `done` (a restart, a proxy timeout): the state lives in
            // the database, so reopening loses nothing.
            Ok(false) | Err(_) if failures < RECONNECTS => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500 * u64::from(failures.min(4)))).await;
            }
            Ok(false) => {
                break Err(CliError::Other(anyhow::anyhow!(
                    "the event stream kept closing before the operation finished"
                )));
            }
            Err(err) => break Err(err),
        }
    };
    bar.finish_and_clear();
    result?;
    api.get(&format!("/v1/operations/{id}")).await
}

/// Reads one connection of the stream; `Ok(true)` once `done` arrived.
async fn stream_once(api: &Api, path: &str, bar: &ProgressBar) -> CliResult<bool> {
    let resp = api.events(path).await?;
    let mut parser = SseParser::default();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CliError::Unreachable {
            url: api.url(path),
            reason: e.to_string(),
        })?;
        for event in parser.push(&chunk) {
            let Ok(payload) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            if let Some(total) = payload["progress"]["total"].as_u64() {
                bar.set_length(total);
            }
            if let Some(done) = payload["progress"]["done"].as_u64() {
                bar.set_position(done);
            }
            bar.set_message(progress_message(&payload));
            if event.event == "done" {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut p = SseParser::default();
        assert!(p.push(b": keep-alive\n\nevent: prog").is_empty());
        let got = p.push(b"ress\r\ndata: {\"a\":1}\r\n\r\nevent: done\ndata: x\ndata: y\n\n");
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: "progress".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: "done".into(),
                    data: "x\ny".into()
                },
            ]
        );
        // A multi-byte character split between chunks survives.
        let bytes = "data: é\n\n".as_bytes();
        assert!(p.push(&bytes[..7]).is_empty());
        assert_eq!(
            p.push(&bytes[7..]),
            vec![SseEvent {
                event: "message".into(),
                data: "é".into()
            }]
        );
    }

    #[test]
    fn the_message_shows_counts_rate_and_eta() {
        let payload = json!({
            "status": "running",
            "counts": {"pending": 5, "running": 2, "succeeded": 10, "failed": 0},
            "progress": {"done": 10, "total": 17, "rate_per_second": 4.5, "eta_seconds": 75.0},
        });
        assert_eq!(
            progress_message(&payload),
            "running · pending 5 · running 2 · succeeded 10 · 4.5/s · ETA 1m15s"
        );
    }
}
