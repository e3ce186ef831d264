//! The lenient reader must never panic, whatever the bytes. Whatever it accepts, the canonical writer must turn
//! into a package that reads back to the same model, reports no new kind of problem, and writes the same bytes
//! again (the canonical form is a fixed point).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Content problems the writer keeps on purpose (a value kept as sent, a gap in the data): reading the canonical
/// form reports them again. Every other finding is about the form, and the canonical form has none.
const PERSISTENT: &[&str] = &["bad_date", "bad_number", "bad_unit_code", "missing_field", "unreferenced_attachment"];

fuzz_target!(|data: &[u8]| {
    let limits = edxml::Limits::default();
    if let Ok(parsed) = edxml::read(data, &limits) {
        let canonical = edxml::to_bytes(&parsed.package);
        match edxml::read(&canonical, &limits) {
            Ok(again) => {
                let formal: Vec<&str> =
                    again.findings.iter().map(|f| f.code).filter(|c| !PERSISTENT.contains(c)).collect();
                assert!(formal.is_empty(), "canonical form has findings: {formal:?}");
                assert_eq!(again.package, parsed.package, "canonical form changed the model");
                assert_eq!(edxml::to_bytes(&again.package), canonical, "canonical form is not a fixed point");
            }
            Err(rejected) => panic!("canonical form rejected: {rejected}"),
        }
    }
});
