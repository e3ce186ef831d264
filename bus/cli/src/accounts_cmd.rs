//! `truc accounts add|list|disable`: portal accounts. Glue over `portal::accounts`, which
//! owns the file format, the hashing and the atomic writes; this works while the relay runs
//! (the accounts live in their own file, not in the locked store).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use portal::{AccountError, AccountFile, AccountRole};

use crate::config;
use crate::lang::Lang;

/// `truc accounts …`
#[derive(Debug, clap::Args)]
pub struct AccountsArgs {
    /// Tệp cấu hình của trục (để lấy [portal] accounts và data_dir; mặc định ./truc.toml nếu
    /// có). / The relay's configuration file (for [portal] accounts and data_dir; default
    /// ./truc.toml when present).
    #[arg(long, global = true, env = "TRUC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Thư mục dữ liệu (ghi đè data_dir). / Data directory (overrides data_dir).
    #[arg(long, global = true, env = "TRUC_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Tệp tài khoản (ghi đè mọi thứ ở trên). / The accounts file (overrides all of the above).
    #[arg(long, global = true, value_name = "FILE")]
    file: Option<PathBuf>,

    #[command(subcommand)]
    command: AccountsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AccountsCommand {
    /// Thêm tài khoản: văn thư của một đơn vị (--unit) hoặc quản trị trục (--operator). Mật
    /// khẩu lấy từ biến TRUC_PASSWORD, không có thì hỏi (không hiện). / Add an account: a unit's
    /// clerk (--unit) or an operator (--operator). The password comes from TRUC_PASSWORD, else
    /// a prompt (not echoed).
    Add {
        name: String,
        /// Mã đơn vị mà văn thư này thuộc về. / The unit this clerk belongs to.
        #[arg(long, value_name = "CODE", required_unless_present = "operator")]
        unit: Option<String>,
        /// Tài khoản quản trị trục (xem mọi đơn vị và trang vận hành). / An operator account
        /// (every unit and the operations page).
        #[arg(long, conflicts_with = "unit")]
        operator: bool,
    },
    /// Liệt kê tài khoản (không bao giờ in mật khẩu hay mã băm). / List accounts (never prints
    /// passwords or hashes).
    List {
        /// In dạng JSON. / Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Khóa tài khoản: không đăng nhập được nữa, phiên đang mở kết thúc ngay. / Disable an
    /// account: it can no longer sign in, and its open sessions end at once.
    Disable { name: String },
}

fn accounts_path(args: &AccountsArgs) -> anyhow::Result<PathBuf> {
    if let Some(f) = &args.file {
        return Ok(f.clone());
    }
    let file = args
        .config
        .clone()
        .or_else(|| Some(PathBuf::from(config::DEFAULT_FILE)).filter(|p| p.is_file()));
    let mut cfg = match &file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: {e} [config.read]", path.display()))?;
            let (mut cfg, _) = config::load(&text);
            cfg.resolve_paths(path.parent().unwrap_or(std::path::Path::new("")));
            cfg
        }
        None => config::Config::default(),
    };
    if let Some(d) = &args.data {
        cfg.data_dir = d.clone();
    }
    Ok(cfg.accounts_file())
}

fn err(e: AccountError, lang: Lang) -> anyhow::Error {
    anyhow::anyhow!(
        "{} [{}]",
        lang.pick(&e.message_vi(), &e.message_en()),
        e.code()
    )
}

/// The password: `TRUC_PASSWORD`, else asked twice on the terminal without echo.
fn password(lang: Lang) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TRUC_PASSWORD") {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        if tty {
            let _ = std::process::Command::new("stty").arg("-echo").status();
        }
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        if tty {
            let _ = std::process::Command::new("stty").arg("echo").status();
            eprintln!();
        }
        read?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let first = ask(lang.pick("Mật khẩu: ", "Password: "))?;
    if tty {
        let again = ask(lang.pick("Nhập lại mật khẩu: ", "Password again: "))?;
        if again != first {
            anyhow::bail!(
                "{}",
                lang.pick(
                    "Hai lần nhập mật khẩu không khớp; hãy chạy lại lệnh.",
                    "The two passwords differ; run the command again."
                )
            );
        }
    }
    Ok(first)
}

pub fn run(args: AccountsArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let path = accounts_path(&args)?;
    let file = AccountFile::new(&path);
    match args.command {
        AccountsCommand::Add {
            name,
            unit,
            operator,
        } => {
            let role = match (unit, operator) {
                (_, true) => AccountRole::Operator,
                (Some(unit), false) => AccountRole::Clerk { unit },
                (None, false) => anyhow::bail!(
                    "{}",
                    lang.pick(
                        "Cần --unit MÃ (văn thư) hoặc --operator (quản trị trục).",
                        "Give --unit CODE (a clerk) or --operator."
                    )
                ),
            };
            let pw = password(lang)?;
            let now = relay::rfc3339(std::time::SystemTime::now());
            let a = file.add(&name, role, &pw, &now).map_err(|e| err(e, lang))?;
            println!(
                "{}",
                match (&a.role, lang) {
                    (AccountRole::Operator, Lang::Vi) => format!(
                        "Đã thêm tài khoản quản trị trục \"{}\" vào {}.",
                        a.name,
                        path.display()
                    ),
                    (AccountRole::Operator, Lang::En) => format!(
                        "Added operator account \"{}\" to {}.",
                        a.name,
                        path.display()
                    ),
                    (AccountRole::Clerk { unit }, Lang::Vi) => format!(
                        "Đã thêm tài khoản văn thư \"{}\" của đơn vị {unit} vào {}.",
                        a.name,
                        path.display()
                    ),
                    (AccountRole::Clerk { unit }, Lang::En) => format!(
                        "Added clerk account \"{}\" of unit {unit} to {}.",
                        a.name,
                        path.display()
                    ),
                }
            );
        }
        AccountsCommand::List { json } => {
            let all = file.load().map_err(|e| err(e, lang))?;
            if json {
                let rows: Vec<serde_json::Value> = all
                    .accounts
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "name": a.name,
                            "role": if a.is_operator() { "operator" } else { "clerk" },
                            "unit": a.unit(),
                            "disabled": a.disabled,
                            "created": a.created,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if all.accounts.is_empty() {
                println!(
                    "{}",
                    lang.pick(
                        &format!(
                            "Chưa có tài khoản nào trong {}. Thêm bằng: truc accounts add TÊN --unit MÃ",
                            path.display()
                        ),
                        &format!(
                            "No accounts in {} yet. Add one with: truc accounts add NAME --unit CODE",
                            path.display()
                        ),
                    )
                );
            } else {
                for a in &all.accounts {
                    let role = match &a.role {
                        AccountRole::Operator => lang.pick("quản trị", "operator").to_owned(),
                        AccountRole::Clerk { unit } => {
                            format!("{} {unit}", lang.pick("văn thư", "clerk"))
                        }
                    };
                    let state = if a.disabled {
                        lang.pick("đã khóa", "disabled")
                    } else {
                        lang.pick("hoạt động", "active")
                    };
                    println!("{:<24} {:<28} {:<10} {}", a.name, role, state, a.created);
                }
            }
        }
        AccountsCommand::Disable { name } => {
            file.disable(&name).map_err(|e| err(e, lang))?;
            println!(
                "{}",
                lang.pick(
                    &format!("Đã khóa tài khoản \"{name}\"; các phiên đang mở kết thúc ngay."),
                    &format!("Disabled account \"{name}\"; its open sessions end at once."),
                )
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
