//! The unit directory as the relay, the HTTP edge and an operator use it: import, resolve, expand,
//! replace, reject, reopen.

// Test code: a panic here is a failed test, not a crash on the message path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use directory::{Directory, DirectoryError, ImportProblem, Unit, UnitState, fingerprint};
use store::Store;

fn open() -> (tempfile::TempDir, Store, Directory) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let dir = Directory::open(&store).unwrap();
    (tmp, store, dir)
}

fn import(dir: &Directory, text: &str) -> directory::ImportReport {
    match dir.import(text.as_bytes(), &mut |_, _| {}) {
        Ok(r) => r,
        Err(e) => panic!("import failed: {}", e.message_en()),
    }
}

fn import_err(dir: &Directory, text: &str) -> Vec<ImportProblem> {
    match dir.import(text.as_bytes(), &mut |_, _| {}) {
        Ok(r) => panic!("import should fail, got {r:?}"),
        Err(DirectoryError::Import { problems }) => problems,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fn codes(units: &[Unit]) -> Vec<&str> {
    units.iter().map(|u| u.code.as_str()).collect()
}

/// A province with two districts, one commune each, and a ministry.
const SMALL: &str = "\
code,name,parent,aliases,state,fingerprints,groups
000.00.00.H41,Ủy ban nhân dân tỉnh Khánh Hòa,,T41;KH,active,,tinh
000.00.01.H41,UBND thành phố Nha Trang,,,,,huyen
000.00.02.H41,UBND huyện Cam Lâm,000.00.00.H41,,,,huyen
000.01.01.H41,UBND phường Lộc Thọ,,X410101,,,xa
000.01.02.H41,UBND xã Cam Hải Đông,,,suspended,,xa
000.00.00.G01,Bộ Nội vụ,,,,,bo
";

#[test]
fn old_codes_resolve_to_the_current_unit() {
    let (_t, _s, dir) = open();
    let report = import(&dir, SMALL);
    assert_eq!(report.units, 6);
    assert_eq!(report.aliases, 3);
    assert_eq!(report.groups, 4);
    assert_eq!(dir.len().unwrap(), 6);
    for old in ["T41", "KH", " T41 "] {
        let unit = dir.resolve(old).unwrap().unwrap();
        assert_eq!(unit.code, "000.00.00.H41");
        assert_eq!(unit.name, "Ủy ban nhân dân tỉnh Khánh Hòa");
    }
    assert_eq!(
        dir.resolve("X410101").unwrap().unwrap().code,
        "000.01.01.H41"
    );
    assert_eq!(
        dir.resolve("000.00.00.G01").unwrap().unwrap().name,
        "Bộ Nội vụ"
    );
    assert_eq!(dir.resolve("T42").unwrap(), None);
    assert_eq!(dir.resolve("000.00.00.H42").unwrap(), None);
}

#[test]
fn parents_come_from_the_file_or_from_the_code() {
    let (_t, _s, dir) = open();
    import(&dir, SMALL);
    let unit = |c: &str| dir.resolve(c).unwrap().unwrap();
    assert_eq!(unit("000.00.00.H41").parent, None);
    assert_eq!(
        unit("000.00.01.H41").parent.as_deref(),
        Some("000.00.00.H41")
    ); // derived
    assert_eq!(
        unit("000.00.02.H41").parent.as_deref(),
        Some("000.00.00.H41")
    ); // explicit
    assert_eq!(
        unit("000.01.02.H41").parent.as_deref(),
        Some("000.00.02.H41")
    ); // derived
    assert_eq!(
        codes(&dir.children("000.00.00.H41").unwrap()),
        ["000.00.01.H41", "000.00.02.H41"]
    );
    // list --under is recursive, sorted, without the unit itself; an old code works too
    assert_eq!(
        codes(&dir.list(Some("T41")).unwrap()),
        [
            "000.00.01.H41",
            "000.00.02.H41",
            "000.01.01.H41",
            "000.01.02.H41"
        ]
    );
    assert_eq!(dir.list(None).unwrap().len(), 6);
    assert!(dir.list(Some("000.01.01.H41")).unwrap().is_empty());
}

#[test]
fn expand_turns_recipient_addresses_into_units() {
    let (_t, _s, dir) = open();
    import(&dir, SMALL);
    assert_eq!(codes(&dir.expand("KH").unwrap()), ["000.00.00.H41"]);
    assert_eq!(
        codes(&dir.expand("000.00.00.G01").unwrap()),
        ["000.00.00.G01"]
    );
    assert_eq!(
        codes(&dir.expand("group:xa").unwrap()),
        ["000.01.01.H41", "000.01.02.H41"]
    );
    assert_eq!(
        codes(&dir.expand("children:000.00.00.H41").unwrap()),
        [
            "000.00.01.H41",
            "000.00.02.H41",
            "000.01.01.H41",
            "000.01.02.H41"
        ]
    );
    // a unit without children is a known address with no units under it
    assert!(dir.expand("children:000.00.00.G01").unwrap().is_empty());
    // suspended units are returned too; the relay decides
    let xa = dir.expand("group:xa").unwrap();
    assert_eq!(xa[1].state, UnitState::Suspended);

    for address in ["000.00.00.H42", "group:nobody", "children:000.00.00.H42"] {
        let e = dir.expand(address).unwrap_err();
        assert_eq!(e.code(), "unknown_recipient", "{address}");
        assert!(e.message_en().contains(address), "{}", e.message_en());
        assert!(
            e.message_vi().contains("không có trong danh bạ"),
            "{}",
            e.message_vi()
        );
    }
    let e = dir.expand("28.22.H17").unwrap_err();
    assert_eq!(e.code(), "unknown_recipient");
    assert!(
        e.message_en().contains("has 3 groups"),
        "{}",
        e.message_en()
    );
}

#[test]
fn reimport_replaces_units_and_their_indexes_cleanly() {
    let (_t, _s, dir) = open();
    let fp_a = fingerprint(b"cert A");
    let fp_b = fingerprint(b"cert B");
    import(
        &dir,
        &format!(
            "code,name,aliases,fingerprints,groups,parent\n\
             000.00.00.H41,Khánh Hòa,T41;KH,{fp_a},tinh;mien_trung,\n\
             000.00.00.H42,Ninh Thuận,T42,{fp_b},tinh,\n\
             000.00.01.H41,Nha Trang,,,,000.00.00.H41\n"
        ),
    );
    // H41 loses KH, mien_trung and cert A; H42 takes KH and cert A; Nha Trang moves to H42
    let report = import(
        &dir,
        &format!(
            "code,name,aliases,fingerprints,groups,parent\n\
             000.00.00.H41,Tỉnh Khánh Hòa,T41,,tinh,\n\
             000.00.00.H42,Tỉnh Ninh Thuận,T42;KH,{fp_a};{fp_b},tinh,\n\
             000.00.01.H41,Nha Trang,,,,000.00.00.H42\n"
        ),
    );
    assert_eq!((report.created, report.replaced), (0, 3));
    assert_eq!(dir.len().unwrap(), 3);
    let h41 = dir.resolve("000.00.00.H41").unwrap().unwrap();
    assert_eq!(h41.name, "Tỉnh Khánh Hòa");
    assert_eq!(h41.aliases, ["T41"]);
    assert!(h41.fingerprints.is_empty());
    assert_eq!(dir.resolve("KH").unwrap().unwrap().code, "000.00.00.H42");
    assert_eq!(
        dir.by_fingerprint(&fp_a).unwrap().unwrap().code,
        "000.00.00.H42"
    );
    assert!(dir.group("mien_trung").unwrap().is_empty());
    assert!(dir.expand("group:mien_trung").is_err());
    assert_eq!(
        codes(&dir.group("tinh").unwrap()),
        ["000.00.00.H41", "000.00.00.H42"]
    );
    assert!(dir.children("000.00.00.H41").unwrap().is_empty());
    assert_eq!(
        codes(&dir.children("000.00.00.H42").unwrap()),
        ["000.00.01.H41"]
    );
    // search follows the new name, not the old one
    assert_eq!(
        codes(&dir.search("tinh khanh hoa", 10).unwrap()),
        ["000.00.00.H41"]
    );
    // a unit not in the file is left alone
    import(&dir, "code,name\n000.00.00.H43,Bình Thuận\n");
    assert_eq!(dir.len().unwrap(), 4);
    assert_eq!(dir.resolve("T42").unwrap().unwrap().name, "Tỉnh Ninh Thuận");
}

#[test]
fn a_bad_record_writes_nothing_and_every_problem_is_listed() {
    let (_t, _s, dir) = open();
    import(&dir, "code,name,aliases\n000.00.00.H41,Khánh Hòa,T41\n");
    let problems = import_err(
        &dir,
        "code,name,parent,aliases,state,fingerprints\n\
         000.00.00.H42,Ninh Thuận,,T41,,\n\
         28.22.H17,Xã sai mã,,,,\n\
         000.00.01.H42,,000.00.00.H99,,paused,abc\n\
         000.00.00.H42,Lặp lại,,,,\n\
         000.00.00.H43,Bình Thuận,,000.00.00.H41,,\n",
    );
    let got: Vec<(u64, &str)> = problems
        .iter()
        .map(|p| (p.record, p.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "aliases"), // T41 already routes to H41
            (3, "code"),    // malformed
            (4, "name"),
            (4, "state"),
            (4, "fingerprints"),
            (4, "parent"),  // H99 nowhere
            (5, "code"),    // duplicate of line 2
            (6, "aliases"), // an old code that is another unit's current code
        ],
        "{problems:#?}"
    );
    assert!(
        problems[0]
            .en
            .contains("already routes to unit 000.00.00.H41"),
        "{}",
        problems[0].en
    );
    assert!(problems[1].vi.contains("có 3 nhóm"), "{}", problems[1].vi);
    assert!(
        problems[1].en.contains("\"28.22.H17\" has 3 groups"),
        "{}",
        problems[1].en
    );
    assert!(
        problems[5]
            .en
            .contains("000.00.00.H99 is neither in the file nor in the directory")
    );
    assert!(
        problems[6].en.contains("already appears at line 2"),
        "{}",
        problems[6].en
    );
    for p in &problems {
        assert!(
            p.en.contains("What to do") && p.vi.contains("Cần làm"),
            "{p:?}"
        );
    }
    // nothing written: the valid records of the file are not there either
    assert_eq!(dir.len().unwrap(), 1);
    assert_eq!(dir.resolve("000.00.00.H42").unwrap(), None);
    assert_eq!(dir.resolve("000.00.00.H43").unwrap(), None);
    assert_eq!(dir.resolve("T41").unwrap().unwrap().code, "000.00.00.H41");
}

#[test]
fn csv_shape_problems_name_the_line() {
    let (_t, _s, dir) = open();
    let p = import_err(&dir, "code,nmae,parent\n000.00.00.H41,A,\n");
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!((p[0].record, p[0].field.as_str()), (1, "nmae"));
    assert!(p[0].en.contains("not supported"));
    assert_eq!((p[1].record, p[1].field.as_str()), (1, "name"));
    assert!(p[1].en.contains("required column \"name\" is missing"));

    let p = import_err(&dir, "code,name\n000.00.00.H41,A\n000.00.00.H42,B,extra\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].record, 3);
    assert!(
        p[0].en.contains("3 fields but the header has 2"),
        "{}",
        p[0].en
    );

    let p = import_err(&dir, "  \n");
    assert!(p[0].en.contains("empty"));
    assert_eq!(dir.len().unwrap(), 0);
}

#[test]
fn json_imports_arrays_and_group_maps() {
    let (_t, _s, dir) = open();
    let report = import(
        &dir,
        r#"[
          {"code": "000.00.00.H41", "name": "Khánh Hòa", "aliases": ["T41"], "groups": ["tinh"]},
          {"code": "000.00.01.H41", "name": "Nha Trang", "state": "suspended"}
        ]"#,
    );
    assert_eq!(report.units, 2);
    assert_eq!(
        dir.resolve("000.00.01.H41").unwrap().unwrap().state,
        UnitState::Suspended
    );
    // the object form: groups may name units of the file or already in the directory
    let report = import(
        &dir,
        r#"{"units": [{"code": "000.00.00.G01", "name": "Bộ Nội vụ", "groups": ["bo"]}],
            "groups": {"trung_uong": ["000.00.00.G01", "000.00.00.H41"], "bo": ["000.00.00.G01"]}}"#,
    );
    assert_eq!(report.units, 1);
    assert_eq!(report.groups, 2);
    assert_eq!(
        codes(&dir.expand("group:trung_uong").unwrap()),
        ["000.00.00.G01", "000.00.00.H41"]
    );
    let h41 = dir.resolve("T41").unwrap().unwrap();
    assert_eq!(h41.groups, ["tinh", "trung_uong"]);
    assert_eq!(h41.name, "Khánh Hòa"); // otherwise unchanged

    let p = import_err(
        &dir,
        r#"{"units": [{"code": "000.00.00.H42", "name": 5, "parnet": "x"}, "oops"],
            "groups": {"tinh": ["T41", "000.00.00.H99"], "bad name": []}}"#,
    );
    let got: Vec<(u64, &str)> = p.iter().map(|p| (p.record, p.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (0, "groups.bad name"),
            (0, "groups.tinh"),
            (0, "groups.tinh"),
            (1, "name"),
            (1, "parnet"),
            (1, "name"),
            (2, ""),
        ],
        "{p:#?}"
    );
    assert!(
        p[1].en.contains("T41 is an old code of 000.00.00.H41"),
        "{}",
        p[1].en
    );

    let p = import_err(&dir, "[{\"code\": \"000.00.00.H42\",]");
    assert_eq!(p.len(), 1);
    assert!(p[0].en.contains("malformed at line 1"), "{}", p[0].en);
    assert_eq!(dir.len().unwrap(), 3);
}

#[test]
fn children_imported_before_their_parent_are_linked_when_it_arrives() {
    let (_t, _s, dir) = open();
    import(
        &dir,
        "code,name\n000.01.01.H41,Lộc Thọ\n000.00.01.H41,Nha Trang\n",
    );
    assert_eq!(dir.resolve("000.00.01.H41").unwrap().unwrap().parent, None);
    import(&dir, "code,name\n000.00.00.H41,Khánh Hòa\n");
    assert_eq!(
        dir.resolve("000.00.01.H41")
            .unwrap()
            .unwrap()
            .parent
            .as_deref(),
        Some("000.00.00.H41")
    );
    assert_eq!(
        codes(&dir.expand("children:000.00.00.H41").unwrap()),
        ["000.00.01.H41", "000.01.01.H41"]
    );
}

#[test]
fn parent_loops_are_refused() {
    let (_t, _s, dir) = open();
    let p = import_err(
        &dir,
        "code,name,parent\n000.00.00.H41,A,000.00.00.H42\n000.00.00.H42,B,000.00.00.H41\n000.00.00.H43,C,000.00.00.H43\n",
    );
    let got: Vec<(u64, &str)> = p.iter().map(|p| (p.record, p.field.as_str())).collect();
    assert_eq!(got, [(2, "parent"), (3, "parent"), (4, "parent")], "{p:#?}");
    assert!(
        p[0].en
            .contains("000.00.00.H41 → 000.00.00.H42 → 000.00.00.H41"),
        "{}",
        p[0].en
    );
    assert!(p[2].en.contains("cannot be its own parent"));
    // a loop through a unit already in the directory
    import(
        &dir,
        "code,name,parent\n000.00.00.H41,A,\n000.00.00.H42,B,000.00.00.H41\n",
    );
    let p = import_err(&dir, "code,name,parent\n000.00.00.H41,A,000.00.00.H42\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].en.contains("loops"));
    assert!(dir.list(Some("000.00.00.H41")).unwrap().len() == 1);
}

#[test]
fn malformed_codes_get_messages_that_say_what_to_fix() {
    let (_t, _s, dir) = open();
    import(&dir, SMALL);
    let e = dir.require("000.010.00.H41").unwrap_err();
    assert_eq!(e.code(), "bad_unit_code");
    assert!(
        e.message_en()
            .contains("second group \"010\" must be 2 digits"),
        "{}",
        e.message_en()
    );
    assert!(
        e.message_vi()
            .contains("nhóm thứ hai \"010\" phải là 2 chữ số"),
        "{}",
        e.message_vi()
    );
    let e = dir.list(Some("000.00.00.h41")).unwrap_err();
    assert_eq!(e.code(), "bad_unit_code");
    let e = dir.children("000.00.00.H49").unwrap_err();
    assert_eq!(e.code(), "unknown_unit");
    assert!(
        e.message_en()
            .contains("000.00.00.H49 is not in the directory")
    );

    let e = dir
        .upsert(Unit {
            code: "000.00.00.X1".into(),
            name: "Bad".into(),
            parent: None,
            aliases: vec![],
            state: UnitState::Active,
            fingerprints: vec![],
            groups: vec![],
        })
        .unwrap_err();
    assert_eq!(e.code(), "bad_unit_code");
    assert!(
        e.message_en().contains("fourth group \"X1\""),
        "{}",
        e.message_en()
    );
    assert_eq!(dir.len().unwrap(), 6);
}

#[test]
fn upsert_keeps_every_index_right() {
    let (_t, _s, dir) = open();
    import(&dir, SMALL);
    let mut unit = dir.resolve("000.01.01.H41").unwrap().unwrap();
    unit.aliases = vec!["LT".into()];
    unit.groups = vec!["xa".into(), "ven_bien".into()];
    unit.fingerprints = vec![fingerprint(b"loc tho").to_uppercase()];
    dir.upsert(unit).unwrap();
    assert_eq!(dir.resolve("X410101").unwrap(), None);
    assert_eq!(dir.resolve("LT").unwrap().unwrap().code, "000.01.01.H41");
    assert_eq!(codes(&dir.group("ven_bien").unwrap()), ["000.01.01.H41"]);
    assert_eq!(
        dir.by_fingerprint(&fingerprint(b"loc tho"))
            .unwrap()
            .unwrap()
            .code,
        "000.01.01.H41"
    );
    assert_eq!(dir.len().unwrap(), 6);
    // an old code of another unit cannot be taken
    let mut other = dir.resolve("000.00.00.G01").unwrap().unwrap();
    other.aliases = vec!["T41".into()];
    let e = dir.upsert(other).unwrap_err();
    assert_eq!(e.code(), "invalid_unit");
    assert_eq!(e.problems()[0].field, "aliases");
    assert!(
        e.message_en()
            .contains("T41 already routes to unit 000.00.00.H41"),
        "{}",
        e.message_en()
    );
    // a new unit through upsert
    dir.upsert(Unit {
        code: "000.02.01.H41".into(),
        name: "UBND phường Vĩnh Hải".into(),
        parent: None,
        aliases: vec![],
        state: UnitState::Active,
        fingerprints: vec![],
        groups: vec!["xa".into()],
    })
    .unwrap();
    assert_eq!(dir.len().unwrap(), 7);
    assert_eq!(
        dir.resolve("000.02.01.H41")
            .unwrap()
            .unwrap()
            .parent
            .as_deref(),
        Some("000.00.01.H41")
    );
    assert_eq!(dir.group("xa").unwrap().len(), 3);
}

#[test]
fn suspension_is_recorded_and_reversible() {
    let (_t, _s, dir) = open();
    import(&dir, SMALL);
    assert_eq!(
        dir.resolve("000.01.02.H41").unwrap().unwrap().state,
        UnitState::Suspended
    );
    dir.set_state("T41", UnitState::Suspended).unwrap();
    assert_eq!(
        dir.resolve("000.00.00.H41").unwrap().unwrap().state,
        UnitState::Suspended
    );
    assert_eq!(dir.expand("KH").unwrap()[0].state, UnitState::Suspended);
    dir.set_state("000.00.00.H41", UnitState::Active).unwrap();
    assert_eq!(dir.resolve("KH").unwrap().unwrap().state, UnitState::Active);
    // the rest of the record is untouched
    assert_eq!(dir.resolve("KH").unwrap().unwrap().aliases, ["KH", "T41"]);
    assert_eq!(
        dir.set_state("000.00.00.H49", UnitState::Active)
            .unwrap_err()
            .code(),
        "unknown_unit"
    );
}

#[test]
fn certificates_find_their_unit_by_fingerprint() {
    let (_t, _s, dir) = open();
    let der = b"\x30\x82 a certificate's DER";
    let fp = fingerprint(der);
    assert_eq!(fp.len(), 64);
    assert_eq!(fp, fp.to_lowercase());
    // openssl prints upper-case with colons: accepted in the file and in lookups
    let openssl_style: String = fp
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    import(
        &dir,
        &format!("code,name,fingerprints\n000.00.00.H41,Khánh Hòa,{openssl_style}\n"),
    );
    assert_eq!(
        dir.resolve("000.00.00.H41").unwrap().unwrap().fingerprints,
        vec![fp.clone()]
    );
    assert_eq!(
        dir.by_fingerprint(&fp).unwrap().unwrap().code,
        "000.00.00.H41"
    );
    assert_eq!(
        dir.by_fingerprint(&openssl_style).unwrap().unwrap().code,
        "000.00.00.H41"
    );
    assert_eq!(dir.by_fingerprint(&fingerprint(b"another")).unwrap(), None);
    // one certificate, one unit
    let p = import_err(
        &dir,
        &format!("code,name,fingerprints\n000.00.00.H42,Ninh Thuận,{fp}\n"),
    );
    assert!(
        p[0].en.contains("already belongs to unit 000.00.00.H41"),
        "{}",
        p[0].en
    );
}

#[test]
fn search_ignores_case_and_vietnamese_marks() {
    let (_t, _s, dir) = open();
    import(&dir, SMALL);
    assert_eq!(
        codes(&dir.search("cam hai dong", 10).unwrap()),
        ["000.01.02.H41"]
    );
    assert_eq!(codes(&dir.search("NỘI VỤ", 10).unwrap()), ["000.00.00.G01"]);
    // an exact code or old code comes first
    assert_eq!(dir.search("T41", 10).unwrap()[0].code, "000.00.00.H41");
    assert_eq!(dir.search("ubnd", 2).unwrap().len(), 2);
    assert!(dir.search("không có", 10).unwrap().is_empty());
}

#[test]
fn the_directory_survives_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = Store::open(tmp.path()).unwrap();
        let dir = Directory::open(&store).unwrap();
        import(&dir, SMALL);
        dir.set_state("000.00.00.G01", UnitState::Suspended)
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(dir.flush()).unwrap();
    }
    let store = Store::open(tmp.path()).unwrap();
    let dir = Directory::open(&store).unwrap();
    assert_eq!(dir.len().unwrap(), 6);
    assert_eq!(dir.resolve("KH").unwrap().unwrap().code, "000.00.00.H41");
    assert_eq!(dir.expand("children:T41").unwrap().len(), 4);
    assert_eq!(
        dir.resolve("000.00.00.G01").unwrap().unwrap().state,
        UnitState::Suspended
    );
}

#[test]
fn progress_reaches_the_total_and_sample_directory_is_national_shaped() {
    let (_t, _s, dir) = open();
    let csv = directory::sample::national_csv(3_000);
    let mut calls = Vec::new();
    let report = dir
        .import(&csv, &mut |done, total| calls.push((done, total)))
        .unwrap();
    assert_eq!(report.units, 3_000);
    assert_eq!(calls.last(), Some(&(3_000, 3_000)));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(calls.len() > 2);
    assert_eq!(dir.group("tinh").unwrap().len(), 63);
    let hanoi = dir.search("tỉnh Hà Nội", 1).unwrap();
    assert_eq!(hanoi[0].code, directory::sample::province_code(24));
    let under = dir.expand(&format!("children:{}", hanoi[0].code)).unwrap();
    assert!(under.len() > 11, "{}", under.len());
    assert!(under.iter().all(|u| u.code.ends_with(".H24")));
}
