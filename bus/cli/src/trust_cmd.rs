//! `truc certs`, `truc sign`, `truc verify`: glue over the `dsig` crate.
//! File reading/writing and the clock live here; all logic is in `dsig`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::lang::Lang;

/// `truc certs …`
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// Tạo PKI phát triển (CA gốc, trục, các đơn vị, CRL rỗng). / Make a development PKI.
    Init {
        /// Thư mục đích (phải chưa có ca.pem). / Output directory (must not hold a ca.pem yet).
        #[arg(long)]
        out: PathBuf,
        /// Mã đơn vị, phân tách bằng dấu phẩy. / Unit codes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        units: Vec<String>,
    },
    /// Cấp chứng thư cho một đơn vị mới. / Issue a certificate for one more unit.
    Issue {
        /// Thư mục PKI (chứa ca.pem, ca.key.pem). / PKI directory (holding ca.pem, ca.key.pem).
        #[arg(long)]
        ca: PathBuf,
        /// Mã đơn vị (CN). / Unit code (CN).
        #[arg(long)]
        unit: String,
        /// Tên đơn vị (O). / Unit name (O).
        #[arg(long)]
        name: Option<String>,
    },
    /// Thu hồi một chứng thư (thêm vào ca.crl.pem). / Revoke a certificate (add it to ca.crl.pem).
    Revoke {
        /// Thư mục PKI. / PKI directory.
        #[arg(long)]
        ca: PathBuf,
        /// Chứng thư cần thu hồi (PEM). / Certificate to revoke (PEM).
        cert: PathBuf,
    },
}

/// Vai trò người ký. / Signer role.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Đơn vị gửi. / The sending unit.
    Sender,
    /// Trục niêm phong. / The relay's seal.
    Relay,
}

/// `truc sign …`
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Khóa bí mật PEM. / PEM private key.
    #[arg(long)]
    key: PathBuf,
    /// Chứng thư PEM của người ký. / Signer's PEM certificate.
    #[arg(long)]
    cert: PathBuf,
    /// Ký với vai trò nào. / Sign as.
    #[arg(long = "as", value_enum, default_value = "sender")]
    role: RoleArg,
    /// Gói tin edXML; gói đã ký in ra stdout. / edXML package; the signed package goes to stdout.
    file: PathBuf,
}

/// `truc verify …`
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Chứng thư gốc tin cậy (PEM). / Trusted root certificate(s) (PEM).
    #[arg(long)]
    trust: PathBuf,
    /// Danh sách thu hồi (PEM). / Certificate revocation list (PEM).
    #[arg(long)]
    crl: Option<PathBuf>,
    /// Chấp nhận hồ sơ RSA-SHA1 cũ (chỉ để đọc lưu trữ). / Accept the legacy RSA-SHA1 profile (archives only).
    #[arg(long = "allow-sha1")]
    allow_sha1: bool,
    /// Bắt buộc có chữ ký niêm phong của trục (phía nhận). / Require the relay's seal (recipients).
    #[arg(long = "require-seal")]
    require_seal: bool,
    /// In báo cáo dạng JSON. / Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Các gói tin. / Packages.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn read(path: &Path, lang: Lang) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "{} {}",
            lang.pick("không đọc được", "cannot read"),
            path.display()
        )
    })
}

fn dsig_err(e: dsig::Error, lang: Lang) -> anyhow::Error {
    anyhow::anyhow!("[{}] {}", e.code, e.text(lang == Lang::Vi))
}

fn write_new(path: &Path, content: &[u8], lang: Lang) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "{} {}",
                lang.pick("không tạo được thư mục", "cannot create directory"),
                dir.display()
            )
        })?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| {
            format!(
                "{} {}",
                lang.pick(
                    "không ghi được (tệp đã tồn tại?)",
                    "cannot write (file already exists?)"
                ),
                path.display()
            )
        })?;
    f.write_all(content)?;
    Ok(())
}

pub fn run_certs(cmd: CertsCommand, lang: Lang) -> anyhow::Result<ExitCode> {
    match cmd {
        CertsCommand::Init { out, units } => {
            let specs: Vec<(&str, Option<&str>)> = units.iter().map(|u| (u.trim(), None)).collect();
            let pki = dsig::pki::init(&specs, now_unix()).map_err(|e| dsig_err(e, lang))?;
            for (rel, content) in pki.files() {
                write_new(&out.join(rel), &content, lang)?;
            }
            eprintln!(
                "{} {}",
                lang.pick("Đã tạo PKI phát triển tại", "Development PKI written to"),
                out.display()
            );
        }
        CertsCommand::Issue { ca, unit, name } => {
            let issued = dsig::pki::issue(
                &read(&ca.join("ca.pem"), lang)?,
                &read(&ca.join("ca.key.pem"), lang)?,
                &unit,
                name.as_deref(),
                now_unix(),
            )
            .map_err(|e| dsig_err(e, lang))?;
            write_new(
                &ca.join(format!("units/{unit}.pem")),
                &issued.cert_pem,
                lang,
            )?;
            write_new(
                &ca.join(format!("units/{unit}.key.pem")),
                &issued.key_pem,
                lang,
            )?;
            eprintln!("{} units/{unit}.pem", lang.pick("Đã cấp", "Issued"));
        }
        CertsCommand::Revoke { ca, cert } => {
            let crl_path = ca.join("ca.crl.pem");
            let crl = dsig::pki::revoke(
                &read(&ca.join("ca.pem"), lang)?,
                &read(&ca.join("ca.key.pem"), lang)?,
                &read(&crl_path, lang)?,
                &read(&cert, lang)?,
                now_unix(),
            )
            .map_err(|e| dsig_err(e, lang))?;
            // Replace atomically so a reader never sees half a CRL.
            let tmp = ca.join("ca.crl.pem.tmp");
            std::fs::write(&tmp, &crl)?;
            std::fs::rename(&tmp, &crl_path)?;
            eprintln!("{} {}", lang.pick("Đã thu hồi", "Revoked"), cert.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_sign(args: SignArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let signed = sign_file(&args, lang)?;
    std::io::stdout().lock().write_all(&signed)?;
    Ok(ExitCode::SUCCESS)
}

fn sign_file(args: &SignArgs, lang: Lang) -> anyhow::Result<Vec<u8>> {
    let key = dsig::SigningKey::from_pem(&read(&args.key, lang)?, &read(&args.cert, lang)?)
        .map_err(|e| dsig_err(e, lang))?;
    let role = match args.role {
        RoleArg::Sender => dsig::Role::Sender,
        RoleArg::Relay => dsig::Role::Relay,
    };
    dsig::sign(&read(&args.file, lang)?, &key, role).map_err(|e| dsig_err(e, lang))
}

fn yes_no(b: bool, lang: Lang) -> &'static str {
    if b {
        lang.pick("đạt", "ok")
    } else {
        lang.pick("KHÔNG ĐẠT", "FAILED")
    }
}

fn json_report(file: &Path, r: &dsig::VerifyReport, lang: Lang) -> serde_json::Value {
    let msg = |f: &dsig::Finding| serde_json::json!({"code": f.code, "message": f.text(lang == Lang::Vi)});
    serde_json::json!({
        "file": file.display().to_string(),
        "valid": r.is_valid(),
        "from_unit": r.from_unit,
        "failures": r.failures.iter().map(msg).collect::<Vec<_>>(),
        "warnings": r.warnings.iter().map(msg).collect::<Vec<_>>(),
        "signatures": r.signatures.iter().map(|s| serde_json::json!({
            "role": s.role.id(),
            "id": s.id,
            "signer_subject": s.signer_subject,
            "signer_unit": s.signer_unit,
            "signature_algorithm": s.signature_algorithm,
            "digest_algorithm": s.digest_algorithm,
            "digest_ok": s.digest_ok,
            "signature_ok": s.signature_ok,
            "chain_ok": s.chain_ok,
            "not_before": s.not_before,
            "not_after": s.not_after,
            "valid_at_time": s.valid_at_time,
            "revoked": s.revoked,
            "signer_is_from_unit": s.signer_is_from_unit,
            "relay_certificate": s.relay_certificate,
            "failures": s.failures.iter().map(msg).collect::<Vec<_>>(),
            "warnings": s.warnings.iter().map(msg).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub fn run_verify(args: VerifyArgs, lang: Lang) -> anyhow::Result<ExitCode> {
    let ok = verify_files(&args, lang, &mut std::io::stdout().lock())?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Verifies every file, printing one report each; true if all are valid.
fn verify_files(args: &VerifyArgs, lang: Lang, out: &mut dyn Write) -> anyhow::Result<bool> {
    let roots = read(&args.trust, lang)?;
    let crls = match &args.crl {
        Some(p) => read(p, lang)?,
        None => Vec::new(),
    };
    let trust = dsig::TrustStore::new(&roots, &crls)
        .map_err(|e| dsig_err(e, lang))?
        .allow_legacy_sha1(args.allow_sha1);
    let now = SystemTime::now();
    let mut all_ok = true;
    for file in &args.files {
        let xml = read(file, lang)?;
        let mut r = dsig::verify(&xml, &trust, now);
        if args.require_seal && r.signature(dsig::Role::Relay).is_none() {
            r.failures.push(dsig::Error {
                code: "DSIG_SEAL_MISSING",
                vi: "Gói tin chưa có chữ ký niêm phong của trục (Id=\"relay\"); bên nhận chỉ chấp nhận gói tin đã qua trục.".into(),
                en: "The package has no relay seal (Id=\"relay\"); recipients accept only packages that went through the relay.".into(),
            });
        }
        all_ok &= r.is_valid();
        if args.json {
            writeln!(out, "{}", json_report(file, &r, lang))?;
            continue;
        }
        let verdict = if r.is_valid() {
            lang.pick("HỢP LỆ", "VALID")
        } else {
            lang.pick("KHÔNG HỢP LỆ", "INVALID")
        };
        writeln!(out, "{}: {verdict}", file.display())?;
        for f in &r.failures {
            writeln!(out, "  ✗ [{}] {}", f.code, f.text(lang == Lang::Vi))?;
        }
        for f in &r.warnings {
            writeln!(out, "  ! [{}] {}", f.code, f.text(lang == Lang::Vi))?;
        }
        for s in &r.signatures {
            writeln!(
                out,
                "  {} {} ({}): {}",
                lang.pick("chữ ký", "signature"),
                s.id.as_deref().unwrap_or(s.role.id()),
                s.signer_subject.as_deref().unwrap_or("?"),
                yes_no(s.is_valid(), lang)
            )?;
            writeln!(
                out,
                "    digest {} · {} {} · chain {} · {} {} → {} ({}) · {} {}",
                yes_no(s.digest_ok, lang),
                lang.pick("chữ ký", "signature"),
                yes_no(s.signature_ok, lang),
                yes_no(s.chain_ok, lang),
                lang.pick("hiệu lực", "valid"),
                s.not_before.as_deref().unwrap_or("?"),
                s.not_after.as_deref().unwrap_or("?"),
                yes_no(s.valid_at_time, lang),
                lang.pick("thu hồi", "revoked"),
                match s.revoked {
                    Some(true) => lang.pick("CÓ", "YES"),
                    Some(false) => lang.pick("không", "no"),
                    None => lang.pick("chưa kiểm tra", "not checked"),
                }
            )?;
            for f in &s.failures {
                writeln!(out, "    ✗ [{}] {}", f.code, f.text(lang == Lang::Vi))?;
            }
            for f in &s.warnings {
                writeln!(out, "    ! [{}] {}", f.code, f.text(lang == Lang::Vi))?;
            }
        }
    }
    Ok(all_ok)
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const DOC: &str = "<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\"><edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>000.00.00.G22</OrganId></From><To><OrganId>000.00.00.H41</OrganId></To><Subject>Thử</Subject></MessageHeader></edXMLHeader><edXMLBody/></edXMLEnvelope></edXML>";

    fn verify(dir: &Path, file: &Path, crl: bool, lang: Lang) -> (bool, String) {
        let args = VerifyArgs {
            trust: dir.join("ca.pem"),
            crl: crl.then(|| dir.join("ca.crl.pem")),
            allow_sha1: false,
            require_seal: false,
            json: false,
            files: vec![file.to_path_buf()],
        };
        let mut out = Vec::new();
        let ok = verify_files(&args, lang, &mut out).expect("verify runs");
        (ok, String::from_utf8(out).expect("utf8"))
    }

    #[test]
    fn init_sign_verify_issue_and_revoke_round_trip() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("pki");
        let init = |units: Vec<String>| {
            run_certs(
                CertsCommand::Init {
                    out: dir.clone(),
                    units,
                },
                Lang::En,
            )
        };
        init(vec!["000.00.00.G22".into()]).expect("init");
        for f in [
            "ca.pem",
            "ca.key.pem",
            "ca.crl.pem",
            "relay.pem",
            "relay.key.pem",
            "units/000.00.00.G22.pem",
            "units/000.00.00.G22.key.pem",
        ] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        // A second init into the same directory must not overwrite the CA.
        assert!(init(vec![]).is_err());

        let pkg = tmp.path().join("doc.edxml");
        std::fs::write(&pkg, DOC).expect("write");
        let signed = sign_file(
            &SignArgs {
                key: dir.join("units/000.00.00.G22.key.pem"),
                cert: dir.join("units/000.00.00.G22.pem"),
                role: RoleArg::Sender,
                file: pkg.clone(),
            },
            Lang::En,
        )
        .expect("sign");
        let signed_path = tmp.path().join("signed.edxml");
        std::fs::write(&signed_path, &signed).expect("write");
        let (ok, text) = verify(&dir, &signed_path, true, Lang::En);
        assert!(ok, "{text}");
        assert!(
            text.contains("VALID") && text.contains("CN=000.00.00.G22"),
            "{text}"
        );

        // An unsigned package fails and says why, in Vietnamese by default.
        let (ok, text) = verify(&dir, &pkg, true, Lang::Vi);
        assert!(!ok);
        assert!(
            text.contains("DSIG_UNSIGNED") && text.contains("KHÔNG HỢP LỆ"),
            "{text}"
        );

        run_certs(
            CertsCommand::Issue {
                ca: dir.clone(),
                unit: "000.00.00.H41".into(),
                name: Some("UBND tỉnh Nghệ An".into()),
            },
            Lang::En,
        )
        .expect("issue");
        assert!(dir.join("units/000.00.00.H41.key.pem").is_file());

        run_certs(
            CertsCommand::Revoke {
                ca: dir.clone(),
                cert: dir.join("units/000.00.00.G22.pem"),
            },
            Lang::En,
        )
        .expect("revoke");
        let (ok, text) = verify(&dir, &signed_path, true, Lang::En);
        assert!(!ok);
        assert!(text.contains("DSIG_CERT_REVOKED"), "{text}");
        // Without --crl revocation is not checked, and the report says so.
        let (ok, text) = verify(&dir, &signed_path, false, Lang::En);
        assert!(ok && text.contains("DSIG_CRL_MISSING"), "{text}");
    }
}
