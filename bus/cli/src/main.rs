//! `truc`: the one command of the bus. Glue only: every subcommand parses its
//! arguments, calls into a bus crate, and prints. No format or protocol logic
//! lives here.

mod accounts_cmd;
mod bench_cmd;
mod config;
mod demo_cmd;
mod edxml_cmd;
mod lang;
mod ops_cmd;
mod serve_cmd;
mod track_cmd;
mod trust_cmd;
mod units_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Trục — trục liên thông văn bản quốc gia (national document-exchange bus).
#[derive(Debug, Parser)]
#[command(name = "truc", version, about, long_about = None)]
struct Cli {
    /// Ngôn ngữ thông báo: vi (mặc định) hoặc en. / Message language: vi (default) or en.
    #[arg(long, global = true, env = "TRUC_LANG", default_value = "vi")]
    lang: lang::Lang,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Đọc, kiểm tra, định dạng và tạo gói tin edXML. / Read, check, format and make edXML packages.
    #[command(subcommand)]
    Edxml(edxml_cmd::EdxmlCommand),
    /// Hạ tầng chứng thư số cho phát triển. / Development PKI.
    #[command(subcommand)]
    Certs(trust_cmd::CertsCommand),
    /// Ký một gói tin. / Sign a package.
    Sign(trust_cmd::SignArgs),
    /// Kiểm tra chữ ký của gói tin. / Verify a package's signatures.
    Verify(trust_cmd::VerifyArgs),
    /// Danh bạ đơn vị: nhập, liệt kê, xem. / The unit directory: import, list, show.
    Units(units_cmd::UnitsArgs),
    /// Chạy trục (HTTPS) đến khi Ctrl-C/SIGTERM. / Run the relay (HTTPS) until Ctrl-C/SIGTERM.
    Serve(serve_cmd::ServeArgs),
    /// Tài khoản cổng văn thư: thêm, liệt kê, khóa. / Portal accounts: add, list, disable.
    Accounts(accounts_cmd::AccountsArgs),
    /// Theo dõi một gói tin theo từng nơi nhận; dựng lại bảng theo dõi. / Track a package per
    /// recipient; rebuild the tracking views.
    Track(track_cmd::TrackArgs),
    /// Đo hiệu năng trục qua cổng HTTPS thật. / Benchmark the relay through its real HTTPS edge.
    Bench(bench_cmd::BenchArgs),
    /// Chạy thử cả trục: 3 đơn vị, trục và bộ chuyển đổi trong ./demo/. / Run the whole bus: 3
    /// units, the relay and their adapters under ./demo/.
    Demo(demo_cmd::DemoArgs),
    /// Vận hành: bảng hộp thư, đưa lại thư bị gác lại. / Operations: the mailbox table, re-drive
    /// dead letters.
    #[command(subcommand)]
    Ops(ops_cmd::OpsCommand),
}

/// jemalloc instead of glibc's malloc: the relay allocates and frees many small records per
/// package from many threads; glibc's per-thread arenas fragmented that into about 3 GB of RSS
/// for 1,000,000 queued entries, jemalloc keeps it near the live size (figures in the README's
/// performance section, `truc bench`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let lang = cli.lang;
    let result = match cli.command {
        Command::Edxml(cmd) => edxml_cmd::run(cmd, lang),
        Command::Certs(cmd) => trust_cmd::run_certs(cmd, lang),
        Command::Sign(args) => trust_cmd::run_sign(args, lang),
        Command::Verify(args) => trust_cmd::run_verify(args, lang),
        Command::Units(args) => units_cmd::run(args, lang),
        Command::Serve(args) => serve_cmd::run(args, lang),
        Command::Accounts(args) => accounts_cmd::run(args, lang),
        Command::Track(args) => track_cmd::run(args, lang),
        Command::Bench(args) => bench_cmd::run(args, lang),
        Command::Demo(args) => demo_cmd::run(args, lang),
        Command::Ops(cmd) => ops_cmd::run(cmd, lang),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {e:#}", lang.pick("lỗi", "error"));
            ExitCode::from(2)
        }
    }
}
