//! `truc certs`, `truc sign`, `truc verify`: glue over the `dsig` crate.
//! (Owned by the trust work; filled in by issue 3.)

use std::process::ExitCode;

use crate::lang::Lang;

/// `truc certs …`
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {}

/// `truc sign …`
#[derive(Debug, clap::Args)]
pub struct SignArgs {}

/// `truc verify …`
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {}

pub fn run_certs(cmd: CertsCommand, _lang: Lang) -> anyhow::Result<ExitCode> {
    match cmd {}
}

pub fn run_sign(_args: SignArgs, _lang: Lang) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet (issue 3)")
}

pub fn run_verify(_args: VerifyArgs, _lang: Lang) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet (issue 3)")
}
