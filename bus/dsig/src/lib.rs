//! XML signatures.
