//! The language of what the CLI prints: Vietnamese first, English on request
//! (`--lang en` or `TRUC_LANG=en`).

/// Which language user-facing text is printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// Tiếng Việt (default).
    #[default]
    Vi,
    /// English.
    En,
}

impl Lang {
    /// Picks the text for this language from a Vietnamese/English pair.
    pub fn pick<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}
