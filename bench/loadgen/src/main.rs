//! `loadgen`: the load generator of the chatbot's benchmarks (issue 18).
//!
//! wrk measures one request shape at a time and reports percentiles from a histogram;
//! the workload benchmark needs a mix of request types made as many users, exact
//! percentiles per type, and a count of the acknowledged writes, and the streaming
//! benchmark needs thousands of event streams open at once with every delta
//! timestamped. Python cannot drive that on the same two cores as the server without
//! becoming the bottleneck, so this is a small Rust client on awc (the HTTP client the
//! server's tests already build): one single-threaded actix runtime per thread, and one
//! keep-alive TCP connection per simulated connection.
//!
//! ```text
//! loadgen seed    --url URL --out users.json [--users 1000] [--conversations 20]
//!                 [--messages 20] [--concurrency 32] [--prefix u]
//! loadgen mix     --url URL --users users.json [--connections 32] [--duration 30]
//!                 [--mix list=60,page=20,post=15,rename=5] [--flask] [--same-user]
//!                 [--threads 1]
//! loadgen count   --url URL --users users.json [--concurrency 32]
//! loadgen streams --url URL [--n 1000] [--users N/10] [--delay-ms 20] [--words 100]
//!                 [--pid SERVER_PID] [--clk-tck 100] [--prefix s] [--out result.json]
//!                 [--arrivals deltas.txt]
//! ```
//!
//! Every subcommand also takes `--timeout SECONDS`, how long a response's head may take
//! (30 for `mix`, more for the others). Each prints its result as JSON on stdout (and
//! `--out` writes it too, for `streams`); progress goes to stderr. See each module for
//! what it measures and how.

mod api;
mod args;
mod count;
mod mix;
mod seed;
mod stats;
mod streams;

use std::process::ExitCode;

/// Errors end the run with a message: this is a benchmark tool, nothing recovers.
type Error = Box<dyn std::error::Error>;
type Result<T> = std::result::Result<T, Error>;

const USAGE: &str = "usage: loadgen seed|mix|count|streams --url URL [options] \
    (see the doc comment of bench/loadgen/src/main.rs)";

fn main() -> ExitCode {
    match run() {
        Ok(result) => {
            println!("{result:#}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<serde_json::Value> {
    let args = args::Args::from_env()?;
    match args.command() {
        "seed" => seed::run(args),
        "mix" => mix::run(args),
        "count" => count::run(args),
        "streams" => streams::run(args),
        "help" | "--help" | "-h" => Err(USAGE.into()),
        other => Err(format!("unknown command `{other}`; {USAGE}").into()),
    }
}

/// Runs `future` to completion on a new single-threaded actix runtime (a `System`):
/// awc's client is tied to the thread that made it.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix_rt::System::new().block_on(future)
}

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &str, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").map_err(|error| format!("writing {path}: {error}").into())
}

/// Reads the users file `seed` wrote.
fn read_users(path: &str) -> Result<Vec<seed::User>> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("reading {path}: {error}"))?;
    let users: Vec<seed::User> =
        serde_json::from_str(&text).map_err(|error| format!("{path}: {error}"))?;
    if users.is_empty() {
        return Err(format!("{path} lists no users").into());
    }
    Ok(users)
}
