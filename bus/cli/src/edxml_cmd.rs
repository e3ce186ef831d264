//! `truc edxml …`: glue over the `edxml` crate.

use std::process::ExitCode;

use crate::lang::Lang;

/// `truc edxml …`
#[derive(Debug, clap::Subcommand)]
pub enum EdxmlCommand {}

pub fn run(cmd: EdxmlCommand, _lang: Lang) -> anyhow::Result<ExitCode> {
    match cmd {}
}
