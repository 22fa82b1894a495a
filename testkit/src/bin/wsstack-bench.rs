//! Control-plane benchmarks of the `wsstack` binary against moto behind the AWS-like proxy:
//! cold `up`, no-op `up`, `plan` and `down` at 0 ms and 60 ms of injected latency per call, with
//! the engine's default concurrency and with `WSSTACK_MAX_CONCURRENCY=1` (the sequential
//! baseline, measured in the same run); then `--help` and `status` start-up times and the handler
//! zip size. Prints Markdown tables on stdout.
//!
//! Usage: `wsstack-bench --wsstack PATH [--reps N] [--latencies 0,60] [--chains] [--compare PATH]
//! [--startup-only]` (scripts/bench builds both; `--chains` prints the calls of each command's
//! critical path on stderr; `--compare` adds a second binary, for instance another build profile,
//! to the start-up table, measured interleaved run by run with the first; `--startup-only` skips
//! the control-plane table).
//!
//! Critical path: the longest chain of calls in which each call starts after the previous one
//! ended, i.e. the number of round trips that had to happen one after another. A fully sequential
//! run has a critical path equal to its call count; perfect overlap would give 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use testkit::critical_path::describe;
use testkit::{critical_chain, Call, Moto, Proxy};

struct Options {
    wsstack: PathBuf,
    reps: usize,
    latencies: Vec<u64>,
    /// Print each measured command's critical chain on stderr.
    chains: bool,
    /// A second binary for the start-up table.
    compare: Option<PathBuf>,
    startup_only: bool,
}

fn options() -> Result<Options> {
    let mut wsstack = std::env::var_os("WSSTACK_BIN").map(PathBuf::from);
    let mut reps = 3;
    let mut latencies = vec![0, 60];
    let mut chains = false;
    let mut compare = None;
    let mut startup_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--wsstack" => wsstack = args.next().map(PathBuf::from),
            "--reps" => reps = args.next().context("--reps N")?.parse()?,
            "--chains" => chains = true,
            "--compare" => compare = Some(PathBuf::from(args.next().context("--compare PATH")?)),
            "--startup-only" => startup_only = true,
            "--latencies" => {
                latencies = args
                    .next()
                    .context("--latencies 0,60")?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            other => {
                bail!("unknown argument {other}; usage: wsstack-bench --wsstack PATH [--reps N] [--latencies 0,60] [--chains] [--compare PATH] [--startup-only]")
            }
        }
    }
    let wsstack = wsstack.context("--wsstack PATH (or WSSTACK_BIN) is required")?;
    for binary in std::iter::once(&wsstack).chain(compare.as_ref()) {
        if !binary.exists() {
            bail!("{} does not exist", binary.display());
        }
    }
    Ok(Options {
        wsstack,
        reps: reps.max(1),
        latencies,
        chains,
        compare,
        startup_only,
    })
}

/// One measured command.
#[derive(Clone)]
struct Sample {
    wall: Duration,
    calls: usize,
    writes: usize,
    critical_path: usize,
    /// After CreateApi, the wait before the API is listed again (the race settle of api.rs).
    api_settle: Duration,
}

/// From the end of CreateApi to the start of the next GetApis: the race-settle wait.
fn api_settle(calls: &[Call]) -> Duration {
    let Some(create) = calls.iter().find(|c| c.operation == "POST /v2/apis") else {
        return Duration::ZERO;
    };
    calls
        .iter()
        .filter(|c| c.operation == "GET /v2/apis" && c.started >= create.ended)
        .map(|c| c.started - create.ended)
        .min()
        .unwrap_or_default()
}

fn critical_path(calls: &[Call]) -> usize {
    critical_chain(calls).len()
}

struct Bench {
    options: Options,
    _moto: Moto,
    proxy: Proxy,
    dir: PathBuf,
    counter: usize,
}

impl Bench {
    fn command_of(&self, binary: &Path, stack: &Path, args: &[&str], concurrency: Option<usize>) -> Command {
        let mut command = Command::new(binary);
        command
            .arg("-f")
            .arg(stack)
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", self.proxy.endpoint())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = concurrency {
            command.env("WSSTACK_MAX_CONCURRENCY", n.to_string());
        }
        command
    }

    /// Run one command to completion, expecting `ok_codes`, and measure it.
    fn measure(&self, stack: &Path, args: &[&str], concurrency: Option<usize>, ok_codes: &[i32]) -> Result<Sample> {
        self.measure_of(&self.options.wsstack, stack, args, concurrency, ok_codes)
    }

    fn measure_of(
        &self,
        binary: &Path,
        stack: &Path,
        args: &[&str],
        concurrency: Option<usize>,
        ok_codes: &[i32],
    ) -> Result<Sample> {
        self.proxy.clear();
        let mut command = self.command_of(binary, stack, args, concurrency);
        let start = Instant::now();
        let output = command.output()?;
        let wall = start.elapsed();
        let code = output.status.code().unwrap_or(-1);
        if !ok_codes.contains(&code) {
            bail!(
                "wsstack {args:?} exited {code}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let calls = self.proxy.calls();
        if self.options.chains {
            let chain = critical_chain(&calls);
            let concurrency = concurrency.map(|n| format!(" (concurrency {n})")).unwrap_or_default();
            eprintln!(
                "{args:?}{concurrency}: {} calls, critical path {}: {}",
                calls.len(),
                chain.len(),
                describe(&chain)
            );
        }
        Ok(Sample {
            wall,
            calls: calls.len(),
            writes: calls.iter().filter(|c| c.write).count(),
            critical_path: critical_path(&calls),
            api_settle: api_settle(&calls),
        })
    }

    fn new_stack(&mut self) -> Result<PathBuf> {
        self.counter += 1;
        let name = format!("bench{}", self.counter);
        let shipped = std::fs::read_to_string(testkit::repo_root().join("stack.yaml"))?;
        let path = self.dir.join(format!("{name}.yaml"));
        std::fs::write(&path, shipped.replace("name: wsstack-demo", &format!("name: {name}")))?;
        Ok(path)
    }

    /// Cold up, plan (deployed, nothing to do), no-op up, down of a fresh stack.
    fn lifecycle(&mut self, concurrency: Option<usize>) -> Result<[Sample; 4]> {
        let stack = self.new_stack()?;
        let cold = self.measure(&stack, &["up", "-q"], concurrency, &[0])?;
        let plan = self.measure(&stack, &["plan", "-q"], concurrency, &[0, 3])?;
        let noop = self.measure(&stack, &["up", "-q"], concurrency, &[0])?;
        let down = self.measure(&stack, &["down", "--yes", "-q"], concurrency, &[0])?;
        Ok([cold, noop, plan, down])
    }
}

fn median(samples: &mut [Sample]) -> Sample {
    samples.sort_by_key(|s| s.wall);
    samples[samples.len() / 2].clone()
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// Cold up, no-op up, plan and down at each latency, concurrent and sequential.
fn control_plane(bench: &mut Bench) -> Result<()> {
    println!("### Control plane (median of {} runs per cell)\n", bench.options.reps);
    println!(
        "Critical path = longest chain of calls each starting after the previous one ended (sequential round trips).\n"
    );
    println!("| latency | command | concurrent wall ms | sequential wall ms | speed-up | calls | writes | critical path (concurrent) | critical path (sequential) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let names = ["cold up", "no-op up", "plan", "down"];
    let mut settles = Vec::new();
    for latency in bench.options.latencies.clone() {
        bench.proxy.set_latency(Duration::from_millis(latency));
        let mut concurrent: [Vec<Sample>; 4] = Default::default();
        let mut sequential: [Vec<Sample>; 4] = Default::default();
        for _ in 0..bench.options.reps {
            // Interleaved, so that drift in the machine's load hits both alike.
            for (i, s) in bench.lifecycle(None)?.into_iter().enumerate() {
                concurrent[i].push(s);
            }
            for (i, s) in bench.lifecycle(Some(1))?.into_iter().enumerate() {
                sequential[i].push(s);
            }
        }
        let settle = |samples: &[Sample]| {
            let mut waits: Vec<Duration> = samples.iter().map(|s| s.api_settle).collect();
            waits.sort();
            ms(waits[waits.len() / 2])
        };
        settles.push(format!(
            "| {latency} ms | {} | {} |",
            settle(&concurrent[0]),
            settle(&sequential[0])
        ));
        for i in 0..4 {
            let c = median(&mut concurrent[i]);
            let s = median(&mut sequential[i]);
            println!(
                "| {latency} ms | {} | {} | {} | {:.1}x | {} | {} | {} | {} |",
                names[i],
                ms(c.wall),
                ms(s.wall),
                s.wall.as_secs_f64() / c.wall.as_secs_f64(),
                c.calls,
                c.writes,
                c.critical_path,
                s.critical_path
            );
        }
    }

    println!("\nOf which, in each cold up, the wait after CreateApi that settles concurrent runs (median ms):\n");
    println!("| latency | concurrent | sequential |");
    println!("|---|---:|---:|");
    for line in settles {
        println!("{line}");
    }

    Ok(())
}

fn main() -> Result<()> {
    let options = options()?;
    let moto = Moto::start()?;
    let proxy = Proxy::start(&moto.endpoint())?;
    let dir = std::env::temp_dir().join(format!("wsstack-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut bench = Bench {
        options,
        _moto: moto,
        proxy,
        dir: dir.clone(),
        counter: 0,
    };

    // Warm moto's lazily loaded service backends so the first measured run is not penalised.
    let warm = bench.new_stack()?;
    bench.measure(&warm, &["up", "-q"], None, &[0])?;
    bench.measure(&warm, &["down", "--yes", "-q"], None, &[0])?;

    if !bench.options.startup_only {
        control_plane(&mut bench)?;
    }

    // Start-up: --help (no AWS), and status of a deployed stack at 0 ms latency; with --compare,
    // both binaries run by run in turn, so that the machine's load falls on both alike.
    bench.proxy.set_latency(Duration::ZERO);
    let stack = bench.new_stack()?;
    bench.measure(&stack, &["up", "-q"], None, &[0])?;
    let runs = 20;
    let binaries: Vec<PathBuf> = std::iter::once(bench.options.wsstack.clone())
        .chain(bench.options.compare.clone())
        .collect();
    let mut help = vec![Vec::new(); binaries.len()];
    let mut status = vec![Vec::new(); binaries.len()];
    for _ in 0..runs {
        for (i, binary) in binaries.iter().enumerate() {
            let mut command = bench.command_of(binary, &stack, &["--help"], None);
            let start = Instant::now();
            let output = command.output()?;
            help[i].push(start.elapsed());
            if !output.status.success() {
                bail!("{} --help failed", binary.display());
            }
        }
        for (i, binary) in binaries.iter().enumerate() {
            // 3: drifted, for a second binary that embeds other handler zips (the same reads).
            status[i].push(bench.measure_of(binary, &stack, &["status", "-q"], None, &[0, 3])?);
        }
    }
    println!("\n### Start-up ({runs} runs each, 0 ms latency)\n");
    println!("| binary | size | command | min ms | median ms | calls |");
    println!("|---|---:|---|---:|---:|---:|");
    for (i, binary) in binaries.iter().enumerate() {
        let size = std::fs::metadata(binary)?.len() as f64 / 1048576.0;
        help[i].sort();
        let status_median = median(&mut status[i]);
        println!(
            "| {} | {size:.1} MiB | `--help` | {:.1} | {:.1} | 0 |",
            binary.display(),
            help[i][0].as_secs_f64() * 1e3,
            help[i][runs / 2].as_secs_f64() * 1e3
        );
        println!(
            "| {} | {size:.1} MiB | `status` (deployed stack) | {:.1} | {:.1} | {} |",
            binary.display(),
            status[i][0].wall.as_secs_f64() * 1e3,
            status_median.wall.as_secs_f64() * 1e3,
            status_median.calls
        );
    }
    bench.measure(&stack, &["down", "--yes", "-q"], None, &[0])?;

    println!("\n### Artifacts\n");
    let zip = std::env::var_os("WSSTACK_HANDLERS_ZIP")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::repo_root().join("target/handlers/bootstrap.zip"));
    match std::fs::metadata(&zip) {
        Ok(m) => println!(
            "- handler zip `target/handlers/bootstrap.zip`: {} bytes ({:.2} MiB)",
            m.len(),
            m.len() as f64 / 1048576.0
        ),
        Err(_) => println!("- handler zip: not built (run handlers/build.sh)"),
    }
    let binary = std::fs::metadata(&bench.options.wsstack)?.len();
    println!(
        "- `wsstack` binary measured ({}): {:.1} MiB",
        bench.options.wsstack.display(),
        binary as f64 / 1048576.0
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
