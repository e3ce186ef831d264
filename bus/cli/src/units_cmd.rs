//! `truc units …`: glue over the `directory` crate. Reading the file, the progress bar, the
//! clock for the summary and printing live here; every rule lives in `directory`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use directory::{Directory, DirectoryError, Unit};

use crate::lang::Lang;

/// `truc units …`
#[derive(Debug, clap::Args)]
pub struct UnitsArgs {
    /// Thư mục dữ liệu của trục. / The bus's data directory.
    #[arg(long, global = true, env = "TRUC_DATA", default_value = "./data")]
    data: PathBuf,

    #[command(subcommand)]
    command: UnitsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UnitsCommand {
    /// Nhập danh bạ từ tệp CSV hoặc JSON (tất cả hoặc không gì cả). / Import units from a CSV or
    /// JSON file (all or nothing).
    Import {
        /// Tệp CSV (có dòng tiêu đề) hoặc JSON; xem schemas/units/README.md. / CSV (with a header
        /// row) or JSON file; see schemas/units/README.md.
        file: PathBuf,
        /// In kết quả dạng JSON. / Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Liệt kê đơn vị. / List units.
    List {
        /// Chỉ các đơn vị trực thuộc (mọi cấp) đơn vị này. / Only units under this one (any depth).
        #[arg(long, value_name = "CODE")]
        under: Option<String>,
        /// Chỉ các thành viên của nhóm này. / Only members of this group.
        #[arg(long, value_name = "NAME", conflicts_with = "under")]
        group: Option<String>,
        /// In dạng JSON. / Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Xem một đơn vị (theo mã hoặc mã cũ). / Show one unit (by code or old code).
    Show {
        code: String,
        /// In dạng JSON. / Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: UnitsArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let store = store::Store::open(&args.data).map_err(|e| {
        anyhow::anyhow!("{}", lang.pick(&e.message_vi(), &e.message_en()).to_owned())
    })?;
    let dir = Directory::open(&store).map_err(|e| explain(&e, lang))?;
    match args.command {
        UnitsCommand::Import { file, json } => import(&dir, &file, json, lang),
        UnitsCommand::List { under, group, json } => {
            let units = match (&under, &group) {
                (_, Some(g)) => dir.group(g),
                (u, None) => dir.list(u.as_deref()),
            }
            .map_err(|e| explain(&e, lang))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&units)?);
            } else {
                for u in &units {
                    print_line(u, lang);
                }
                eprintln!("{}", count_line(units.len(), lang));
            }
            Ok(ExitCode::SUCCESS)
        }
        UnitsCommand::Show { code, json } => show(&dir, &code, json, lang),
    }
}

fn explain(e: &DirectoryError, lang: Lang) -> anyhow::Error {
    anyhow::anyhow!(
        "{} [{}]",
        lang.pick(&e.message_vi(), &e.message_en()),
        e.code()
    )
}

fn count_line(n: usize, lang: Lang) -> String {
    match lang {
        Lang::Vi => format!("{n} đơn vị"),
        Lang::En => format!("{n} unit(s)"),
    }
}

fn print_line(u: &Unit, lang: Lang) {
    let state = match u.state {
        directory::UnitState::Active => String::new(),
        s => format!("  ({})", lang.pick(s.label_vi(), s.label_en())),
    };
    println!("{}  {}{state}", u.code, u.name);
}

fn import(dir: &Directory, file: &Path, json: bool, lang: Lang) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| {
        lang.pick("không đọc được tệp nhập", "cannot read the import file")
            .to_owned()
            + " "
            + &file.display().to_string()
    })?;
    let started = Instant::now();
    // Drawn on stderr only when it is a terminal (indicatif hides it otherwise). The position
    // counts records checked; the one atomic write that follows takes most of a large import's
    // time, so the spinner keeps ticking until it is done.
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(lang.pick("đơn vị", "units").to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let result = dir.import(&bytes, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(DirectoryError::Import { problems }) => {
            let name = file.display();
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "file": name.to_string(), "ok": false, "problems": problems })
                );
            }
            for p in &problems {
                let message = lang.pick(&p.vi, &p.en);
                if p.field.is_empty() {
                    eprintln!("{name}:{}: {message}", p.record);
                } else {
                    eprintln!("{name}:{}: {}: {message}", p.record, p.field);
                }
            }
            eprintln!(
                "{}",
                match lang {
                    Lang::Vi => format!(
                        "{name}: {} lỗi; chưa ghi gì vào danh bạ. Sửa các lỗi trên rồi nhập lại.",
                        problems.len()
                    ),
                    Lang::En => format!(
                        "{name}: {} problem(s); nothing was written to the directory. Fix them and import again.",
                        problems.len()
                    ),
                }
            );
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(explain(&e, lang)),
    };
    // Success is printed only once the import is durable.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(dir.flush())
        .map_err(|e| explain(&e, lang))?;
    let seconds = started.elapsed().as_secs_f64();
    let total = dir.len().map_err(|e| explain(&e, lang))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": file.display().to_string(),
                "ok": true,
                "report": report,
                "directory_units": total,
                "seconds": seconds,
            })
        );
    } else {
        println!(
            "{}",
            match lang {
                Lang::Vi => format!(
                    "Đã nhập {} đơn vị ({} mới, {} thay thế), {} mã cũ, {} nhóm trong {seconds:.1} s; danh bạ hiện có {total} đơn vị.",
                    report.units, report.created, report.replaced, report.aliases, report.groups
                ),
                Lang::En => format!(
                    "Imported {} units ({} new, {} replaced), {} old codes, {} groups in {seconds:.1} s; the directory now holds {total} units.",
                    report.units, report.created, report.replaced, report.aliases, report.groups
                ),
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show(dir: &Directory, code: &str, json: bool, lang: Lang) -> anyhow::Result<ExitCode> {
    let unit = dir.require(code).map_err(|e| explain(&e, lang))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&unit)?);
        return Ok(ExitCode::SUCCESS);
    }
    let none = lang.pick("(không có)", "(none)");
    let join = |v: &[String]| {
        if v.is_empty() {
            none.to_owned()
        } else {
            v.join(", ")
        }
    };
    if unit.code != code.trim() {
        println!(
            "{}",
            match lang {
                Lang::Vi => format!("{} là mã cũ của {}.", code.trim(), unit.code),
                Lang::En => format!("{} is an old code of {}.", code.trim(), unit.code),
            }
        );
    }
    let parent = match &unit.parent {
        Some(p) => match dir.resolve(p).map_err(|e| explain(&e, lang))? {
            Some(pu) => format!("{p} ({})", pu.name),
            None => p.clone(),
        },
        None => none.to_owned(),
    };
    let direct = dir
        .children(&unit.code)
        .map_err(|e| explain(&e, lang))?
        .len();
    let all = dir
        .list(Some(&unit.code))
        .map_err(|e| explain(&e, lang))?
        .len();
    let rows = [
        (lang.pick("Mã định danh", "Code"), unit.code.clone()),
        (lang.pick("Tên", "Name"), unit.name.clone()),
        (lang.pick("Đơn vị cha", "Parent"), parent),
        (lang.pick("Mã cũ", "Old codes"), join(&unit.aliases)),
        (
            lang.pick("Trạng thái", "State"),
            lang.pick(unit.state.label_vi(), unit.state.label_en())
                .to_owned(),
        ),
        (lang.pick("Nhóm", "Groups"), join(&unit.groups)),
        (
            lang.pick("Chứng thư (SHA-256)", "Certificates (SHA-256)"),
            join(&unit.fingerprints),
        ),
        (
            lang.pick("Đơn vị trực thuộc", "Units under it"),
            match lang {
                Lang::Vi => format!("{direct} trực tiếp, {all} tất cả các cấp"),
                Lang::En => format!("{direct} direct, {all} at every level"),
            },
        ),
    ];
    for (label, value) in rows {
        println!("{label}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}
