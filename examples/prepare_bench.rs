//! What the request task's part of intake costs: `pipeline::job` (parse, normalize,
//! validate, dedupe keys, score, the CEL route's plan and the webhook payload) on the
//! benchmark's lead with the example config, no I/O. For profiling the CPU side of the
//! write path on its own, e.g. with callgrind (instructions, repeatable on a busy machine):
//!
//! ```sh
//! cargo run --release --example prepare_bench -- 100000
//! valgrind --tool=callgrind target/release/examples/prepare_bench 3000
//! ```
//! (Run from the repository root: it reads `config/`. The phone library builds its
//! metadata on first use; compare two counts, e.g. 3000 and 6000, to leave that out.)

use std::time::Instant;

use leadgate::config::Config;
use leadgate::parse::Format;
use leadgate::submission::{Submission, channel, new_id};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(std::path::Path::new("config"))?;
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let started = Instant::now();
    for i in 0..n {
        let body = format!(
            "{{\"first_name\":\"Bench\",\"last_name\":\"Mark\",\"email\":\"bench{i}@example.com\",\"phone\":\"(415) {:03}-{:04}\",\"zip\":\"94107\",\"state\":\"CA\"}}",
            200 + (i / 10_000) % 700,
            i % 10_000
        );
        let submission = Submission {
            id: new_id(),
            source: "example".into(),
            channel: channel::HTTP,
            format: Format::Json,
            content_type: Some("application/json".into()),
            meta: serde_json::json!({"peer": "127.0.0.1:5555"}),
            body: body.into_bytes(),
            received_at: 1_765_000_000_000,
            idempotency_key: None,
        };
        std::hint::black_box(leadgate::pipeline::job(&config, submission, false));
    }
    let took = started.elapsed();
    println!("{n} submissions prepared in {took:.2?}: {:.1} µs each", took.as_secs_f64() * 1e6 / n as f64);
    Ok(())
}
