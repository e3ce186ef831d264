//! Reading an import file (CSV or JSON) into raw records, with every syntax problem found.
//! Meaning (codes, parents, collisions) is checked later, in `plan`.

use serde_json::Value;

use crate::error::ImportProblem;

/// One unit as written in the file, fields trimmed; not yet validated.
#[derive(Debug, Default, Clone)]
pub(crate) struct RawRecord {
    /// 1-based CSV line or JSON array position.
    pub record: u64,
    pub code: String,
    pub name: String,
    /// Empty = derive from the code.
    pub parent: String,
    pub aliases: Vec<String>,
    /// Empty = active.
    pub state: String,
    pub fingerprints: Vec<String>,
    pub groups: Vec<String>,
}

/// A JSON `groups` map entry: group name and the member codes.
#[derive(Debug, Clone)]
pub(crate) struct GroupList {
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct ParsedFile {
    pub records: Vec<RawRecord>,
    pub groups: Vec<GroupList>,
    pub problems: Vec<ImportProblem>,
    /// Records are CSV lines (else JSON array positions), for messages.
    pub line_based: bool,
}

pub(crate) const FIELDS: [&str; 7] = [
    "code",
    "name",
    "parent",
    "aliases",
    "state",
    "fingerprints",
    "groups",
];

/// Parses CSV or JSON: JSON when the first byte that is not white space (after a UTF-8 byte-order
/// mark) is `[` or `{`.
pub(crate) fn parse(bytes: &[u8]) -> ParsedFile {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => ParsedFile {
            problems: vec![ImportProblem::new(
                0,
                "",
                "Tệp nhập rỗng. Cần làm: dùng tệp CSV có dòng tiêu đề code,name,… hoặc tệp JSON (xem schemas/units/README.md).",
                "The import file is empty. What to do: give a CSV file with a header row code,name,… or a JSON file (see schemas/units/README.md).",
            )],
            ..ParsedFile::default()
        },
        Some(b'[' | b'{') => parse_json(bytes),
        Some(_) => parse_csv(bytes),
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_csv(bytes: &[u8]) -> ParsedFile {
    let mut out = ParsedFile {
        line_based: true,
        ..ParsedFile::default()
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            out.problems.push(csv_problem(&e, 1));
            return out;
        }
    };
    // column index of each known field
    let mut columns: [Option<usize>; 7] = [None; 7];
    for (i, h) in headers.iter().enumerate() {
        let key = h.to_ascii_lowercase();
        match FIELDS.iter().position(|f| *f == key) {
            Some(f) if columns[f].is_some() => out.problems.push(ImportProblem::new(
                1,
                key.clone(),
                format!("Cột \"{key}\" xuất hiện hai lần trong dòng tiêu đề. Cần làm: xóa một cột."),
                format!("Column \"{key}\" appears twice in the header row. What to do: remove one of them."),
            )),
            Some(f) => columns[f] = Some(i),
            None => out.problems.push(ImportProblem::new(
                1,
                h,
                format!(
                    "Cột \"{h}\" không được hỗ trợ. Cần làm: dùng các cột {} (sai chính tả sẽ làm mất dữ liệu, nên trục không bỏ qua).",
                    FIELDS.join(",")
                ),
                format!(
                    "Column \"{h}\" is not supported. What to do: use the columns {} (a misspelt column would lose data, so it is not ignored).",
                    FIELDS.join(",")
                ),
            )),
        }
    }
    for (f, name) in [(0, "code"), (1, "name")] {
        if columns[f].is_none() {
            out.problems.push(ImportProblem::new(
                1,
                name,
                format!("Thiếu cột bắt buộc \"{name}\" trong dòng tiêu đề (dòng 1). Cần làm: thêm cột này; dòng đầu tiên phải là tiêu đề, ví dụ code,name,parent,aliases,state,fingerprints,groups."),
                format!("The required column \"{name}\" is missing from the header row (line 1). What to do: add it; the first line must be the header, e.g. code,name,parent,aliases,state,fingerprints,groups."),
            ));
        }
    }
    if !out.problems.is_empty() {
        return out;
    }
    let get = |rec: &csv::StringRecord, f: usize| -> String {
        columns[f].and_then(|i| rec.get(i)).unwrap_or("").to_owned()
    };
    for result in reader.records() {
        match result {
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                out.problems.push(csv_problem(&e, line));
            }
            Ok(rec) => {
                let line = rec.position().map_or(0, csv::Position::line);
                if rec.iter().all(str::is_empty) {
                    continue;
                }
                out.records.push(RawRecord {
                    record: line,
                    code: get(&rec, 0),
                    name: get(&rec, 1),
                    parent: get(&rec, 2),
                    aliases: split_list(&get(&rec, 3)),
                    state: get(&rec, 4),
                    fingerprints: split_list(&get(&rec, 5)),
                    groups: split_list(&get(&rec, 6)),
                });
            }
        }
    }
    out
}

fn csv_problem(e: &csv::Error, line: u64) -> ImportProblem {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => ImportProblem::new(
            line,
            "",
            format!(
                "Dòng có {len} ô nhưng dòng tiêu đề có {expected_len} cột. Cần làm: kiểm tra dấu phẩy thừa/thiếu; ô chứa dấu phẩy phải đặt trong ngoặc kép."
            ),
            format!(
                "The line has {len} fields but the header has {expected_len} columns. What to do: check for a missing or extra comma; a field containing a comma must be in double quotes."
            ),
        ),
        csv::ErrorKind::Utf8 { .. } => ImportProblem::new(
            line,
            "",
            "Dòng không phải văn bản UTF-8. Cần làm: lưu tệp với mã hóa UTF-8 (Excel: \"CSV UTF-8\").",
            "The line is not UTF-8 text. What to do: save the file as UTF-8 (Excel: \"CSV UTF-8\").",
        ),
        _ => ImportProblem::new(
            line,
            "",
            format!("Không đọc được dòng CSV: {e}. Cần làm: sửa dòng này."),
            format!("The CSV line cannot be read: {e}. What to do: fix this line."),
        ),
    }
}

fn parse_json(bytes: &[u8]) -> ParsedFile {
    let mut out = ParsedFile::default();
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            out.problems.push(ImportProblem::new(
                0,
                "",
                format!(
                    "JSON sai cú pháp ở dòng {}, cột {}: {e}. Cần làm: sửa cú pháp JSON.",
                    e.line(),
                    e.column()
                ),
                format!(
                    "The JSON is malformed at line {}, column {}: {e}. What to do: fix the JSON syntax.",
                    e.line(),
                    e.column()
                ),
            ));
            return out;
        }
    };
    let units = match value {
        Value::Array(units) => units,
        Value::Object(mut top) => {
            for key in top.keys() {
                if key != "units" && key != "groups" {
                    out.problems.push(ImportProblem::new(
                        0,
                        key.clone(),
                        format!("Khóa \"{key}\" ở cấp ngoài cùng không được hỗ trợ. Cần làm: chỉ dùng \"units\" và \"groups\"."),
                        format!("Top-level key \"{key}\" is not supported. What to do: use only \"units\" and \"groups\"."),
                    ));
                }
            }
            if let Some(groups) = top.remove("groups") {
                json_groups(groups, &mut out);
            }
            match top.remove("units") {
                Some(Value::Array(units)) => units,
                None => Vec::new(),
                Some(_) => {
                    out.problems.push(ImportProblem::new(
                        0,
                        "units",
                        "\"units\" phải là một mảng các đơn vị. Cần làm: viết \"units\": [ {\"code\": …, \"name\": …}, … ].",
                        "\"units\" must be an array of units. What to do: write \"units\": [ {\"code\": …, \"name\": …}, … ].",
                    ));
                    Vec::new()
                }
            }
        }
        _ => {
            out.problems.push(ImportProblem::new(
                0,
                "",
                "Tệp JSON phải là một mảng đơn vị hoặc một đối tượng {\"units\": […], \"groups\": {…}}.",
                "A JSON file must be an array of units or an object {\"units\": […], \"groups\": {…}}.",
            ));
            return out;
        }
    };
    for (i, unit) in units.into_iter().enumerate() {
        let record = i as u64 + 1;
        let Value::Object(map) = unit else {
            out.problems.push(ImportProblem::new(
                record,
                "",
                "Mỗi phần tử của danh sách đơn vị phải là một đối tượng {\"code\": …, \"name\": …}.",
                "Each element of the unit list must be an object {\"code\": …, \"name\": …}.",
            ));
            continue;
        };
        let mut raw = RawRecord {
            record,
            ..RawRecord::default()
        };
        for (key, v) in map {
            match key.as_str() {
                "code" => raw.code = json_string(record, &key, v, &mut out.problems),
                "name" => raw.name = json_string(record, &key, v, &mut out.problems),
                "parent" => raw.parent = json_string(record, &key, v, &mut out.problems),
                "state" => raw.state = json_string(record, &key, v, &mut out.problems),
                "aliases" => raw.aliases = json_list(record, &key, v, &mut out.problems),
                "fingerprints" => raw.fingerprints = json_list(record, &key, v, &mut out.problems),
                "groups" => raw.groups = json_list(record, &key, v, &mut out.problems),
                _ => out.problems.push(ImportProblem::new(
                    record,
                    key.clone(),
                    format!(
                        "Khóa \"{key}\" không được hỗ trợ. Cần làm: dùng các khóa {} (sai chính tả sẽ làm mất dữ liệu, nên trục không bỏ qua).",
                        FIELDS.join(", ")
                    ),
                    format!(
                        "Key \"{key}\" is not supported. What to do: use the keys {} (a misspelt key would lose data, so it is not ignored).",
                        FIELDS.join(", ")
                    ),
                )),
            }
        }
        out.records.push(raw);
    }
    out
}

fn json_groups(groups: Value, out: &mut ParsedFile) {
    let Value::Object(groups) = groups else {
        out.problems.push(ImportProblem::new(
            0,
            "groups",
            "\"groups\" phải là một đối tượng {\"tên nhóm\": [mã, …]}.",
            "\"groups\" must be an object {\"group name\": [code, …]}.",
        ));
        return;
    };
    for (name, members) in groups {
        let field = format!("groups.{name}");
        let members = json_list(0, &field, members, &mut out.problems);
        out.groups.push(GroupList { name, members });
    }
}

fn json_string(record: u64, key: &str, v: Value, problems: &mut Vec<ImportProblem>) -> String {
    match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Null => String::new(),
        other => {
            problems.push(ImportProblem::new(
                record,
                key,
                format!("\"{key}\" phải là chuỗi, không phải {other}. Cần làm: đặt giá trị trong ngoặc kép."),
                format!("\"{key}\" must be a string, not {other}. What to do: put the value in double quotes."),
            ));
            String::new()
        }
    }
}

fn json_list(record: u64, key: &str, v: Value, problems: &mut Vec<ImportProblem>) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::String(s) => split_list(&s),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_owned()),
                    Value::String(_) => {}
                    other => problems.push(ImportProblem::new(
                        record,
                        key,
                        format!("Phần tử {other} của \"{key}\" phải là chuỗi. Cần làm: đặt giá trị trong ngoặc kép."),
                        format!("Item {other} of \"{key}\" must be a string. What to do: put the value in double quotes."),
                    )),
                }
            }
            out
        }
        other => {
            problems.push(ImportProblem::new(
                record,
                key,
                format!("\"{key}\" phải là mảng chuỗi, không phải {other}."),
                format!("\"{key}\" must be an array of strings, not {other}."),
            ));
            Vec::new()
        }
    }
}
