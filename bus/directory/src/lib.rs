//! `directory` owns the national **unit directory**: every administrative unit's current code,
//! name, parent, old codes (aliases that route to the current code), state (active/suspended),
//! certificate fingerprints and named groups, plus the indexes that make lookups cheap (alias →
//! code, parent → children, group → members, fingerprint → unit, search text). It imports the
//! directory from CSV or JSON, all or nothing, reporting every problem at once, and expands a
//! recipient address (`To/OrganId`: a code, an old code, `group:NAME`, `children:CODE`) into units.
//!
//! It keeps everything in one store tree (`directory`) so that an import or an upsert, indexes
//! included, is a single atomic batch: after a crash the directory is either before or after it.
//! Writes become durable at the next [`Directory::flush`] (the store's group commit); callers that
//! report success to a person must flush first.
//!
//! It must not know edXML packages, signatures, brokers, HTTP or the clock; it knows unit codes
//! (from `edxml`) and the store's trees, nothing of sled.

mod error;
mod fold;
mod parse;
mod plan;
pub mod sample;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use store::{Batch, KvTree, Store, StoreError};

pub use error::{DirectoryError, ImportProblem};

/// One administrative unit, as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// The current national code (mã định danh), shape `NNN.NN.NN.XNN`.
    pub code: String,
    pub name: String,
    /// The parent unit's current code: the explicit parent given at import, or else the code's
    /// structural parent ([`edxml::UnitCode::parent`]) when that unit is in the directory.
    pub parent: Option<String>,
    /// Old codes; each routes to `code`.
    #[serde(default)]
    pub aliases: Vec<String>,
    pub state: UnitState,
    /// Lower-case hex SHA-256 of the DER of each certificate the unit may sign with.
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// Named groups this unit belongs to (e.g. `tinh` = all provinces), sorted.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Whether a unit may currently exchange documents. The directory only records it; the relay
/// decides what a suspended recipient or sender means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnitState {
    #[default]
    Active,
    Suspended,
}

impl UnitState {
    /// `active` / `suspended`, as in import files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Active => "active",
            UnitState::Suspended => "suspended",
        }
    }

    pub fn label_vi(self) -> &'static str {
        match self {
            UnitState::Active => "đang hoạt động",
            UnitState::Suspended => "tạm ngừng",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            UnitState::Active => "active",
            UnitState::Suspended => "suspended",
        }
    }
}

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Units in the file (each created or replaced).
    pub units: u64,
    /// Old codes in the file.
    pub aliases: u64,
    /// Distinct group names the file mentions.
    pub groups: u64,
    /// Of `units`, how many were new to the directory.
    pub created: u64,
    /// Of `units`, how many replaced a unit already there.
    pub replaced: u64,
}

/// The SHA-256 of a certificate's DER, lower-case hex: the fingerprint form the directory keeps.
pub fn fingerprint(cert_der: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(cert_der))
}

/// The unit directory. Cheap to clone; all clones share one store tree and one writer lock.
#[derive(Debug, Clone)]
pub struct Directory {
    /// The store this directory lives in (held to flush it).
    store: Store,
    /// The `directory` tree: units and every index (see `keys`).
    tree: KvTree,
    /// Serialises writers (import, upsert, set_state) in this process: each reads the current
    /// state, plans its batch, and applies it before the next one reads. Readers never take it.
    write: Arc<Mutex<()>>,
}

/// The name of the store tree holding the directory.
pub const TREE: &str = "directory";

/// Key layout of the `directory` tree. `\0` separates the two parts of index keys (codes and
/// group names never contain it).
pub(crate) mod keys {
    /// `u/CODE` → the unit, JSON.
    pub const UNIT: &[u8] = b"u/";
    /// `a/OLD` → current code.
    pub const ALIAS: &[u8] = b"a/";
    /// `f/SHA256HEX` → code.
    pub const FINGERPRINT: &[u8] = b"f/";
    /// `g/GROUP\0CODE` → empty.
    pub const GROUP: &[u8] = b"g/";
    /// `c/PARENT\0CHILD` → empty.
    pub const CHILD: &[u8] = b"c/";
    /// `o/STRUCTURAL_PARENT\0CODE` → empty: a unit without a parent whose code's structural parent
    /// is not (yet) in the directory; linked when that parent arrives.
    pub const ORPHAN: &[u8] = b"o/";
    /// `s/CODE` → folded search text (code, old codes, name).
    pub const SEARCH: &[u8] = b"s/";
    /// `n` → number of units, u64 big-endian.
    pub const COUNT: &[u8] = b"n";

    pub fn one(prefix: &[u8], a: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(prefix.len() + a.len());
        k.extend_from_slice(prefix);
        k.extend_from_slice(a.as_bytes());
        k
    }

    pub fn two(prefix: &[u8], a: &str, b: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(prefix.len() + a.len() + 1 + b.len());
        k.extend_from_slice(prefix);
        k.extend_from_slice(a.as_bytes());
        k.push(0);
        k.extend_from_slice(b.as_bytes());
        k
    }

    /// The scan prefix `PREFIX a \0`.
    pub fn under(prefix: &[u8], a: &str) -> Vec<u8> {
        let mut k = one(prefix, a);
        k.push(0);
        k
    }
}

pub(crate) fn decode_unit(key: &[u8], bytes: &[u8]) -> Result<Unit, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Record {
        what: format!("directory {}", String::from_utf8_lossy(key)),
        detail: e.to_string(),
    })
}

pub(crate) fn encode_unit(unit: &Unit) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(unit).map_err(|e| StoreError::Record {
        what: format!("directory unit {}", unit.code),
        detail: e.to_string(),
    })
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The part after `\0` of an index key.
fn second_part(key: &[u8]) -> String {
    match key.iter().position(|b| *b == 0) {
        Some(i) => utf8(&key[i + 1..]),
        None => String::new(),
    }
}

/// Lower-case hex without separators (`AB:CD:…` from `openssl x509 -fingerprint` also accepted).
pub(crate) fn normalize_fingerprint(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Directory {
    /// Opens the directory in `store` (an empty one if none was imported yet).
    pub fn open(store: &Store) -> Result<Directory, DirectoryError> {
        Ok(Directory {
            store: store.clone(),
            tree: store.tree(TREE)?,
            write: Arc::new(Mutex::new(())),
        })
    }

    /// Makes every directory write issued before this call durable (the store's group commit).
    pub async fn flush(&self) -> Result<(), DirectoryError> {
        Ok(self.store.flush().await?)
    }

    fn get_unit(&self, code: &str) -> Result<Option<Unit>, DirectoryError> {
        let key = keys::one(keys::UNIT, code);
        match self.tree.get(&key)? {
            Some(bytes) => Ok(Some(decode_unit(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    fn units(&self, codes: impl IntoIterator<Item = String>) -> Result<Vec<Unit>, DirectoryError> {
        let mut out = Vec::new();
        for code in codes {
            // An index entry without its unit cannot happen (one batch writes both); skip rather
            // than fail if it ever does.
            if let Some(unit) = self.get_unit(&code)? {
                out.push(unit);
            }
        }
        Ok(out)
    }

    /// Exact code or an alias (old code) -> the current unit. `None` for anything unknown,
    /// malformed or not.
    pub fn resolve(&self, code: &str) -> Result<Option<Unit>, DirectoryError> {
        let code = code.trim();
        if code.is_empty() {
            return Ok(None);
        }
        if let Some(unit) = self.get_unit(code)? {
            return Ok(Some(unit));
        }
        match self.tree.get(keys::one(keys::ALIAS, code))? {
            Some(current) => self.get_unit(&utf8(&current)),
            None => Ok(None),
        }
    }

    /// Like `resolve`, but unknown is an error: `BadUnitCode` when `code` is not even shaped like
    /// a unit code, `UnknownUnit` otherwise.
    pub fn require(&self, code: &str) -> Result<Unit, DirectoryError> {
        match self.resolve(code)? {
            Some(unit) => Ok(unit),
            None => match edxml::UnitCode::parse(code.trim()) {
                Err(reason) => Err(DirectoryError::BadUnitCode {
                    code: code.trim().to_owned(),
                    reason,
                }),
                Ok(_) => Err(DirectoryError::UnknownUnit {
                    code: code.trim().to_owned(),
                }),
            },
        }
    }

    /// Insert or replace one unit: validated like an import record (code shape, parent present,
    /// old codes and fingerprints not taken by another unit); every index is kept right,
    /// including on replace. Durable after [`Directory::flush`].
    pub fn upsert(&self, unit: Unit) -> Result<(), DirectoryError> {
        let code = unit.code.clone();
        let record = parse::RawRecord {
            record: 1,
            code: unit.code,
            name: unit.name,
            parent: unit.parent.unwrap_or_default(),
            aliases: unit.aliases,
            state: unit.state.as_str().to_owned(),
            fingerprints: unit.fingerprints,
            groups: unit.groups,
        };
        let file = parse::ParsedFile {
            records: vec![record],
            ..parse::ParsedFile::default()
        };
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        match plan::plan(&self.tree, file, &mut |_, _| {})? {
            Ok(planned) => {
                self.tree.apply(planned.batch)?;
                Ok(())
            }
            Err(problems) => {
                if let Err(reason) = edxml::UnitCode::parse(code.trim()) {
                    return Err(DirectoryError::BadUnitCode {
                        code: code.trim().to_owned(),
                        reason,
                    });
                }
                Err(DirectoryError::InvalidUnit { code, problems })
            }
        }
    }

    /// Parses CSV or JSON (JSON when the first non-space byte is `[` or `{`) and imports it all or
    /// nothing: every problem found (with its line or record number, field, and what to do) is
    /// reported at once, and nothing is written if there is any. Units in the file are created
    /// or replaced whole (old codes, groups and fingerprints they no longer list are dropped);
    /// units not in the file are left as they are. `progress(done, total)` is called as records
    /// are checked and prepared, and once more, with `done == total`, when they are written.
    /// Durable after [`Directory::flush`].
    ///
    /// The write is one atomic store batch (about 5 keys per unit); for 30,000 units it takes about
    /// 2 s, during which the store serves no other reads or writes in this process (sled's batch
    /// lock). Fine for the CLI and for an operator's occasional re-import; not something to call
    /// per package.
    pub fn import(
        &self,
        bytes: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ImportReport, DirectoryError> {
        let file = parse::parse(bytes);
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        match plan::plan(&self.tree, file, progress)? {
            Ok(planned) => {
                let total = planned.report.units;
                self.tree.apply(planned.batch)?;
                progress(total, total);
                Ok(planned.report)
            }
            Err(problems) => Err(DirectoryError::Import { problems }),
        }
    }

    /// Units whose parent chain reaches `code` (not including `code`), sorted by code. `None` =
    /// all units. `code` may be an old code.
    pub fn list(&self, under: Option<&str>) -> Result<Vec<Unit>, DirectoryError> {
        let Some(code) = under else {
            let mut out = Vec::new();
            for entry in self.tree.scan_prefix(keys::UNIT) {
                let (k, v) = entry?;
                out.push(decode_unit(&k, &v)?);
            }
            return Ok(out);
        };
        let root = self.require(code)?;
        let codes = self.descendants(&root.code)?;
        self.units(codes)
    }

    /// Codes of every unit under `code` (not `code` itself), sorted.
    fn descendants(&self, code: &str) -> Result<BTreeSet<String>, DirectoryError> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([code.to_owned()]);
        while let Some(parent) = queue.pop_front() {
            for entry in self.tree.scan_prefix(&keys::under(keys::CHILD, &parent)) {
                let (k, _) = entry?;
                let child = second_part(&k);
                // The import refuses parent loops; the check keeps a walk finite regardless.
                if child != code && seen.insert(child.clone()) {
                    queue.push_back(child);
                }
            }
        }
        Ok(seen)
    }

    /// Direct children only, sorted by code. `code` may be an old code.
    pub fn children(&self, code: &str) -> Result<Vec<Unit>, DirectoryError> {
        let parent = self.require(code)?;
        let mut codes = Vec::new();
        for entry in self
            .tree
            .scan_prefix(&keys::under(keys::CHILD, &parent.code))
        {
            codes.push(second_part(&entry?.0));
        }
        self.units(codes)
    }

    /// The members of group `name`, sorted by code; empty for a group nobody belongs to.
    pub fn group(&self, name: &str) -> Result<Vec<Unit>, DirectoryError> {
        let mut codes = Vec::new();
        for entry in self
            .tree
            .scan_prefix(&keys::under(keys::GROUP, name.trim()))
        {
            codes.push(second_part(&entry?.0));
        }
        self.units(codes)
    }

    /// Every group name with its number of members, sorted by name.
    pub fn groups(&self) -> Result<Vec<(String, u64)>, DirectoryError> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for entry in self.tree.scan_prefix(keys::GROUP) {
            let (k, _) = entry?;
            let rest = &k[keys::GROUP.len()..];
            let name = match rest.iter().position(|b| *b == 0) {
                Some(i) => utf8(&rest[..i]),
                None => utf8(rest),
            };
            *out.entry(name).or_default() += 1;
        }
        Ok(out.into_iter().collect())
    }

    /// A recipient address as written in edXML `To/OrganId` -> current units:
    /// a unit code or old code -> that unit; `group:NAME` -> the group's members; `children:CODE`
    /// -> every unit under CODE (recursive; empty when CODE has none). Anything unknown ->
    /// [`DirectoryError::UnknownAddress`]. Suspended units are returned too: the relay decides.
    pub fn expand(&self, address: &str) -> Result<Vec<Unit>, DirectoryError> {
        let address = address.trim();
        let unknown = |malformed| DirectoryError::UnknownAddress {
            address: address.to_owned(),
            malformed,
        };
        if let Some(name) = address.strip_prefix("group:") {
            let members = self.group(name)?;
            if members.is_empty() {
                return Err(unknown(None));
            }
            return Ok(members);
        }
        if let Some(code) = address.strip_prefix("children:") {
            return match self.resolve(code)? {
                Some(root) => {
                    let codes = self.descendants(&root.code)?;
                    self.units(codes)
                }
                None => Err(unknown(edxml::UnitCode::parse(code.trim()).err())),
            };
        }
        match self.resolve(address)? {
            Some(unit) => Ok(vec![unit]),
            None => Err(unknown(edxml::UnitCode::parse(address).err())),
        }
    }

    /// Case- and Vietnamese-diacritics-insensitive search on code, old codes and name: an exact
    /// code or old code first, then every unit whose text contains `q`, in code order; at most
    /// `limit`.
    pub fn search(&self, q: &str, limit: usize) -> Result<Vec<Unit>, DirectoryError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut seen = HashSet::new();
        if let Some(unit) = self.resolve(q)? {
            seen.insert(unit.code.clone());
            out.push(unit);
        }
        let needle = fold::fold(q.trim());
        for entry in self.tree.scan_prefix(keys::SEARCH) {
            if out.len() >= limit {
                break;
            }
            let (k, text) = entry?;
            if memchr_contains(&text, needle.as_bytes()) {
                let code = utf8(&k[keys::SEARCH.len()..]);
                if seen.insert(code.clone())
                    && let Some(unit) = self.get_unit(&code)?
                {
                    out.push(unit);
                }
            }
        }
        Ok(out)
    }

    /// The unit that may sign with the certificate of this SHA-256 (hex, either case, `:`
    /// separators allowed).
    pub fn by_fingerprint(&self, sha256_hex: &str) -> Result<Option<Unit>, DirectoryError> {
        let fp = normalize_fingerprint(sha256_hex);
        match self.tree.get(keys::one(keys::FINGERPRINT, &fp))? {
            Some(code) => self.get_unit(&utf8(&code)),
            None => Ok(None),
        }
    }

    /// Number of units.
    pub fn len(&self) -> Result<usize, DirectoryError> {
        Ok(plan::read_count(&self.tree)? as usize)
    }

    pub fn is_empty(&self) -> Result<bool, DirectoryError> {
        Ok(self.len()? == 0)
    }

    /// Marks a unit (by code or old code) active or suspended. Durable after [`Directory::flush`].
    pub fn set_state(&self, code: &str, state: UnitState) -> Result<(), DirectoryError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut unit = self.require(code)?;
        if unit.state == state {
            return Ok(());
        }
        unit.state = state;
        let mut batch = Batch::default();
        batch.insert(keys::one(keys::UNIT, &unit.code), encode_unit(&unit)?);
        self.tree.apply(batch)?;
        Ok(())
    }
}

fn memchr_contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
