//! `truc-adapter --config FILE`: runs one unit's adapter until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use truc_adapter::{Adapter, Config};

/// Bộ chuyển đổi của một đơn vị: ký, gửi, nhận gói tin edXML qua trục.
/// The adapter beside one unit's DMS: signs, sends and receives edXML packages through the relay.
#[derive(Debug, Parser)]
#[command(name = "truc-adapter", version)]
struct Args {
    /// Tệp cấu hình / config file (TOML, version = 1).
    #[arg(long, default_value = "truc-adapter.toml")]
    config: PathBuf,
    /// Chỉ kiểm tra cấu hình rồi thoát / check the config and exit.
    #[arg(long)]
    check: bool,
    /// Ngôn ngữ thông báo / message language.
    #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
    lang: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let en = args.lang == "en";
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", if en { e.message_en() } else { e.message_vi() });
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!(
            "{}",
            if en {
                format!("{}: the config is valid.", args.config.display())
            } else {
                format!("{}: cấu hình hợp lệ.", args.config.display())
            }
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tokio: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let adapter = Adapter::open(config)?;
        let c = adapter.config();
        println!(
            "{}",
            if en {
                format!(
                    "truc-adapter: unit {}; drop packages into {}; received ones appear in {}, receipts in {}.",
                    c.unit,
                    c.folder.outbox.display(),
                    c.folder.inbox.display(),
                    c.folder.receipts.display()
                )
            } else {
                format!(
                    "truc-adapter: đơn vị {}; thả gói tin vào {}; gói tin nhận được ở {}, trạng thái ở {}.",
                    c.unit,
                    c.folder.outbox.display(),
                    c.folder.inbox.display(),
                    c.folder.receipts.display()
                )
            }
        );
        adapter.run(shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", if en { e.message_en() } else { e.message_vi() });
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
