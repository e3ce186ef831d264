//! The lenient reader: tolerant of what real producers send, precise about what it tolerated.
//!
//! Two passes over a borrowed input. Pass 1 tokenizes with quick-xml into a small element tree whose text
//! borrows the input (an attachment's base64 is never copied), enforcing the size, depth, DOCTYPE and entity
//! rules. Pass 2 walks the tree by namespace + local name, in any order, and fills the model, recording each
//! deviation as a warning and each unusable condition as an error.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::codes::{BusinessDocType, Priority, StatusCode, SteeringType, UnitCode};
use crate::finding::{Finding, Limits, Message, Rejected, Severity, line_columns};
use crate::model::*;
use crate::{DSIG_NS, EDXML_NS};

/// A successfully read package and the deviations seen (warnings only).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub package: Package,
    pub findings: Vec<Finding>,
}

/// Reads an edXML package. Never panics; rejects only a package that cannot be used.
pub fn read(input: &[u8], limits: &Limits) -> Result<Parsed, Rejected> {
    let mut diag = Diag {
        input,
        pending: Vec::new(),
        warnings: 0,
    };
    if input.len() > limits.max_bytes {
        diag.error(
            "too_large",
            0,
            String::new(),
            format!(
                "Gói tin dài {} byte, vượt giới hạn {} byte. Hãy gửi gói nhỏ hơn (ví dụ tách hoặc nén tệp đính kèm) hoặc nâng giới hạn nếu gói này là hợp lệ.",
                input.len(),
                limits.max_bytes
            ),
            format!(
                "The package is {} bytes, over the limit of {} bytes. Send a smaller package (split or compress the attachments) or raise the limit if this size is legitimate.",
                input.len(),
                limits.max_bytes
            ),
        );
        return Err(diag.reject());
    }
    let (text, base) = match input.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, 3),
        None => (input, 0),
    };
    let text = match std::str::from_utf8(text) {
        Ok(t) => t,
        Err(e) => {
            diag.error(
                "not_xml",
                base + e.valid_up_to(),
                String::new(),
                "Gói tin không phải văn bản UTF-8 hợp lệ tại vị trí này. Hãy lưu gói tin bằng mã hóa UTF-8.".into(),
                "The package is not valid UTF-8 at this position. Save the package in UTF-8.".into(),
            );
            return Err(diag.reject());
        }
    };
    let tree = match Tree::parse(text, base, limits, &mut diag) {
        Some(t) => t,
        None => return Err(diag.reject()),
    };
    let mut b = Builder {
        tree,
        diag,
        warned_no_namespace: false,
        reference_nodes: Vec::new(),
        attachment_nodes: Vec::new(),
    };
    let package = b.package();
    let Builder { diag, .. } = b;
    match package {
        Some(package) if !diag.has_errors() => Ok(Parsed {
            package,
            findings: diag.finish(),
        }),
        _ => Err(diag.reject()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Diagnostics

struct Diag<'a> {
    input: &'a [u8],
    /// Findings without their line/column yet: positions are resolved in one sweep at the end, so many
    /// findings in a large input cost one pass, not one pass each.
    pending: Vec<Pending>,
    /// Number of warnings in `pending`.
    warnings: usize,
}

struct Pending {
    severity: Severity,
    code: &'static str,
    offset: usize,
    path: String,
    vi: String,
    en: String,
}

impl Diag<'_> {
    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        offset: usize,
        path: String,
        vi: String,
        en: String,
    ) {
        if severity == Severity::Warning {
            self.warnings += 1;
        }
        self.pending.push(Pending {
            severity,
            code,
            offset,
            path,
            vi,
            en,
        });
    }

    /// The findings, in the order found, with line, column and the location in both messages.
    fn finish(self) -> Vec<Finding> {
        let offsets: Vec<usize> = self.pending.iter().map(|p| p.offset).collect();
        let positions = line_columns(self.input, &offsets);
        self.pending
            .into_iter()
            .zip(positions)
            .map(|(p, (line, column))| {
                let (at_vi, at_en) = if p.path.is_empty() {
                    (
                        format!("dòng {line}, cột {column}"),
                        format!("line {line}, column {column}"),
                    )
                } else {
                    let shown = readable_path(&p.path);
                    (
                        format!("{shown} (dòng {line}, cột {column})"),
                        format!("{shown} (line {line}, column {column})"),
                    )
                };
                Finding {
                    severity: p.severity,
                    code: p.code,
                    line,
                    column,
                    path: p.path,
                    message: Message {
                        vi: format!("Tại {at_vi}: {}", p.vi),
                        en: format!("At {at_en}: {}", p.en),
                    },
                }
            })
            .collect()
    }

    fn error(&mut self, code: &'static str, offset: usize, path: String, vi: String, en: String) {
        self.push(Severity::Error, code, offset, path, vi, en);
    }

    fn warn(&mut self, code: &'static str, offset: usize, path: String, vi: String, en: String) {
        self.push(Severity::Warning, code, offset, path, vi, en);
    }

    /// Whether another warning may be recorded. Past [`MAX_WARNINGS`], one `too_many_findings` warning is added
    /// and the rest are dropped, so a flood of odd elements cannot flood memory.
    fn room_for_warning(&mut self) -> bool {
        if self.warnings < MAX_WARNINGS {
            return true;
        }
        if self.warnings == MAX_WARNINGS {
            self.push(
                Severity::Warning,
                "too_many_findings",
                0,
                String::new(),
                format!("Đã có hơn {MAX_WARNINGS} cảnh báo; các cảnh báo sau không được ghi lại. Hãy sửa các lỗi đã nêu rồi kiểm tra lại."),
                format!("More than {MAX_WARNINGS} warnings; the rest are not recorded. Fix the ones reported and check again."),
            );
        }
        false
    }

    fn has_errors(&self) -> bool {
        self.pending.iter().any(|f| f.severity == Severity::Error)
    }

    fn reject(self) -> Rejected {
        let mut findings = self.finish();
        // Errors first (stable), then the warnings seen so far.
        findings.sort_by_key(|f| f.severity != Severity::Error);
        Rejected { findings }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Pass 1: the element tree

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ns {
    Edxml,
    /// No namespace (or an undeclared prefix).
    Missing,
    Dsig,
    Other(Box<str>),
}

#[derive(Debug)]
struct Node<'a> {
    ns: Ns,
    /// Local name, borrowed from the input.
    name: Cow<'a, str>,
    /// Byte offset of the `<` of the start tag.
    offset: usize,
    parent: Option<usize>,
    children: Vec<usize>,
    /// Concatenated character data directly inside this element (borrowed from the input when possible).
    text: Cow<'a, str>,
    /// Byte offset of the first character-data event, if any.
    text_offset: Option<usize>,
    /// Keep the text as written (no line-ending normalisation), so base64 stays borrowed.
    raw_text: bool,
}

struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    /// Start of the UTF-8 text inside the input (3 when a BOM was skipped).
    base: usize,
    text: &'a str,
    /// Sibling positions for paths, computed on the first finding.
    ordinals: OnceCell<Vec<(u32, bool)>>,
}

impl<'a> Tree<'a> {
    fn parse(text: &'a str, base: usize, limits: &Limits, diag: &mut Diag<'_>) -> Option<Tree<'a>> {
        let mut reader = NsReader::from_str(text);
        {
            let config = reader.config_mut();
            config.expand_empty_elements = true;
            config.check_end_names = true;
            config.check_comments = true;
            config.trim_text(false);
        }
        let mut nodes: Vec<Node<'a>> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut root_closed = false;
        loop {
            let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let pos = base.saturating_add(before);
            let (resolved, event) = match reader.read_resolved_event() {
                Ok((r, e)) => (classify(&r), e),
                Err(e) => {
                    let at = base.saturating_add(
                        usize::try_from(reader.error_position()).unwrap_or(usize::MAX),
                    );
                    diag.error(
                        "not_xml",
                        at,
                        path_of(&nodes, stack.last().copied()),
                        format!("XML không hợp lệ ({e}). Hãy sửa cú pháp XML của gói tin (thẻ mở/đóng, dấu ngoặc, ký tự đặc biệt) rồi gửi lại."),
                        format!("Malformed XML ({e}). Fix the package's XML syntax (open/close tags, brackets, special characters) and send it again."),
                    );
                    return None;
                }
            };
            match event {
                Event::Start(start) => {
                    if root_closed {
                        diag.error(
                            "not_xml",
                            pos,
                            String::new(),
                            "Có phần tử nằm sau phần tử gốc; một gói tin chỉ có một phần tử gốc edXML. Hãy bỏ phần thừa sau </edXML>.".into(),
                            "An element follows the root element; a package has exactly one edXML root. Remove what follows </edXML>.".into(),
                        );
                        return None;
                    }
                    if stack.len() >= limits.max_depth {
                        diag.error(
                            "too_deep",
                            pos,
                            path_of(&nodes, stack.last().copied()),
                            format!("Các phần tử lồng nhau sâu hơn giới hạn {} cấp. Gói edXML hợp lệ chỉ sâu khoảng 8 cấp; hãy kiểm tra phần mềm tạo gói tin.", limits.max_depth),
                            format!("Elements nest deeper than the limit of {} levels. A valid edXML package is about 8 levels deep; check the software that made it.", limits.max_depth),
                        );
                        return None;
                    }
                    if nodes.len() >= MAX_ELEMENTS {
                        diag.error(
                            "too_large",
                            pos,
                            path_of(&nodes, stack.last().copied()),
                            format!("Gói tin có hơn {MAX_ELEMENTS} phần tử XML, vượt giới hạn xử lý. Gói edXML thông thường chỉ có vài trăm phần tử; hãy kiểm tra phần mềm tạo gói tin hoặc chia nhỏ gói."),
                            format!("The package has more than {MAX_ELEMENTS} XML elements, over the processing limit. An ordinary edXML package has a few hundred; check the software that made it or split the package."),
                        );
                        return None;
                    }
                    let name = local_name_at(text, before)
                        .unwrap_or_else(|| Cow::Owned(start.local_name().into_inner().to_owned()));
                    let raw_text = &*name == "ContentTransferEncoded";
                    let parent = stack.last().copied();
                    let idx = nodes.len();
                    nodes.push(Node {
                        ns: resolved,
                        name,
                        offset: pos,
                        parent,
                        children: Vec::new(),
                        text: Cow::Borrowed(""),
                        text_offset: None,
                        raw_text,
                    });
                    if let Some(p) = parent {
                        nodes[p].children.push(idx);
                    }
                    stack.push(idx);
                }
                Event::End(_) => {
                    stack.pop();
                    if stack.is_empty() {
                        root_closed = true;
                    }
                }
                Event::Text(t) => {
                    if let Some(&cur) = stack.last() {
                        let node = &mut nodes[cur];
                        let piece = if node.raw_text {
                            t.into_inner()
                        } else {
                            t.xml10_content()
                        };
                        append_text(node, piece, pos);
                    } else if !t.trim_ascii().is_empty() {
                        diag.error(
                            "not_xml",
                            pos,
                            String::new(),
                            "Có văn bản nằm ngoài phần tử gốc edXML. Hãy bỏ phần văn bản thừa đó."
                                .into(),
                            "There is text outside the edXML root element. Remove that stray text."
                                .into(),
                        );
                        return None;
                    }
                }
                Event::CData(c) => {
                    if let Some(&cur) = stack.last() {
                        append_text(&mut nodes[cur], c.xml10_content(), pos);
                    }
                }
                Event::GeneralRef(r) => {
                    let resolved_text: Option<String> = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) => Some(c.to_string()),
                            _ => None,
                        }
                    } else {
                        quick_xml::escape::resolve_predefined_entity(&r).map(str::to_owned)
                    };
                    match resolved_text {
                        Some(s) => {
                            if let Some(&cur) = stack.last() {
                                append_text(&mut nodes[cur], Cow::Owned(s), pos);
                            }
                        }
                        None => {
                            let name: &str = &r;
                            diag.error(
                                "entity",
                                pos,
                                path_of(&nodes, stack.last().copied()),
                                format!("Tham chiếu thực thể \"&{name};\" không được hỗ trợ: edXML chỉ cho phép 5 thực thể định sẵn (&amp; &lt; &gt; &quot; &apos;) và tham chiếu ký tự (&#...;). Hãy ghi ký tự đó trực tiếp bằng UTF-8."),
                                format!("The entity reference \"&{name};\" is not allowed: edXML allows only the five predefined entities (&amp; &lt; &gt; &quot; &apos;) and character references (&#...;). Write the character directly in UTF-8."),
                            );
                            return None;
                        }
                    }
                }
                Event::DocType(_) => {
                    diag.error(
                        "doctype",
                        pos,
                        String::new(),
                        "Gói tin có khai báo DOCTYPE/thực thể; vì an toàn, Trục không chấp nhận DTD. Hãy bỏ khai báo <!DOCTYPE ...> khỏi gói tin.".into(),
                        "The package has a DOCTYPE/entity declaration; for safety Trục accepts no DTD. Remove the <!DOCTYPE ...> declaration from the package.".into(),
                    );
                    return None;
                }
                Event::Eof => {
                    if let Some(&open) = stack.last() {
                        diag.error(
                            "not_xml",
                            base + text.len(),
                            path_of(&nodes, Some(open)),
                            format!("Gói tin kết thúc khi phần tử <{}> chưa đóng (có thể tệp bị cắt cụt). Hãy gửi lại tệp đầy đủ.", nodes[open].name),
                            format!("The package ends while <{}> is still open (the file may be truncated). Send the complete file again.", nodes[open].name),
                        );
                        return None;
                    }
                    if nodes.is_empty() {
                        diag.error(
                            "not_xml",
                            base + text.len(),
                            String::new(),
                            "Gói tin không có phần tử XML nào. Hãy gửi một gói edXML.".into(),
                            "The package contains no XML element. Send an edXML package.".into(),
                        );
                        return None;
                    }
                    break;
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::Empty(_) => {}
            }
        }
        Some(Tree {
            nodes,
            base,
            text,
            ordinals: OnceCell::new(),
        })
    }

    /// Byte offset in the input where `s` starts, when `s` borrows the input text.
    fn offset_of(&self, s: &str) -> Option<usize> {
        let start = self.text.as_ptr() as usize;
        let p = s.as_ptr() as usize;
        (p >= start && p + s.len() <= start + self.text.len()).then(|| self.base + (p - start))
    }
}

/// Most warnings recorded for one package.
const MAX_WARNINGS: usize = 1000;

/// Most elements a package may have: bounds the tree's memory for floods of tiny elements (a directive to
/// 30,000 units has well under this).
const MAX_ELEMENTS: usize = 1_000_000;

/// The local name of the start tag at `at` (the `<`), borrowed from the input.
fn local_name_at(text: &str, at: usize) -> Option<Cow<'_, str>> {
    let rest = text.get(at..)?.strip_prefix('<')?;
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    let qname = &rest[..end];
    let local = qname.rsplit(':').next().unwrap_or(qname);
    (!local.is_empty()).then_some(Cow::Borrowed(local))
}

fn classify(r: &ResolveResult<'_>) -> Ns {
    match r {
        ResolveResult::Bound(ns) if ns.0 == EDXML_NS => Ns::Edxml,
        ResolveResult::Bound(ns) if ns.0 == DSIG_NS => Ns::Dsig,
        ResolveResult::Bound(ns) if ns.0.is_empty() => Ns::Missing,
        ResolveResult::Bound(ns) => Ns::Other(ns.0.into()),
        ResolveResult::Unbound | ResolveResult::Unknown(_) => Ns::Missing,
    }
}

fn append_text<'a>(node: &mut Node<'a>, piece: Cow<'a, str>, pos: usize) {
    if piece.is_empty() {
        return;
    }
    if node.text.is_empty() {
        node.text = piece;
        node.text_offset = Some(pos);
    } else {
        node.text.to_mut().push_str(&piece);
    }
}

/// For each node: its 1-based position among same-named siblings, and whether it has same-named siblings.
/// Computed once, only when a finding needs a path (O(n) with a hash per parent).
fn sibling_ordinals(nodes: &[Node<'_>]) -> Vec<(u32, bool)> {
    let mut out = vec![(1u32, false); nodes.len()];
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for n in nodes {
        if n.children.len() < 2 {
            continue;
        }
        counts.clear();
        for &c in &n.children {
            let k = counts.entry(&nodes[c].name).or_insert(0);
            *k += 1;
            out[c].0 = *k;
        }
        for &c in &n.children {
            out[c].1 = counts.get(&*nodes[c].name).is_some_and(|&k| k > 1);
        }
    }
    out
}

/// The path as a person reads it in a message: a very deep path (a nesting attack, say) keeps its first and last
/// steps around an ellipsis; the finding's `path` field keeps the whole of it.
fn readable_path(path: &str) -> String {
    const HEAD: usize = 5;
    const TAIL: usize = 3;
    let steps: Vec<&str> = path.split('/').skip(1).collect();
    if steps.len() <= HEAD + TAIL + 1 {
        return path.to_owned();
    }
    let hidden = steps.len() - HEAD - TAIL;
    format!(
        "/{}/…({hidden})…/{}",
        steps[..HEAD].join("/"),
        steps[steps.len() - TAIL..].join("/")
    )
}

fn path_of(nodes: &[Node<'_>], id: Option<usize>) -> String {
    path_with(nodes, &sibling_ordinals(nodes), id)
}

fn path_with(nodes: &[Node<'_>], ordinals: &[(u32, bool)], id: Option<usize>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = id;
    while let Some(i) = cur {
        let Some(n) = nodes.get(i) else { break };
        match ordinals.get(i) {
            Some(&(k, true)) => parts.push(format!("{}[{k}]", n.name)),
            _ => parts.push(n.name.to_string()),
        }
        cur = n.parent;
    }
    parts.reverse();
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(&p);
    }
    s
}

// ---------------------------------------------------------------------------------------------------------------
// Pass 2: the model

struct Builder<'a> {
    tree: Tree<'a>,
    diag: Diag<'a>,
    warned_no_namespace: bool,
    /// Tree nodes of the manifest references / attachments, parallel to the model lists (for positions).
    reference_nodes: Vec<usize>,
    attachment_nodes: Vec<usize>,
}

/// Where a date-like field is, for messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DateKind {
    Date,
    Timestamp,
}

impl<'a> Builder<'a> {
    fn node(&self, id: usize) -> &Node<'a> {
        &self.tree.nodes[id]
    }

    fn path(&self, id: usize) -> String {
        let ordinals = self
            .tree
            .ordinals
            .get_or_init(|| sibling_ordinals(&self.tree.nodes));
        path_with(&self.tree.nodes, ordinals, Some(id))
    }

    fn warn(&mut self, code: &'static str, id: usize, vi: String, en: String) {
        if !self.diag.room_for_warning() {
            return;
        }
        let path = self.path(id);
        let offset = self.node(id).offset;
        self.diag.warn(code, offset, path, vi, en);
    }

    fn error(&mut self, code: &'static str, id: usize, vi: String, en: String) {
        let path = self.path(id);
        let offset = self.node(id).offset;
        self.diag.error(code, offset, path, vi, en);
    }

    /// The children that belong to the package, by local name. Signatures and foreign elements are
    /// handled here so every block parser sees only edXML elements.
    fn children(&mut self, id: usize) -> Vec<(usize, Cow<'a, str>)> {
        let kids = self.node(id).children.clone();
        let parent_is_header = &*self.node(id).name == "edXMLHeader";
        let mut out = Vec::with_capacity(kids.len());
        for c in kids {
            let name = self.node(c).name.clone();
            match self.node(c).ns.clone() {
                Ns::Dsig => {
                    if !(parent_is_header && &*name == "Signature") {
                        self.warn(
                            "unknown_element",
                            c,
                            format!("Phần tử chữ ký <{name}> nằm sai chỗ (chữ ký XML-DSig chỉ được đặt trong edXMLHeader) nên bị bỏ qua."),
                            format!("The signature element <{name}> is misplaced (XML-DSig signatures belong in edXMLHeader), so it is ignored."),
                        );
                    }
                    continue;
                }
                Ns::Other(uri) => {
                    self.warn(
                        "unknown_namespace",
                        c,
                        format!("Phần tử <{name}> thuộc không gian tên lạ \"{uri}\" nên bị bỏ qua. Hãy dùng không gian tên {EDXML_NS}."),
                        format!("Element <{name}> is in the unknown namespace \"{uri}\" and is ignored. Use the namespace {EDXML_NS}."),
                    );
                    continue;
                }
                Ns::Missing => self.note_no_namespace(c),
                Ns::Edxml => {}
            }
            if &*name == "Signature" || &*name == "DigitalSignature" {
                self.warn(
                    "placeholder_signature",
                    c,
                    format!("Phần tử <{name}> nằm trong không gian tên edXML, không phải XML-DSig ({DSIG_NS}), nên không kiểm tra được và bị bỏ qua. Hãy ký gói tin bằng chữ ký XML-DSig chuẩn."),
                    format!("<{name}> is in the edXML namespace, not XML-DSig ({DSIG_NS}), so it cannot be verified and is ignored. Sign the package with a standard XML-DSig signature."),
                );
                continue;
            }
            out.push((c, name));
        }
        out
    }

    fn note_no_namespace(&mut self, id: usize) {
        if !self.warned_no_namespace {
            self.warned_no_namespace = true;
            let name = self.node(id).name.clone();
            self.warn(
                "no_namespace",
                id,
                format!("Phần tử <{name}> (và có thể các phần tử khác) không thuộc không gian tên edXML; đã đọc theo tên. Hãy khai báo xmlns=\"{EDXML_NS}\" trên phần tử gốc."),
                format!("Element <{name}> (and possibly others) has no edXML namespace; it was read by name. Declare xmlns=\"{EDXML_NS}\" on the root element."),
            );
        }
    }

    fn unknown(&mut self, id: usize, within: &str) {
        let name = self.node(id).name.clone();
        self.warn(
            "unknown_element",
            id,
            format!("Phần tử <{name}> không thuộc khối {within} theo QCVN 102:2016 nên bị bỏ qua (không được chuyển tiếp). Nếu đó là dữ liệu cần thiết, hãy đặt nó vào đúng trường."),
            format!("Element <{name}> is not part of {within} in QCVN 102:2016 and is ignored (it is not carried on). If the data matters, put it in the proper field."),
        );
    }

    fn duplicate(&mut self, id: usize) {
        let name = self.node(id).name.clone();
        self.warn(
            "duplicate_element",
            id,
            format!("Phần tử <{name}> xuất hiện nhiều lần; chỉ giữ lần đầu. Hãy chỉ gửi một <{name}>."),
            format!("Element <{name}> appears more than once; only the first is kept. Send a single <{name}>."),
        );
    }

    /// Stores `value` in `slot` unless it is already set (then a duplicate warning).
    fn once<T>(
        &mut self,
        slot: &mut Option<T>,
        id: usize,
        value: impl FnOnce(&mut Self) -> Option<T>,
    ) {
        if slot.is_some() {
            self.duplicate(id);
        } else {
            *slot = value(self);
        }
    }

    /// The trimmed text of a leaf element.
    fn text(&mut self, id: usize) -> String {
        if !self.node(id).children.is_empty() {
            let name = self.node(id).name.clone();
            self.warn(
                "unknown_element",
                id,
                format!("Phần tử <{name}> phải chỉ chứa văn bản nhưng lại chứa phần tử con; các phần tử con bị bỏ qua."),
                format!("Element <{name}> must hold only text but has child elements; the children are ignored."),
            );
        }
        let text = self.node(id).text.trim_matches(XML_SPACE).to_owned();
        if let Some(bad) = text.chars().find(|&c| !is_xml_char(c)) {
            let name = self.node(id).name.clone();
            let code = u32::from(bad);
            self.error(
                "not_xml",
                id,
                format!("<{name}> chứa ký tự U+{code:04X}, ký tự XML 1.0 không cho phép (kể cả dưới dạng &#...;). Hãy bỏ ký tự điều khiển đó khỏi nội dung."),
                format!("<{name}> contains the character U+{code:04X}, which XML 1.0 does not allow (not even as &#...;). Remove that control character from the content."),
            );
        }
        text
    }

    fn some_text(&mut self, id: usize) -> Option<String> {
        Some(self.text(id))
    }

    /// Text of a typed leaf; an empty one counts as absent (with a warning).
    fn typed_text(&mut self, id: usize) -> Option<String> {
        let t = self.text(id);
        if t.is_empty() {
            let name = self.node(id).name.clone();
            self.warn(
                "missing_field",
                id,
                format!("<{name}> rỗng nên được coi như không có. Hãy điền giá trị hoặc bỏ phần tử."),
                format!("<{name}> is empty and is treated as absent. Fill in a value or leave the element out."),
            );
            None
        } else {
            Some(t)
        }
    }

    fn number(&mut self, id: usize) -> Option<Number> {
        let t = self.typed_text(id)?;
        match t.parse::<i64>() {
            Ok(n) => Some(Lenient::Known(n)),
            Err(_) => {
                let name = self.node(id).name.clone();
                self.warn(
                    "bad_number",
                    id,
                    format!("<{name}> phải là số nguyên nhưng có giá trị \"{t}\"; giữ nguyên như đã gửi. Hãy ghi số nguyên."),
                    format!("<{name}> must be an integer but is \"{t}\"; kept as sent. Write an integer."),
                );
                Some(Lenient::Raw(t))
            }
        }
    }

    fn date(&mut self, id: usize) -> Option<DateField> {
        let t = self.typed_text(id)?;
        Some(match parse_when(&t) {
            Some(w) => {
                if !(w.canonical && w.time.is_none()) {
                    let note_vi = if w.time.is_some() {
                        " (bỏ phần giờ)"
                    } else {
                        ""
                    };
                    let note_en = if w.time.is_some() {
                        " (time dropped)"
                    } else {
                        ""
                    };
                    let name = self.node(id).name.clone();
                    self.warn(
                        "date_format",
                        id,
                        format!("Ngày <{name}> \"{t}\" không đúng dạng chuẩn yyyy/MM/dd; đã hiểu là {}{note_vi}. Hãy ghi ngày dạng yyyy/MM/dd.", w.date),
                        format!("Date <{name}> \"{t}\" is not in the canonical form yyyy/MM/dd; read as {}{note_en}. Write dates as yyyy/MM/dd.", w.date),
                    );
                }
                Lenient::Known(w.date)
            }
            None => {
                self.bad_date(id, &t, DateKind::Date);
                Lenient::Raw(t)
            }
        })
    }

    fn timestamp(&mut self, id: usize) -> Option<TimestampField> {
        let t = self.typed_text(id)?;
        Some(match parse_when(&t) {
            Some(w) => {
                let (hour, minute, second) = w.time.unwrap_or((0, 0, 0));
                let ts = Timestamp {
                    date: w.date,
                    hour,
                    minute,
                    second,
                };
                if !(w.canonical && w.time.is_some()) {
                    let name = self.node(id).name.clone();
                    self.warn(
                        "date_format",
                        id,
                        format!("Thời điểm <{name}> \"{t}\" không đúng dạng chuẩn yyyy/MM/dd HH:mm:ss; đã hiểu là {ts}. Hãy ghi dạng yyyy/MM/dd HH:mm:ss."),
                        format!("Timestamp <{name}> \"{t}\" is not in the canonical form yyyy/MM/dd HH:mm:ss; read as {ts}. Write yyyy/MM/dd HH:mm:ss."),
                    );
                }
                Lenient::Known(ts)
            }
            None => {
                self.bad_date(id, &t, DateKind::Timestamp);
                Lenient::Raw(t)
            }
        })
    }

    fn bad_date(&mut self, id: usize, t: &str, kind: DateKind) {
        let name = self.node(id).name.clone();
        let (fvi, fen) = match kind {
            DateKind::Date => ("yyyy/MM/dd", "yyyy/MM/dd"),
            DateKind::Timestamp => ("yyyy/MM/dd HH:mm:ss", "yyyy/MM/dd HH:mm:ss"),
        };
        self.warn(
            "bad_date",
            id,
            format!("Không hiểu được ngày/giờ <{name}> \"{t}\"; giữ nguyên dạng văn bản. Hãy ghi dạng {fvi}."),
            format!("Cannot understand the date/time <{name}> \"{t}\"; kept as text. Write it as {fen}."),
        );
    }

    fn code<T>(&mut self, id: usize, parse: fn(&str) -> T) -> Option<T> {
        let t = self.typed_text(id)?;
        Some(parse(&t))
    }

    fn check_unit_code(&mut self, id: usize, code: &str) {
        if let Err(e) = UnitCode::parse(code) {
            self.warn(
                "bad_unit_code",
                id,
                format!(
                    "{} Mã được giữ nguyên; hãy kiểm tra lại mã định danh.",
                    e.vi
                ),
                format!("{} The code is kept as sent; check the unit code.", e.en),
            );
        }
    }

    // --- blocks -------------------------------------------------------------------------------------------------

    fn package(&mut self) -> Option<Package> {
        let root = 0;
        let root_name = self.node(root).name.clone();
        let root_ns = self.node(root).ns.clone();
        if &*root_name != "edXML" || root_ns == Ns::Dsig {
            self.error(
                "not_edxml",
                root,
                format!("Phần tử gốc là <{root_name}>, không phải <edXML> theo QCVN 102:2016 (có thể là mẫu cũ go.vn/eDoc). Hãy tạo gói tin theo cấu trúc edXML > edXMLEnvelope > edXMLHeader."),
                format!("The root element is <{root_name}>, not the QCVN 102:2016 <edXML> (it may be the old go.vn/eDoc layout). Build the package as edXML > edXMLEnvelope > edXMLHeader."),
            );
            return None;
        }
        match root_ns {
            Ns::Missing => self.note_no_namespace(root),
            Ns::Other(uri) => {
                self.warn(
                    "unknown_namespace",
                    root,
                    format!("Phần tử gốc <edXML> thuộc không gian tên \"{uri}\" thay vì {EDXML_NS}; đã đọc theo tên. Hãy dùng không gian tên {EDXML_NS}."),
                    format!("The root <edXML> is in the namespace \"{uri}\" instead of {EDXML_NS}; it was read by name. Use the namespace {EDXML_NS}."),
                );
                // Read the rest of the package by name too: treat its own namespace as ours.
                for n in &mut self.tree.nodes {
                    if n.ns == Ns::Other(uri.clone()) {
                        n.ns = Ns::Edxml;
                    }
                }
            }
            Ns::Edxml | Ns::Dsig => {}
        }

        let mut envelope = None;
        let mut attachment_blocks = Vec::new();
        for (c, name) in self.children(root) {
            match &*name {
                "edXMLEnvelope" => self.once(&mut envelope, c, |_| Some(c)),
                "AttachmentEncoded" => attachment_blocks.push(c),
                _ => self.unknown(c, "edXML"),
            }
        }
        let Some(envelope) = envelope else {
            self.error(
                "not_edxml",
                root,
                "Gói tin không có <edXMLEnvelope>. Hãy tạo gói theo cấu trúc edXML > edXMLEnvelope > edXMLHeader.".into(),
                "The package has no <edXMLEnvelope>. Build it as edXML > edXMLEnvelope > edXMLHeader.".into(),
            );
            return None;
        };
        let mut header = None;
        let mut body = None;
        for (c, name) in self.children(envelope) {
            match &*name {
                "edXMLHeader" => self.once(&mut header, c, |_| Some(c)),
                "edXMLBody" => self.once(&mut body, c, |_| Some(c)),
                // Seen in the wild inside the envelope; accepted where it is.
                "AttachmentEncoded" => attachment_blocks.push(c),
                _ => self.unknown(c, "edXMLEnvelope"),
            }
        }
        let Some(header) = header else {
            self.error(
                "not_edxml",
                envelope,
                "Gói tin không có <edXMLHeader>. Hãy đặt MessageHeader (hoặc Status) và TraceHeaderList trong edXMLEnvelope/edXMLHeader.".into(),
                "The package has no <edXMLHeader>. Put MessageHeader (or Status) and TraceHeaderList in edXMLEnvelope/edXMLHeader.".into(),
            );
            return None;
        };

        let mut message_header = None;
        let mut status_block = None;
        let mut trace_list = None;
        for (c, name) in self.children(header) {
            match &*name {
                "MessageHeader" => self.once(&mut message_header, c, |_| Some(c)),
                "Status" => self.once(&mut status_block, c, |_| Some(c)),
                "TraceHeaderList" => self.once(&mut trace_list, c, |_| Some(c)),
                _ => self.unknown(c, "edXMLHeader"),
            }
        }
        let trace = match trace_list {
            Some(t) => self.trace_list(t),
            None => TraceHeaderList::default(),
        };

        // Kind: a status package has StatusCode in its header (Status, or MessageHeader as one vendor writes it).
        let status_in_message_header = message_header.is_some_and(|m| {
            self.node(m)
                .children
                .iter()
                .any(|&c| &*self.node(c).name == "StatusCode")
        });
        if let Some(s) = status_block {
            if let Some(m) = message_header {
                self.warn(
                    "unknown_element",
                    m,
                    "edXMLHeader có cả <Status> lẫn <MessageHeader>; đã đọc như gói tin trạng thái và bỏ qua <MessageHeader>. Một gói tin chỉ nên có một trong hai.".into(),
                    "edXMLHeader has both <Status> and <MessageHeader>; read as a status package and <MessageHeader> is ignored. A package should have only one of them.".into(),
                );
            }
            return self
                .status(s, trace, body, &attachment_blocks)
                .map(Package::Status);
        }
        if let Some(m) = message_header {
            if status_in_message_header {
                self.warn(
                    "status_container",
                    m,
                    "Các trường trạng thái nằm trong <MessageHeader> thay vì <Status>; đã đọc như gói tin trạng thái. Hãy dùng phần tử <Status>.".into(),
                    "Status fields are inside <MessageHeader> instead of <Status>; read as a status package. Use the <Status> element.".into(),
                );
                return self
                    .status(m, trace, body, &attachment_blocks)
                    .map(Package::Status);
            }
            return self
                .document(m, trace, body, &attachment_blocks)
                .map(Package::Document);
        }
        self.error(
            "not_edxml",
            header,
            "edXMLHeader không có <MessageHeader> (gói văn bản) hay <Status> (gói trạng thái). Hãy bổ sung khối tương ứng.".into(),
            "edXMLHeader has neither <MessageHeader> (document package) nor <Status> (status package). Add the right block.".into(),
        );
        None
    }

    fn organization(&mut self, id: usize) -> Organization {
        let mut organ_id = None;
        let mut o = Organization::default();
        for (c, name) in self.children(id) {
            match &*name {
                "OrganId" => self.once(&mut organ_id, c, |b| Some((b.text(c), c))),
                "OrganizationInCharge" => {
                    self.once(&mut o.organization_in_charge, c, |b| b.some_text(c))
                }
                "OrganName" => self.once(&mut o.organ_name, c, |b| b.some_text(c)),
                "OrganAdd" => self.once(&mut o.organ_add, c, |b| b.some_text(c)),
                "Email" => self.once(&mut o.email, c, |b| b.some_text(c)),
                "Telephone" => self.once(&mut o.telephone, c, |b| b.some_text(c)),
                "Fax" => self.once(&mut o.fax, c, |b| b.some_text(c)),
                "Website" => self.once(&mut o.website, c, |b| b.some_text(c)),
                _ => self.unknown(c, "From/To"),
            }
        }
        if let Some((code, at)) = organ_id {
            if !code.is_empty() {
                self.check_unit_code(at, &code);
            }
            o.organ_id = code;
        }
        o
    }

    fn require_from(
        &mut self,
        container: usize,
        from: Option<(usize, Organization)>,
    ) -> Option<Organization> {
        match from {
            None => {
                self.error(
                    "no_from",
                    container,
                    "Gói tin không có <From> (đơn vị gửi). Hãy bổ sung khối From với OrganId là mã định danh của đơn vị gửi.".into(),
                    "The package has no <From> (sending unit). Add a From block whose OrganId is the sender's unit code.".into(),
                );
                None
            }
            Some((at, o)) if o.organ_id.is_empty() => {
                self.error(
                    "no_from",
                    at,
                    "<From> không có OrganId nên không biết đơn vị gửi. Hãy ghi mã định danh của đơn vị gửi vào From/OrganId.".into(),
                    "<From> has no OrganId, so the sender is unknown. Put the sender's unit code in From/OrganId.".into(),
                );
                None
            }
            Some((_, o)) => Some(o),
        }
    }

    fn document(
        &mut self,
        mh: usize,
        trace: TraceHeaderList,
        body: Option<usize>,
        attachment_blocks: &[usize],
    ) -> Option<Document> {
        let mut d = Document {
            trace,
            ..Document::default()
        };
        let mut from = None;
        let mut to = Vec::new();
        let mut to_places = None;
        for (c, name) in self.children(mh) {
            match &*name {
                "From" => self.once(&mut from, c, |b| Some((c, b.organization(c)))),
                "To" => {
                    let o = self.organization(c);
                    to.push((c, o));
                }
                "DocumentId" => self.once(&mut d.document_id, c, |b| b.some_text(c)),
                "Code" => self.once(&mut d.code, c, |b| Some(b.code_block(c))),
                "PromulgationInfo" => self.once(&mut d.promulgation_info, c, |b| {
                    Some(b.promulgation_info(c))
                }),
                "DocumentType" => self.once(&mut d.document_type, c, |b| Some(b.document_type(c))),
                "Subject" => self.once(&mut d.subject, c, |b| b.some_text(c)),
                "Content" => self.once(&mut d.content, c, |b| b.some_text(c)),
                "SignerInfo" => self.once(&mut d.signer_info, c, |b| Some(b.signer_info(c))),
                "DueDate" => self.once(&mut d.due_date, c, |b| b.date(c)),
                "ToPlaces" => {
                    self.once(&mut to_places, c, |b| Some(b.list(c, "Place", "ToPlaces")))
                }
                "OtherInfo" => self.once(&mut d.other_info, c, |b| Some(b.other_info(c))),
                "ResponseFor" => {
                    let r = self.response_for(c);
                    d.response_for.push(r);
                }
                "SteeringType" => {
                    self.once(&mut d.steering_type, c, |b| b.code(c, SteeringType::parse))
                }
                _ => self.unknown(c, "MessageHeader"),
            }
        }
        d.to_places = to_places.unwrap_or_default();
        let from = self.require_from(mh, from);
        if to.is_empty() {
            self.error(
                "no_to",
                mh,
                "Gói văn bản không có <To> (đơn vị nhận) nên không thể chuyển đi. Hãy thêm ít nhất một khối To với OrganId của đơn vị nhận.".into(),
                "The document has no <To> (recipient), so it cannot be delivered. Add at least one To block with the recipient's OrganId.".into(),
            );
        }
        for (at, o) in to {
            if o.organ_id.is_empty() {
                self.error(
                    "no_to",
                    at,
                    "Khối <To> này không có OrganId nên không thể chuyển tới đơn vị nhận. Hãy ghi mã định danh đơn vị nhận vào To/OrganId.".into(),
                    "This <To> block has no OrganId, so it cannot be delivered. Put the recipient's unit code in To/OrganId.".into(),
                );
            }
            d.to.push(o);
        }
        for (field, present) in [
            ("DocumentId", d.document_id.is_some()),
            ("Subject", d.subject.is_some()),
        ] {
            if !present {
                self.warn(
                    "missing_field",
                    mh,
                    format!("MessageHeader không có <{field}>. Gói vẫn được chuyển, nhưng hãy bổ sung {field} để đơn vị nhận tra cứu được văn bản."),
                    format!("MessageHeader has no <{field}>. The package is still carried, but add {field} so the recipient can identify the document."),
                );
            }
        }
        if let Some(body) = body {
            d.references = self.manifest(body);
        }
        for &block in attachment_blocks {
            let mut atts = self.attachment_block(block);
            d.attachments.append(&mut atts);
        }
        self.link_attachments(&d.references, &d.attachments);
        d.from = from?;
        Some(d)
    }

    fn status(
        &mut self,
        container: usize,
        trace: TraceHeaderList,
        body: Option<usize>,
        attachment_blocks: &[usize],
    ) -> Option<Status> {
        let mut s = Status {
            trace,
            ..Status::default()
        };
        let mut from = None;
        let mut response_for = None;
        let mut status_code = None;
        for (c, name) in self.children(container) {
            match &*name {
                "From" => self.once(&mut from, c, |b| Some((c, b.organization(c)))),
                "ResponseFor" => self.once(&mut response_for, c, |b| Some(b.response_for(c))),
                "StaffInfo" => self.once(&mut s.staff_info, c, |b| Some(b.staff_info(c))),
                "StatusCode" => self.once(&mut status_code, c, |b| b.code(c, StatusCode::parse)),
                "Description" => self.once(&mut s.description, c, |b| b.some_text(c)),
                "Timestamp" => self.once(&mut s.timestamp, c, |b| b.timestamp(c)),
                _ => self.unknown(c, "Status"),
            }
        }
        for &b in body.iter().chain(attachment_blocks) {
            if !self.node(b).children.is_empty() {
                let name = self.node(b).name.clone();
                self.warn(
                    "unknown_element",
                    b,
                    format!("Gói tin trạng thái không mang tệp đính kèm; nội dung <{name}> bị bỏ qua."),
                    format!("A status package carries no attachments; the content of <{name}> is ignored."),
                );
            }
        }
        let from = self.require_from(container, from);
        if status_code.is_none() {
            self.error(
                "no_status_code",
                container,
                "Gói tin trạng thái không có <StatusCode>. Hãy ghi mã trạng thái (01 Đã đến, 02 Từ chối, 03 Đã tiếp nhận, 04, 05, 06, 13, 15, 16).".into(),
                "The status package has no <StatusCode>. Add the status code (01 arrived, 02 rejected, 03 registered, 04, 05, 06, 13, 15, 16).".into(),
            );
        }
        if response_for.is_none() {
            self.error(
                "no_response_for",
                container,
                "Gói tin trạng thái không có <ResponseFor> nên không biết trạng thái này thuộc văn bản nào. Hãy ghi ResponseFor với OrganId, Code, PromulgationDate, DocumentId của văn bản gốc.".into(),
                "The status package has no <ResponseFor>, so it is unknown which document it reports on. Add ResponseFor with the original document's OrganId, Code, PromulgationDate and DocumentId.".into(),
            );
        }
        s.from = from?;
        s.status_code = status_code?;
        s.response_for = response_for?;
        Some(s)
    }

    fn code_block(&mut self, id: usize) -> Code {
        let mut c = Code::default();
        for (k, name) in self.children(id) {
            match &*name {
                "CodeNumber" => self.once(&mut c.code_number, k, |b| b.some_text(k)),
                "CodeNotation" => self.once(&mut c.code_notation, k, |b| b.some_text(k)),
                _ => self.unknown(k, "Code"),
            }
        }
        c
    }

    fn promulgation_info(&mut self, id: usize) -> PromulgationInfo {
        let mut p = PromulgationInfo::default();
        for (k, name) in self.children(id) {
            match &*name {
                "Place" => self.once(&mut p.place, k, |b| b.some_text(k)),
                "PromulgationDate" => self.once(&mut p.promulgation_date, k, |b| b.date(k)),
                _ => self.unknown(k, "PromulgationInfo"),
            }
        }
        p
    }

    fn document_type(&mut self, id: usize) -> DocumentType {
        let mut t = DocumentType::default();
        for (k, name) in self.children(id) {
            match &*name {
                "Type" => self.once(&mut t.type_code, k, |b| b.number(k)),
                "TypeDetail" => self.once(&mut t.type_detail, k, |b| b.number(k)),
                "TypeName" => self.once(&mut t.type_name, k, |b| b.some_text(k)),
                _ => self.unknown(k, "DocumentType"),
            }
        }
        t
    }

    fn signer_info(&mut self, id: usize) -> SignerInfo {
        let mut s = SignerInfo::default();
        for (k, name) in self.children(id) {
            match &*name {
                "Competence" => self.once(&mut s.competence, k, |b| b.some_text(k)),
                "Position" => self.once(&mut s.position, k, |b| b.some_text(k)),
                "FullName" => self.once(&mut s.full_name, k, |b| b.some_text(k)),
                _ => self.unknown(k, "SignerInfo"),
            }
        }
        s
    }

    fn other_info(&mut self, id: usize) -> OtherInfo {
        let mut o = OtherInfo::default();
        let mut appendixes = None;
        for (k, name) in self.children(id) {
            match &*name {
                "Priority" => self.once(&mut o.priority, k, |b| b.code(k, Priority::parse)),
                "SphereOfPromulgation" => {
                    self.once(&mut o.sphere_of_promulgation, k, |b| b.some_text(k))
                }
                "TyperNotation" => self.once(&mut o.typer_notation, k, |b| b.some_text(k)),
                "PromulgationAmount" => self.once(&mut o.promulgation_amount, k, |b| b.number(k)),
                "PageAmount" => self.once(&mut o.page_amount, k, |b| b.number(k)),
                "Direction" => self.once(&mut o.direction, k, |b| b.some_text(k)),
                "Appendixes" => self.once(&mut appendixes, k, |b| {
                    Some(b.list(k, "Appendix", "Appendixes"))
                }),
                _ => self.unknown(k, "OtherInfo"),
            }
        }
        o.appendixes = appendixes.unwrap_or_default();
        o
    }

    /// A list of text items (`ToPlaces/Place*`, `Appendixes/Appendix*`, `OrganIdList/OrganId*`).
    fn list(&mut self, id: usize, item: &str, within: &str) -> Vec<String> {
        let mut v = Vec::new();
        for (k, name) in self.children(id) {
            if &*name == item {
                let t = self.text(k);
                v.push(t);
            } else {
                self.unknown(k, within);
            }
        }
        v
    }

    fn response_for(&mut self, id: usize) -> ResponseFor {
        let mut r = ResponseFor::default();
        for (k, name) in self.children(id) {
            match &*name {
                "OrganId" => self.once(&mut r.organ_id, k, |b| b.some_text(k)),
                "Code" => self.once(&mut r.code, k, |b| b.some_text(k)),
                "PromulgationDate" => self.once(&mut r.promulgation_date, k, |b| b.date(k)),
                "DocumentId" => self.once(&mut r.document_id, k, |b| b.some_text(k)),
                _ => self.unknown(k, "ResponseFor"),
            }
        }
        r
    }

    fn staff_info(&mut self, id: usize) -> StaffInfo {
        let mut s = StaffInfo::default();
        for (k, name) in self.children(id) {
            match &*name {
                "Department" => self.once(&mut s.department, k, |b| b.some_text(k)),
                "Staff" => self.once(&mut s.staff, k, |b| b.some_text(k)),
                "Email" => self.once(&mut s.email, k, |b| b.some_text(k)),
                "Mobile" => self.once(&mut s.mobile, k, |b| b.some_text(k)),
                _ => self.unknown(k, "StaffInfo"),
            }
        }
        s
    }

    fn trace_list(&mut self, id: usize) -> TraceHeaderList {
        let mut t = TraceHeaderList::default();
        for (k, name) in self.children(id) {
            match &*name {
                "TraceHeader" => {
                    let h = self.trace_header(k);
                    t.trace_headers.push(h);
                }
                "Bussiness" => self.once(&mut t.business, k, |b| Some(b.business(k))),
                "Business" => {
                    self.business_spelling(k);
                    self.once(&mut t.business, k, |b| Some(b.business(k)));
                }
                _ => self.unknown(k, "TraceHeaderList"),
            }
        }
        t
    }

    fn business_spelling(&mut self, id: usize) {
        let name = self.node(id).name.clone();
        let wire = name.replacen("Business", "Bussiness", 1);
        self.warn(
            "business_spelling",
            id,
            format!("Phần tử <{name}> được viết khác chuẩn trên trục (<{wire}>, hai chữ s); đã đọc như <{wire}>. Hãy dùng cách viết <{wire}>."),
            format!("Element <{name}> differs from the wire spelling <{wire}> (double s); read as <{wire}>. Use the spelling <{wire}>."),
        );
    }

    fn trace_header(&mut self, id: usize) -> TraceHeader {
        let mut organ_id = None;
        let mut h = TraceHeader::default();
        for (k, name) in self.children(id) {
            match &*name {
                "OrganId" => self.once(&mut organ_id, k, |b| Some((b.text(k), k))),
                "Timestamp" => self.once(&mut h.timestamp, k, |b| b.timestamp(k)),
                _ => self.unknown(k, "TraceHeader"),
            }
        }
        match organ_id {
            Some((code, at)) => {
                if !code.is_empty() {
                    self.check_unit_code(at, &code);
                }
                h.organ_id = code;
            }
            None => self.warn(
                "missing_field",
                id,
                "<TraceHeader> không có OrganId nên không rõ chặng này do đơn vị nào ghi. Hãy ghi mã định danh của đơn vị vào TraceHeader/OrganId.".into(),
                "<TraceHeader> has no OrganId, so it is unknown which unit recorded this hop. Put the unit code in TraceHeader/OrganId.".into(),
            ),
        }
        h
    }

    fn business(&mut self, id: usize) -> Business {
        let mut b = Business::default();
        let mut replacements = None;
        for (k, name) in self.children(id) {
            let wire: &str = &name;
            let wire = match wire {
                "BusinessDocType" | "BusinessDocReason" | "BusinessDocumentInfo" => {
                    self.business_spelling(k);
                    name.replacen("Business", "Bussiness", 1)
                }
                other => other.to_owned(),
            };
            match wire.as_str() {
                "BussinessDocType" => {
                    self.once(&mut b.doc_type, k, |s| s.code(k, BusinessDocType::parse))
                }
                "BussinessDocReason" => self.once(&mut b.doc_reason, k, |s| s.some_text(k)),
                "DocumentId" => self.once(&mut b.document_id, k, |s| s.some_text(k)),
                "Paper" => self.once(&mut b.paper, k, |s| s.number(k)),
                "StaffInfo" => self.once(&mut b.staff_info, k, |s| Some(s.staff_info(k))),
                "BussinessDocumentInfo" => self.once(&mut b.document_info, k, |s| {
                    Some(s.business_document_info(k))
                }),
                "ReplacementInfoList" => {
                    self.once(&mut replacements, k, |s| Some(s.replacement_list(k)))
                }
                _ => self.unknown(k, "Bussiness"),
            }
        }
        b.replacements = replacements.unwrap_or_default();
        b
    }

    fn business_document_info(&mut self, id: usize) -> BusinessDocumentInfo {
        let mut info = BusinessDocumentInfo::default();
        let mut receivers = None;
        for (k, name) in self.children(id) {
            match &*name {
                "DocumentInfo" => self.once(&mut info.document_info, k, |b| b.some_text(k)),
                "DocumentReceiver" => self.once(&mut info.document_receiver, k, |b| b.some_text(k)),
                "ReceiverList" => self.once(&mut receivers, k, |b| Some(b.receiver_list(k))),
                _ => self.unknown(k, "BussinessDocumentInfo"),
            }
        }
        info.receivers = receivers.unwrap_or_default();
        info
    }

    fn receiver_list(&mut self, id: usize) -> Vec<Receiver> {
        let mut v = Vec::new();
        for (k, name) in self.children(id) {
            if &*name != "Receiver" {
                self.unknown(k, "ReceiverList");
                continue;
            }
            let mut r = Receiver::default();
            for (q, qn) in self.children(k) {
                match &*qn {
                    "ReceiverType" => self.once(&mut r.receiver_type, q, |b| b.number(q)),
                    "OrganId" => self.once(&mut r.organ_id, q, |b| b.some_text(q)),
                    _ => self.unknown(q, "Receiver"),
                }
            }
            v.push(r);
        }
        v
    }

    fn replacement_list(&mut self, id: usize) -> Vec<ReplacementInfo> {
        let mut v = Vec::new();
        for (k, name) in self.children(id) {
            if &*name != "ReplacementInfo" {
                self.unknown(k, "ReplacementInfoList");
                continue;
            }
            let mut r = ReplacementInfo::default();
            let mut organs = None;
            for (q, qn) in self.children(k) {
                match &*qn {
                    "DocumentId" => self.once(&mut r.document_id, q, |b| b.some_text(q)),
                    "OrganIdList" => self.once(&mut organs, q, |b| {
                        Some(b.list(q, "OrganId", "OrganIdList"))
                    }),
                    _ => self.unknown(q, "ReplacementInfo"),
                }
            }
            r.organ_ids = organs.unwrap_or_default();
            v.push(r);
        }
        v
    }

    /// Strips `cid:` and warns when the prefix is missing or differs.
    fn content_id(&mut self, id: usize) -> String {
        let raw = self.text(id);
        let inner = raw
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(&raw);
        let (cid, canonical) = match inner.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("cid:") => (
                inner[4..].to_owned(),
                p == "cid:" && inner.len() == raw.len(),
            ),
            _ => (inner.to_owned(), false),
        };
        if !canonical {
            self.warn(
                "cid_prefix",
                id,
                format!("ContentId \"{raw}\" không ở dạng chuẩn \"cid:{cid}\"; đã đọc là \"{cid}\". Hãy ghi ContentId dạng cid:… giống nhau ở Reference và Attachment."),
                format!("ContentId \"{raw}\" is not in the canonical form \"cid:{cid}\"; read as \"{cid}\". Write ContentId as cid:… in both Reference and Attachment."),
            );
        }
        cid
    }

    fn manifest(&mut self, body: usize) -> Vec<Reference> {
        let mut refs = Vec::new();
        let mut manifest = None;
        for (k, name) in self.children(body) {
            match &*name {
                "edXMLManifest" => self.once(&mut manifest, k, |_| Some(k)),
                _ => self.unknown(k, "edXMLBody"),
            }
        }
        let Some(manifest) = manifest else {
            return refs;
        };
        for (k, name) in self.children(manifest) {
            if &*name != "Reference" {
                self.unknown(k, "edXMLManifest");
                continue;
            }
            let mut r = Reference::default();
            let mut cid = None;
            for (q, qn) in self.children(k) {
                match &*qn {
                    "ContentId" => self.once(&mut cid, q, |b| Some(b.content_id(q))),
                    "ContentType" => self.once(&mut r.content_type, q, |b| b.some_text(q)),
                    "Description" => self.once(&mut r.description, q, |b| b.some_text(q)),
                    "AttachmentName" => self.once(&mut r.attachment_name, q, |b| b.some_text(q)),
                    _ => self.unknown(q, "Reference"),
                }
            }
            match cid {
                Some(c) => r.content_id = c,
                None => self.warn(
                    "missing_field",
                    k,
                    "<Reference> không có ContentId nên không gắn được với tệp đính kèm nào. Hãy ghi ContentId dạng cid:….".into(),
                    "<Reference> has no ContentId, so it names no attachment. Add a ContentId of the form cid:….".into(),
                ),
            }
            self.reference_nodes.push(k);
            refs.push(r);
        }
        refs
    }

    fn attachment_block(&mut self, block: usize) -> Vec<Attachment> {
        let mut out = Vec::new();
        for (k, name) in self.children(block) {
            if &*name != "Attachment" {
                self.unknown(k, "AttachmentEncoded");
                continue;
            }
            let mut a = Attachment::default();
            let mut cid = None;
            let mut data = None;
            for (q, qn) in self.children(k) {
                match &*qn {
                    "ContentId" => self.once(&mut cid, q, |b| Some(b.content_id(q))),
                    "AttachmentName" => self.once(&mut a.name, q, |b| b.some_text(q)),
                    "Description" => self.once(&mut a.description, q, |b| b.some_text(q)),
                    "ContentType" => self.once(&mut a.content_type, q, |b| b.some_text(q)),
                    "ContentTransferEncoded" => self.once(&mut data, q, |b| Some(b.decode(q))),
                    _ => self.unknown(q, "Attachment"),
                }
            }
            match cid {
                Some(c) => a.content_id = c,
                None => self.warn(
                    "missing_field",
                    k,
                    "<Attachment> không có ContentId nên không gắn được với Reference nào. Hãy ghi ContentId dạng cid:….".into(),
                    "<Attachment> has no ContentId, so no Reference can name it. Add a ContentId of the form cid:….".into(),
                ),
            }
            match data {
                Some(d) => a.data = d,
                None => self.warn(
                    "missing_field",
                    k,
                    "<Attachment> không có ContentTransferEncoded (nội dung base64); coi như tệp rỗng. Hãy đưa nội dung tệp đã mã hóa base64 vào ContentTransferEncoded.".into(),
                    "<Attachment> has no ContentTransferEncoded (base64 content); treated as an empty file. Put the base64-encoded file in ContentTransferEncoded.".into(),
                ),
            }
            self.attachment_nodes.push(k);
            out.push(a);
        }
        out
    }

    /// Decodes base64 straight from the input text, skipping whitespace, in fixed-size chunks.
    fn decode(&mut self, id: usize) -> Vec<u8> {
        if !self.node(id).children.is_empty() {
            self.unknown(id, "Attachment");
        }
        let result = {
            let text: &str = &self.node(id).text;
            decode_base64(text).map_err(|e| match e {
                Base64Error::BadChar { index, ch } => {
                    (self.tree.offset_of(text).map(|o| o + index), Some(ch))
                }
                Base64Error::Malformed => (None, None),
            })
        };
        match result {
            Ok(data) => data,
            Err((offset, ch)) => {
                let path = self.path(id);
                let offset = offset.unwrap_or(self.node(id).offset);
                let (vi, en) = match ch {
                    Some(c) => (
                        format!("Nội dung tệp đính kèm không phải base64: gặp ký tự {c:?}. Hãy mã hóa tệp bằng base64 chuẩn (A–Z a–z 0–9 + / =) rồi gửi lại."),
                        format!("The attachment content is not base64: found the character {c:?}. Encode the file with standard base64 (A–Z a–z 0–9 + / =) and send it again."),
                    ),
                    None => (
                        "Nội dung tệp đính kèm không giải mã được từ base64 (độ dài hoặc phần đệm '=' sai, có thể bị cắt cụt). Hãy mã hóa lại tệp bằng base64 chuẩn rồi gửi lại.".into(),
                        "The attachment content does not decode as base64 (wrong length or '=' padding; it may be truncated). Re-encode the file with standard base64 and send it again.".into(),
                    ),
                };
                self.diag.error("bad_attachment", offset, path, vi, en);
                Vec::new()
            }
        }
    }

    fn link_attachments(&mut self, references: &[Reference], attachments: &[Attachment]) {
        let ref_nodes = std::mem::take(&mut self.reference_nodes);
        let att_nodes = std::mem::take(&mut self.attachment_nodes);
        for (r, &node) in references.iter().zip(&ref_nodes) {
            if !r.content_id.is_empty() && !attachments.iter().any(|a| a.content_id == r.content_id)
            {
                let cid = &r.content_id;
                self.error(
                    "missing_attachment",
                    node,
                    format!("Danh mục (edXMLManifest) nêu tệp cid:{cid} nhưng AttachmentEncoded không có Attachment nào có ContentId này. Hãy đính kèm tệp đó hoặc bỏ Reference khỏi danh mục."),
                    format!("The manifest (edXMLManifest) names cid:{cid} but AttachmentEncoded has no Attachment with that ContentId. Attach the file or remove the Reference."),
                );
            }
        }
        for (a, &node) in attachments.iter().zip(&att_nodes) {
            if !references.iter().any(|r| r.content_id == a.content_id) {
                let cid = &a.content_id;
                self.warn(
                    "unreferenced_attachment",
                    node,
                    format!("Tệp đính kèm cid:{cid} không được nêu trong danh mục edXMLManifest; tệp vẫn được giữ. Hãy thêm một Reference cho tệp này."),
                    format!("Attachment cid:{cid} is not listed in the edXMLManifest; it is kept. Add a Reference for it."),
                );
            }
        }
    }
}

const XML_SPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// Characters XML 1.0 allows in content.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

// ---------------------------------------------------------------------------------------------------------------
// Values

enum Base64Error {
    BadChar { index: usize, ch: char },
    Malformed,
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Decodes base64 that may be wrapped (XML whitespace anywhere) straight from the input text: one pass when the
/// text is on one line (the canonical form), otherwise line by line through a small buffer. The text is never
/// copied whole.
fn decode_base64(text: &str) -> Result<Vec<u8>, Base64Error> {
    const CHUNK: usize = 16 * 1024;
    let bytes = text.as_bytes();
    // Data after padding would be silently accepted by chunked decoding, so check it first.
    if let Some(p) = memchr::memchr(b'=', bytes)
        && bytes[p..].iter().any(|&b| b != b'=' && !is_xml_space(b))
    {
        return Err(locate_base64_error(text));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 3);
    let result = if !bytes.iter().any(|&b| is_xml_space(b)) {
        BASE64.decode_vec(bytes, &mut out)
    } else {
        let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK + 256);
        let mut result = Ok(());
        for line in bytes.split(|&b| is_xml_space(b)) {
            chunk.extend_from_slice(line);
            if chunk.len() >= CHUNK {
                let cut = chunk.len() - chunk.len() % 4;
                if let Err(e) = BASE64.decode_vec(&chunk[..cut], &mut out) {
                    result = Err(e);
                    break;
                }
                chunk.drain(..cut);
            }
        }
        match result {
            Ok(()) if !chunk.is_empty() => BASE64.decode_vec(&chunk, &mut out),
            other => other,
        }
    };
    match result {
        Ok(()) => Ok(out),
        Err(_) => Err(locate_base64_error(text)),
    }
}

/// On the error path only: the first character that is not base64 (or data after padding), if any.
fn locate_base64_error(text: &str) -> Base64Error {
    let mut padding = false;
    for (index, ch) in text.char_indices() {
        match ch {
            ' ' | '\t' | '\r' | '\n' => {}
            '=' => padding = true,
            'A'..='Z' | 'a'..='z' | '0'..='9' | '+' | '/' if !padding => {}
            _ => return Base64Error::BadChar { index, ch },
        }
    }
    Base64Error::Malformed
}

/// A date (and maybe a time) understood from one of the accepted shapes.
struct When {
    date: Date,
    time: Option<(u8, u8, u8)>,
    /// `yyyy/MM/dd` (with `HH:mm:ss` after one space, if a time is present), zero-padded.
    canonical: bool,
}

/// Accepts `yyyy/MM/dd`, `dd/MM/yyyy` (also with `-` or `.`), optionally followed by a space or `T` and
/// `HH:mm[:ss]`.
fn parse_when(s: &str) -> Option<When> {
    let (date_part, time_part, sep_space) = match s.find([' ', 'T']) {
        Some(i) => (
            &s[..i],
            Some(s[i + 1..].trim_start()),
            s.as_bytes()[i] == b' ',
        ),
        None => (s, None, true),
    };
    let sep = date_part.chars().find(|c| matches!(c, '/' | '-' | '.'))?;
    let groups: Vec<&str> = date_part.split(sep).collect();
    let [a, b, c] = groups.as_slice() else {
        return None;
    };
    let digits = |g: &str| !g.is_empty() && g.len() <= 4 && g.bytes().all(|x| x.is_ascii_digit());
    if !(digits(a) && digits(b) && digits(c)) {
        return None;
    }
    let (y, m, d, ymd) = if a.len() == 4 {
        (*a, *b, *c, true)
    } else if c.len() == 4 {
        (*c, *b, *a, false)
    } else {
        return None;
    };
    let date = Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
    let mut canonical = ymd && sep == '/' && m.len() == 2 && d.len() == 2;
    let time = match time_part {
        None => None,
        Some(t) => {
            let parts: Vec<&str> = t.split(':').collect();
            let num = |g: &str| -> Option<u8> {
                (!g.is_empty() && g.len() <= 2 && g.bytes().all(|x| x.is_ascii_digit()))
                    .then(|| g.parse().ok())
                    .flatten()
            };
            let (h, mi, se) = match parts.as_slice() {
                [h, mi] => (num(h)?, num(mi)?, 0),
                [h, mi, se] => (num(h)?, num(mi)?, num(se)?),
                _ => return None,
            };
            if h > 23 || mi > 59 || se > 59 {
                return None;
            }
            canonical = canonical
                && sep_space
                && parts.len() == 3
                && parts.iter().all(|p| p.len() == 2)
                && s.len() == 19;
            Some((h, mi, se))
        }
    };
    Some(When {
        date,
        time,
        canonical,
    })
}
