//! Checking parsed records against each other and against the directory, and turning them into
//! one atomic batch (units and every index). Runs under the directory's writer lock, so what it
//! reads does not change before the batch is applied.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use edxml::UnitCode;
use store::{Batch, KvTree, StoreError};

use crate::error::ImportProblem;
use crate::parse::{ParsedFile, RawRecord};
use crate::{ImportReport, Unit, UnitState, decode_unit, encode_unit, fold, keys, utf8};

/// A batch ready to apply and what it will have done.
pub(crate) struct Planned {
    pub batch: Batch,
    pub report: ImportReport,
}

/// A record whose own fields are valid.
struct Candidate {
    record: u64,
    unit: Unit,
    /// The code's structural parent, when it has one.
    structural: Option<String>,
}

pub(crate) fn read_count(tree: &KvTree) -> Result<u64, StoreError> {
    Ok(match tree.get(keys::COUNT)? {
        Some(v) if v.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v);
            u64::from_be_bytes(b)
        }
        _ => 0,
    })
}

/// Read-through view of the directory as it is now, with memoised lookups.
struct Current<'t> {
    tree: &'t KvTree,
    units: HashMap<String, Option<Unit>>,
}

impl Current<'_> {
    fn unit(&mut self, code: &str) -> Result<Option<&Unit>, StoreError> {
        if !self.units.contains_key(code) {
            let key = keys::one(keys::UNIT, code);
            let unit = match self.tree.get(&key)? {
                Some(bytes) => Some(decode_unit(&key, &bytes)?),
                None => None,
            };
            self.units.insert(code.to_owned(), unit);
        }
        Ok(self.units.get(code).and_then(Option::as_ref))
    }

    fn exists(&mut self, code: &str) -> Result<bool, StoreError> {
        Ok(self.unit(code)?.is_some())
    }

    fn alias_owner(&self, alias: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tree
            .get(keys::one(keys::ALIAS, alias))?
            .map(|v| utf8(&v)))
    }

    fn fingerprint_owner(&self, fp: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tree
            .get(keys::one(keys::FINGERPRINT, fp))?
            .map(|v| utf8(&v)))
    }
}

/// Alias and group-name shape: 1–64 of `A–Z a–z 0–9 . _ -` (no spaces, `;`, `:` or `/`, which
/// separate list values and address kinds).
fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn sorted_dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Checks `file` and plans its batch. The outer error is the store failing; the inner one is the
/// list of problems (non-empty), in record order.
pub(crate) fn plan(
    tree: &KvTree,
    file: ParsedFile,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Result<Planned, Vec<ImportProblem>>, StoreError> {
    let ParsedFile {
        records,
        groups: group_lists,
        mut problems,
        line_based,
    } = file;
    let mut current = Current {
        tree,
        units: HashMap::new(),
    };

    // 1. Each record on its own.
    let mut candidates: Vec<Candidate> = Vec::with_capacity(records.len());
    let mut explicit_parent: Vec<Option<String>> = Vec::with_capacity(records.len());
    for raw in records {
        if let Some((c, parent)) = check_record(raw, &mut problems) {
            candidates.push(c);
            explicit_parent.push(parent);
        }
    }

    // 2. Codes unique in the file.
    let mut in_file: HashMap<String, usize> = HashMap::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        if let Some(&first) = in_file.get(&c.unit.code) {
            let (at_vi, at_en) = place(line_based, candidates[first].record);
            problems.push(ImportProblem::new(
                c.record,
                "code",
                format!("Mã {} đã có ở {at_vi}; mỗi đơn vị chỉ được xuất hiện một lần. Cần làm: gộp hai bản ghi hoặc xóa một.", c.unit.code),
                format!("Code {} already appears at {at_en}; each unit may appear only once. What to do: merge the two records or remove one.", c.unit.code),
            ));
        } else {
            in_file.insert(c.unit.code.clone(), i);
        }
    }

    // 3. Old codes: not a current code, not claimed twice.
    let mut alias_claims: HashMap<String, usize> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let code = &c.unit.code;
        if let Some(owner) = current.alias_owner(code)?
            && owner != *code
            && !in_file.contains_key(&owner)
        {
            problems.push(ImportProblem::new(
                c.record,
                "code",
                format!("Mã {code} đang là mã cũ của đơn vị {owner} trong danh bạ. Cần làm: nhập lại {owner} không kèm mã cũ này (trong cùng tệp), hoặc dùng mã khác."),
                format!("Code {code} is an old code of unit {owner} in the directory. What to do: re-import {owner} without that old code (in the same file), or use another code."),
            ));
        }
        for alias in &c.unit.aliases {
            if let Some(&j) = in_file.get(alias) {
                let (at_vi, at_en) = place(line_based, candidates[j].record);
                problems.push(ImportProblem::new(
                    c.record,
                    "aliases",
                    format!("Mã cũ {alias} của {code} trùng mã hiện hành của đơn vị ở {at_vi}. Cần làm: xóa mã cũ này khỏi {code}."),
                    format!("Old code {alias} of {code} is the current code of the unit at {at_en}. What to do: remove that old code from {code}."),
                ));
                continue;
            }
            if let Some(&j) = alias_claims.get(alias) {
                let other = &candidates[j].unit.code;
                let (at_vi, at_en) = place(line_based, candidates[j].record);
                problems.push(ImportProblem::new(
                    c.record,
                    "aliases",
                    format!("Mã cũ {alias} đã được gán cho {other} ở {at_vi}; một mã cũ chỉ chuyển tới một đơn vị. Cần làm: giữ mã cũ ở một bản ghi."),
                    format!("Old code {alias} is already given to {other} at {at_en}; an old code routes to one unit only. What to do: keep it on one record."),
                ));
                continue;
            }
            alias_claims.insert(alias.clone(), i);
            if let Some(unit) = current.unit(alias)? {
                let name = unit.name.clone();
                problems.push(ImportProblem::new(
                    c.record,
                    "aliases",
                    format!("Mã cũ {alias} của {code} là mã hiện hành của đơn vị \"{name}\" trong danh bạ. Cần làm: xóa mã cũ này."),
                    format!("Old code {alias} of {code} is the current code of unit \"{name}\" in the directory. What to do: remove that old code."),
                ));
            } else if let Some(owner) = current.alias_owner(alias)?
                && owner != *code
                && !in_file.contains_key(&owner)
            {
                problems.push(ImportProblem::new(
                    c.record,
                    "aliases",
                    format!("Mã cũ {alias} đang chuyển tới đơn vị {owner} trong danh bạ. Cần làm: nhập lại {owner} không kèm mã cũ này (trong cùng tệp), hoặc xóa nó khỏi {code}."),
                    format!("Old code {alias} already routes to unit {owner} in the directory. What to do: re-import {owner} without it (in the same file), or remove it from {code}."),
                ));
            }
        }
    }

    // 4. Fingerprints: one unit each.
    let mut fp_claims: HashMap<String, usize> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let code = &c.unit.code;
        for fp in &c.unit.fingerprints {
            if let Some(&j) = fp_claims.get(fp) {
                let other = &candidates[j].unit.code;
                let (at_vi, at_en) = place(line_based, candidates[j].record);
                problems.push(ImportProblem::new(
                    c.record,
                    "fingerprints",
                    format!("Dấu vân tay chứng thư {fp} đã gán cho {other} ở {at_vi}; mỗi chứng thư thuộc một đơn vị. Cần làm: kiểm tra lại chứng thư của {code}."),
                    format!("Certificate fingerprint {fp} is already given to {other} at {at_en}; a certificate belongs to one unit. What to do: check {code}'s certificate."),
                ));
                continue;
            }
            fp_claims.insert(fp.clone(), i);
            if let Some(owner) = current.fingerprint_owner(fp)?
                && owner != *code
                && !in_file.contains_key(&owner)
            {
                problems.push(ImportProblem::new(
                    c.record,
                    "fingerprints",
                    format!("Dấu vân tay chứng thư {fp} đang thuộc đơn vị {owner} trong danh bạ. Cần làm: kiểm tra lại chứng thư của {code}, hoặc nhập lại {owner} không kèm dấu vân tay này."),
                    format!("Certificate fingerprint {fp} already belongs to unit {owner} in the directory. What to do: check {code}'s certificate, or re-import {owner} without it."),
                ));
            }
        }
    }

    // 5. The JSON groups map: members are units of the file or of the directory.
    let mut group_names: BTreeSet<String> = BTreeSet::new();
    for c in &candidates {
        group_names.extend(c.unit.groups.iter().cloned());
    }
    let mut extra_groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for list in &group_lists {
        let field = format!("groups.{}", list.name);
        if !token_ok(&list.name) {
            problems.push(bad_group(0, &field, &list.name));
            continue;
        }
        group_names.insert(list.name.clone());
        for member in &list.members {
            if let Some(&i) = in_file.get(member) {
                let groups = &mut candidates[i].unit.groups;
                if !groups.contains(&list.name) {
                    groups.push(list.name.clone());
                    groups.sort();
                }
            } else if current.exists(member)? {
                extra_groups
                    .entry(member.clone())
                    .or_default()
                    .push(list.name.clone());
            } else {
                problems.push(unknown_reference(
                    0,
                    &field,
                    member,
                    &alias_claims,
                    &candidates,
                    &current,
                )?);
            }
        }
    }

    // 6. Parents: explicit ones must exist; otherwise the structural parent when it exists.
    let mut orphan_of: Vec<Option<String>> = vec![None; candidates.len()];
    for (i, c) in candidates.iter_mut().enumerate() {
        match explicit_parent[i].take() {
            Some(p) => {
                if p == c.unit.code {
                    problems.push(ImportProblem::new(
                        c.record,
                        "parent",
                        format!("Đơn vị {p} không thể là đơn vị cha của chính nó. Cần làm: để trống cột parent hoặc ghi mã đơn vị cấp trên."),
                        format!("Unit {p} cannot be its own parent. What to do: leave parent empty or give the unit above it."),
                    ));
                } else if in_file.contains_key(&p) || current.exists(&p)? {
                    c.unit.parent = Some(p);
                } else {
                    let record = c.record;
                    let problem = unknown_parent(record, &p, &alias_claims, &current)?;
                    problems.push(problem);
                }
            }
            None => {
                if let Some(sp) = &c.structural {
                    if in_file.contains_key(sp) || current.exists(sp)? {
                        c.unit.parent = Some(sp.clone());
                    } else {
                        orphan_of[i] = Some(sp.clone());
                    }
                }
            }
        }
    }

    // 7. Units already in the directory that change: orphans whose structural parent arrives
    // now, and members added by the groups map.
    let mut touched: BTreeMap<String, Unit> = BTreeMap::new();
    let mut relinked: Vec<(String, String)> = Vec::new(); // (parent, child)
    for c in &candidates {
        if current.exists(&c.unit.code)? {
            continue; // a unit already there has no orphans waiting for it
        }
        for entry in tree.scan_prefix(&keys::under(keys::ORPHAN, &c.unit.code)) {
            let (k, _) = entry?;
            let child = crate::second_part(&k);
            if in_file.contains_key(&child) {
                continue; // its own record decides
            }
            if let Some(unit) = current.unit(&child)? {
                let mut unit = unit.clone();
                unit.parent = Some(c.unit.code.clone());
                relinked.push((c.unit.code.clone(), child.clone()));
                touched.insert(child, unit);
            }
        }
    }
    for (code, groups) in extra_groups {
        let unit = match touched.remove(&code) {
            Some(u) => Some(u),
            None => current.unit(&code)?.cloned(),
        };
        if let Some(mut unit) = unit {
            unit.groups.extend(groups);
            unit.groups = sorted_dedup(std::mem::take(&mut unit.groups));
            touched.insert(code, unit);
        }
    }

    // 8. No parent loops in the resulting directory.
    let mut parent_in_file: HashMap<&str, Option<&str>> = HashMap::new();
    for c in &candidates {
        parent_in_file.insert(&c.unit.code, c.unit.parent.as_deref());
    }
    let mut acyclic: HashSet<String> = HashSet::new();
    for c in &candidates {
        let mut path: Vec<String> = vec![c.unit.code.clone()];
        let mut at = c.unit.code.clone();
        loop {
            if acyclic.contains(&at) {
                break;
            }
            let next = if let Some(p) = parent_in_file.get(at.as_str()) {
                p.map(str::to_owned)
            } else if let Some(u) = touched.get(&at) {
                u.parent.clone()
            } else {
                current.unit(&at)?.and_then(|u| u.parent.clone())
            };
            let Some(next) = next else { break };
            if let Some(start) = path.iter().position(|p| *p == next) {
                if start == 0 {
                    let mut chain = path.clone();
                    chain.push(next);
                    let chain = chain.join(" → ");
                    problems.push(ImportProblem::new(
                        c.record,
                        "parent",
                        format!("Chuỗi đơn vị cha lặp vòng: {chain}. Cần làm: sửa cột parent để mỗi đơn vị có cấp trên khác chính nó."),
                        format!("The parent chain loops: {chain}. What to do: fix the parent column so no unit is above itself."),
                    ));
                }
                // Either reported (start == 0) or reported at the record of a unit on the loop.
                path.clear();
                break;
            }
            path.push(next.clone());
            at = next;
        }
        acyclic.extend(path);
    }

    if !problems.is_empty() {
        problems.sort_by_key(|p| p.record);
        return Ok(Err(problems));
    }

    // 9. The batch. Removals first, then inserts; a key both removed and inserted is inserted.
    let total = candidates.len() as u64;
    let mut removes: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut inserts: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut report = ImportReport {
        units: total,
        groups: group_names.len() as u64,
        ..ImportReport::default()
    };
    for (i, c) in candidates.iter().enumerate() {
        let unit = &c.unit;
        report.aliases += unit.aliases.len() as u64;
        let old = current.unit(&unit.code)?.cloned();
        match &old {
            Some(old) => {
                report.replaced += 1;
                unindex(old, &mut removes);
            }
            None => report.created += 1,
        }
        index(unit, &mut inserts)?;
        if let Some(sp) = &orphan_of[i] {
            inserts.insert(keys::two(keys::ORPHAN, sp, &unit.code), Vec::new());
        }
        if i % 256 == 0 {
            progress(i as u64, total);
        }
    }
    for (parent, child) in &relinked {
        removes.insert(keys::two(keys::ORPHAN, parent, child));
    }
    for unit in touched.values() {
        if let Some(old) = current.unit(&unit.code)? {
            unindex(old, &mut removes);
        }
        index(unit, &mut inserts)?;
    }
    let count = read_count(tree)? + report.created;
    inserts.insert(keys::COUNT.to_vec(), count.to_be_bytes().to_vec());

    let mut batch = Batch::default();
    for key in removes {
        if !inserts.contains_key(&key) {
            batch.remove(key);
        }
    }
    for (key, value) in inserts {
        batch.insert(key, value);
    }
    Ok(Ok(Planned { batch, report }))
}

/// The index keys a stored unit owns (its `o/` key is the caller's business).
fn unindex(old: &Unit, removes: &mut BTreeSet<Vec<u8>>) {
    for a in &old.aliases {
        removes.insert(keys::one(keys::ALIAS, a));
    }
    for f in &old.fingerprints {
        removes.insert(keys::one(keys::FINGERPRINT, f));
    }
    for g in &old.groups {
        removes.insert(keys::two(keys::GROUP, g, &old.code));
    }
    if let Some(p) = &old.parent {
        removes.insert(keys::two(keys::CHILD, p, &old.code));
    } else if let Some(sp) = UnitCode::parse(&old.code).ok().and_then(|c| c.parent()) {
        removes.insert(keys::two(keys::ORPHAN, sp.as_str(), &old.code));
    }
}

fn index(unit: &Unit, inserts: &mut BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), StoreError> {
    let code = &unit.code;
    inserts.insert(keys::one(keys::UNIT, code), encode_unit(unit)?);
    for a in &unit.aliases {
        inserts.insert(keys::one(keys::ALIAS, a), code.as_bytes().to_vec());
    }
    for f in &unit.fingerprints {
        inserts.insert(keys::one(keys::FINGERPRINT, f), code.as_bytes().to_vec());
    }
    for g in &unit.groups {
        inserts.insert(keys::two(keys::GROUP, g, code), Vec::new());
    }
    if let Some(p) = &unit.parent {
        inserts.insert(keys::two(keys::CHILD, p, code), Vec::new());
    }
    let mut text = fold::fold(code);
    for a in &unit.aliases {
        text.push('\n');
        text.push_str(&fold::fold(a));
    }
    text.push('\n');
    text.push_str(&fold::fold(&unit.name));
    inserts.insert(keys::one(keys::SEARCH, code), text.into_bytes());
    Ok(())
}

/// How a record is named in messages: a CSV line or a JSON record.
fn place(line_based: bool, n: u64) -> (String, String) {
    if line_based {
        (format!("dòng {n}"), format!("line {n}"))
    } else {
        (format!("bản ghi {n}"), format!("record {n}"))
    }
}

fn bad_group(record: u64, field: &str, name: &str) -> ImportProblem {
    ImportProblem::new(
        record,
        field,
        format!(
            "Tên nhóm \"{name}\" không hợp lệ: chỉ dùng 1–64 ký tự chữ không dấu, số, '.', '_' hoặc '-'. Cần làm: đổi tên nhóm, ví dụ \"tinh\"."
        ),
        format!(
            "Group name \"{name}\" is not valid: use 1–64 of unaccented letters, digits, '.', '_' or '-'. What to do: rename the group, e.g. \"tinh\"."
        ),
    )
}

/// A parent that is neither in the file nor in the directory.
fn unknown_parent(
    record: u64,
    parent: &str,
    alias_claims: &HashMap<String, usize>,
    current: &Current<'_>,
) -> Result<ImportProblem, StoreError> {
    let owner = if alias_claims.contains_key(parent) {
        None // an old code given in this same file: say so generically below
    } else {
        current.alias_owner(parent)?
    };
    Ok(match owner {
        Some(owner) => ImportProblem::new(
            record,
            "parent",
            format!("Đơn vị cha {parent} là mã cũ của {owner}. Cần làm: ghi mã hiện hành {owner}."),
            format!(
                "Parent {parent} is an old code of {owner}. What to do: write the current code {owner}."
            ),
        ),
        None if alias_claims.contains_key(parent) => ImportProblem::new(
            record,
            "parent",
            format!(
                "Đơn vị cha {parent} là một mã cũ trong tệp này. Cần làm: ghi mã hiện hành của đơn vị đó."
            ),
            format!(
                "Parent {parent} is an old code in this file. What to do: write that unit's current code."
            ),
        ),
        None => ImportProblem::new(
            record,
            "parent",
            format!(
                "Đơn vị cha {parent} không có trong tệp cũng như trong danh bạ. Cần làm: thêm đơn vị {parent} vào tệp (hoặc nhập nó trước), hoặc sửa mã đơn vị cha."
            ),
            format!(
                "Parent {parent} is neither in the file nor in the directory. What to do: add unit {parent} to the file (or import it first), or correct the parent code."
            ),
        ),
    })
}

/// A group member that is neither in the file nor in the directory.
fn unknown_reference(
    record: u64,
    field: &str,
    member: &str,
    alias_claims: &HashMap<String, usize>,
    candidates: &[Candidate],
    current: &Current<'_>,
) -> Result<ImportProblem, StoreError> {
    let owner = match alias_claims.get(member) {
        Some(&i) => Some(candidates[i].unit.code.clone()),
        None => current.alias_owner(member)?,
    };
    Ok(match owner {
        Some(owner) => ImportProblem::new(
            record,
            field,
            format!("{member} là mã cũ của {owner}. Cần làm: ghi mã hiện hành {owner}."),
            format!(
                "{member} is an old code of {owner}. What to do: write the current code {owner}."
            ),
        ),
        None => ImportProblem::new(
            record,
            field,
            format!(
                "Đơn vị {member} không có trong tệp cũng như trong danh bạ. Cần làm: thêm đơn vị vào tệp hoặc sửa mã."
            ),
            format!(
                "Unit {member} is neither in the file nor in the directory. What to do: add the unit to the file or correct the code."
            ),
        ),
    })
}

/// Validates one record's own fields; `None` when its code is unusable (the problem is recorded).
fn check_record(
    raw: RawRecord,
    problems: &mut Vec<ImportProblem>,
) -> Option<(Candidate, Option<String>)> {
    let record = raw.record;
    let code = match UnitCode::parse(&raw.code) {
        Ok(code) => code,
        Err(_) if raw.code.is_empty() => {
            problems.push(ImportProblem::new(
                record,
                "code",
                "Thiếu mã định danh. Cần làm: ghi mã dạng NNN.NN.NN.XNN (ví dụ 000.00.00.H41).",
                "The unit code is missing. What to do: write a code shaped NNN.NN.NN.XNN (e.g. 000.00.00.H41).",
            ));
            return None;
        }
        Err(e) => {
            problems.push(ImportProblem::new(
                record,
                "code",
                format!("{} Cần làm: sửa mã.", e.vi),
                format!("{} What to do: correct the code.", e.en),
            ));
            return None;
        }
    };
    // A record with a good code takes part in the cross-record checks even when other fields are
    // bad, so one pass reports as much as possible; the import fails anyway.
    let code_s = code.as_str().to_owned();
    if raw.name.is_empty() {
        problems.push(ImportProblem::new(
            record,
            "name",
            format!("Đơn vị {code_s} thiếu tên. Cần làm: ghi tên đầy đủ của đơn vị."),
            format!("Unit {code_s} has no name. What to do: write the unit's full name."),
        ));
    }
    let state = match raw.state.to_ascii_lowercase().as_str() {
        "" | "active" => UnitState::Active,
        "suspended" => UnitState::Suspended,
        other => {
            problems.push(ImportProblem::new(
                record,
                "state",
                format!("Trạng thái \"{other}\" không hợp lệ. Cần làm: ghi \"active\" (đang hoạt động) hoặc \"suspended\" (tạm ngừng), hoặc để trống (= active)."),
                format!("State \"{other}\" is not valid. What to do: write \"active\" or \"suspended\", or leave it empty (= active)."),
            ));
            UnitState::Active
        }
    };
    let parent = if raw.parent.is_empty() {
        None
    } else {
        match UnitCode::parse(&raw.parent) {
            Ok(p) => Some(p.as_str().to_owned()),
            Err(e) => {
                problems.push(ImportProblem::new(
                    record,
                    "parent",
                    format!(
                        "Đơn vị cha: {} Cần làm: sửa mã đơn vị cha hoặc để trống.",
                        e.vi
                    ),
                    format!(
                        "Parent: {} What to do: correct the parent code or leave it empty.",
                        e.en
                    ),
                ));
                None
            }
        }
    };
    let aliases = sorted_dedup(raw.aliases);
    for a in &aliases {
        if !token_ok(a) {
            problems.push(ImportProblem::new(
                record,
                "aliases",
                format!("Mã cũ \"{a}\" không hợp lệ: chỉ dùng 1–64 ký tự chữ không dấu, số, '.', '_' hoặc '-'; các mã cũ cách nhau bằng ';'. Cần làm: sửa mã cũ."),
                format!("Old code \"{a}\" is not valid: use 1–64 of unaccented letters, digits, '.', '_' or '-'; separate old codes with ';'. What to do: correct it."),
            ));
        } else if *a == code_s {
            problems.push(ImportProblem::new(
                record,
                "aliases",
                format!("Mã cũ {a} trùng mã hiện hành của chính đơn vị. Cần làm: xóa nó khỏi cột aliases."),
                format!("Old code {a} is the unit's own current code. What to do: remove it from aliases."),
            ));
        }
    }
    let fingerprints = sorted_dedup(
        raw.fingerprints
            .iter()
            .map(|f| crate::normalize_fingerprint(f))
            .collect(),
    );
    for f in &fingerprints {
        if f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(ImportProblem::new(
                record,
                "fingerprints",
                format!("Dấu vân tay \"{f}\" không phải SHA-256 dạng hex (64 ký tự 0-9a-f). Cần làm: lấy bằng `openssl x509 -in CERT.pem -noout -fingerprint -sha256`; các giá trị cách nhau bằng ';'."),
                format!("Fingerprint \"{f}\" is not a hex SHA-256 (64 characters 0-9a-f). What to do: get it with `openssl x509 -in CERT.pem -noout -fingerprint -sha256`; separate values with ';'."),
            ));
        }
    }
    let groups = sorted_dedup(raw.groups);
    for g in &groups {
        if !token_ok(g) {
            problems.push(bad_group(record, "groups", g));
        }
    }
    let structural = code.parent().map(|p| p.as_str().to_owned());
    Some((
        Candidate {
            record,
            unit: Unit {
                code: code_s,
                name: raw.name,
                parent: None,
                aliases,
                state,
                fingerprints,
                groups,
            },
            structural,
        },
        parent,
    ))
}
