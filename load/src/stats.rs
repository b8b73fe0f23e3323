//! Latency percentiles (exact, from all samples) and the report.

use std::time::Duration;

use serde_json::{Map, Value, json};

#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// p50, p90, p99 and max, in milliseconds.
    pub fn summary(&mut self) -> Value {
        self.0.sort_unstable();
        let at = |q: f64| {
            if self.0.is_empty() {
                return 0.0;
            }
            let i = ((self.0.len() as f64 * q).ceil() as usize).clamp(1, self.0.len()) - 1;
            (self.0[i].as_secs_f64() * 1000.0 * 100.0).round() / 100.0
        };
        json!({"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "max_ms": at(1.0), "samples": self.0.len()})
    }
}

/// A duration for the report: seconds, to the hundredth.
pub fn seconds(d: Duration) -> Value {
    json!((d.as_secs_f64() * 100.0).round() / 100.0)
}

/// Prints a report as an aligned table, or as one JSON object.
pub fn print(scenario: &str, report: Map<String, Value>, as_json: bool) {
    if as_json {
        let mut all = Map::new();
        all.insert("scenario".into(), json!(scenario));
        all.extend(report);
        println!("{}", Value::Object(all));
        return;
    }
    println!("scenario: {scenario}");
    for (key, value) in report {
        match value {
            Value::Object(inner) => {
                let parts: Vec<String> = inner.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("  {key:<28} {}", parts.join("  "));
            }
            other => println!("  {key:<28} {other}"),
        }
    }
}
