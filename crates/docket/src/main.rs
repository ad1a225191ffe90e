//! The `docket` binary: `docket serve` runs the HTTP server; the other subcommands
//! administer a data directory (also while a server runs on it).

/// mimalloc instead of glibc malloc: the request path frees buffers on other threads than
/// the ones that allocated them, which glibc serves slowly (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod app;
mod automation;
mod bench;
mod blobs;
mod cli;
mod config;
mod config_doc;
mod database;
mod datadir;
mod email_in;
mod mailer;
mod migrate;
mod notify;
mod ops;
mod remote;
mod server;
mod upstream;
mod web;
mod webhooks;
mod wire;
mod xyops_import;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("docket: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docket: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
