//! A small read-only XML tree built once with quick-xml: exactly what
//! canonicalization and signature processing need (resolved namespaces,
//! normalized attribute values, byte offsets for splicing), nothing more.
//! DTDs are rejected, so entity tricks cannot happen.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::error::Error;

/// Deepest element nesting we accept (edXML needs about ten levels).
pub(crate) const MAX_DEPTH: usize = 256;

pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

pub(crate) type NodeId = usize;

#[derive(Debug)]
pub(crate) enum Node<'a> {
    Element(Element<'a>),
    /// Character data, already unescaped and end-of-line normalized.
    Text(Cow<'a, str>),
    Comment(&'a str),
    Pi {
        target: &'a str,
        data: &'a str,
    },
}

#[derive(Debug)]
pub(crate) struct Attr<'a> {
    pub prefix: &'a str,
    pub local: &'a str,
    /// Resolved namespace URI ("" for unprefixed attributes).
    pub ns: Cow<'a, str>,
    /// Normalized value (references resolved, whitespace normalized).
    pub value: Cow<'a, str>,
}

#[derive(Debug)]
pub(crate) struct Element<'a> {
    pub prefix: &'a str,
    pub local: &'a str,
    /// Resolved namespace URI of the element ("" when none).
    pub ns: Cow<'a, str>,
    /// Namespace declarations on this element: (prefix, uri); prefix "" is the default.
    pub decls: Vec<(&'a str, Cow<'a, str>)>,
    pub attrs: Vec<Attr<'a>>,
    pub parent: Option<NodeId>,
    pub children: Vec<NodeId>,
    /// Byte offset of `<` of the start tag.
    pub start: usize,
    /// Byte offset just after the start tag's `>`.
    pub start_tag_end: usize,
    /// Byte offset of `</` of the end tag, or `None` for `<empty/>`.
    pub end_tag_start: Option<usize>,
    /// Byte offset just after the element.
    pub end: usize,
}

impl Element<'_> {
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns == ns
    }

    pub(crate) fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.local == local && a.ns.is_empty())
            .map(|a| a.value.as_ref())
    }
}

/// A parsed document borrowing from its source text.
#[derive(Debug)]
pub(crate) struct Doc<'a> {
    pub nodes: Vec<Node<'a>>,
    /// Children of the document node (comments, PIs, the root element), in order.
    pub top: Vec<NodeId>,
    pub root: NodeId,
}

fn malformed(pos: usize, detail_vi: &str, detail_en: &str) -> Error {
    Error::new(
        "DSIG_XML_MALFORMED",
        format!(
            "Gói tin không phải XML hợp lệ tại byte {pos}: {detail_vi}. Sửa gói tin rồi gửi lại."
        ),
        format!(
            "The package is not well-formed XML at byte {pos}: {detail_en}. Fix the package and send it again."
        ),
    )
}

fn split_qname(q: &str) -> (&str, &str) {
    match q.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", q),
    }
}

/// Namespace scope during parsing: (prefix, uri, depth of declaring element).
struct Scope<'a> {
    bindings: Vec<(&'a str, Cow<'a, str>, usize)>,
}

impl<'a> Scope<'a> {
    fn lookup(&self, prefix: &str) -> Option<&Cow<'a, str>> {
        if prefix == "xml" {
            return None;
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _, _)| *p == prefix)
            .map(|(_, u, _)| u)
    }
    fn pop_depth(&mut self, depth: usize) {
        while self.bindings.last().is_some_and(|(_, _, d)| *d >= depth) {
            self.bindings.pop();
        }
    }
}

impl<'a> Doc<'a> {
    /// Parses UTF-8 XML bytes. Rejects DTDs, undeclared prefixes, unknown
    /// entities, excessive depth and anything quick-xml finds ill-formed.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Doc<'a>, Error> {
        let src = std::str::from_utf8(bytes).map_err(|e| {
            Error::new(
                "DSIG_XML_ENCODING",
                format!(
                    "Gói tin không phải UTF-8 (byte {}). Lưu gói tin dạng UTF-8.",
                    e.valid_up_to()
                ),
                format!(
                    "The package is not UTF-8 (byte {}). Save the package as UTF-8.",
                    e.valid_up_to()
                ),
            )
        })?;
        Self::parse_str(src)
    }

    pub(crate) fn parse_str(src: &'a str) -> Result<Doc<'a>, Error> {
        // A UTF-8 byte-order mark is fine; offsets stay relative to `src`.
        let base = if src.starts_with('\u{feff}') { 3 } else { 0 };
        let mut reader = Reader::from_str(&src[base..]);
        reader.config_mut().trim_text(false);
        reader.config_mut().check_end_names = true;
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity((src.len() / 40).min(4096) + 8);
        let mut top: Vec<NodeId> = Vec::new();
        let mut stack: Vec<NodeId> = Vec::new();
        let mut scope = Scope {
            bindings: Vec::new(),
        };
        let mut root: Option<NodeId> = None;
        loop {
            let before = usize::try_from(reader.buffer_position())
                .unwrap_or(usize::MAX)
                .saturating_add(base);
            let ev = reader.read_event().map_err(|e| {
                let pos = usize::try_from(reader.error_position()).unwrap_or(0) + base;
                malformed(pos, &e.to_string(), &e.to_string())
            })?;
            let after = usize::try_from(reader.buffer_position())
                .unwrap_or(usize::MAX)
                .saturating_add(base);
            let parent = stack.last().copied();
            let empty = matches!(ev, Event::Empty(_));
            let push =
                |nodes: &mut Vec<Node<'a>>, top: &mut Vec<NodeId>, node: Node<'a>| -> NodeId {
                    let id = nodes.len();
                    nodes.push(node);
                    match parent {
                        Some(p) => {
                            if let Some(Node::Element(pe)) = nodes.get_mut(p) {
                                pe.children.push(id);
                            }
                        }
                        None => top.push(id),
                    }
                    id
                };
            match ev {
                Event::Start(_) | Event::Empty(_) => {
                    if parent.is_none() && root.is_some() {
                        return Err(malformed(
                            before,
                            "có hơn một phần tử gốc",
                            "more than one root element",
                        ));
                    }
                    let depth = stack.len() + 1;
                    if depth > MAX_DEPTH {
                        return Err(malformed(
                            before,
                            &format!("lồng quá {MAX_DEPTH} cấp"),
                            &format!("nesting deeper than {MAX_DEPTH} levels"),
                        ));
                    }
                    // Borrow the tag text from `src` so the tree can outlive the event.
                    let tag: &'a str = src
                        .get(before + 1..after - if empty { 2 } else { 1 })
                        .unwrap_or("");
                    let name_len = tag
                        .find(|c: char| c.is_ascii_whitespace())
                        .unwrap_or(tag.len());
                    let qname = &tag[..name_len];
                    let (prefix, local) = split_qname(qname);
                    let mut decls = Vec::new();
                    let mut raw_attrs: Vec<(&'a str, &'a str, Cow<'a, str>)> = Vec::new();
                    let attrs_src = quick_xml::events::BytesStart::from_content(tag, name_len);
                    let has_attrs = name_len < tag.trim_end().len();
                    for a in attrs_src.attributes().with_checks(true).take(if has_attrs {
                        usize::MAX
                    } else {
                        0
                    }) {
                        let a = a.map_err(|e| malformed(before, &e.to_string(), &e.to_string()))?;
                        let key = a.key.into_inner();
                        let key: &'a str = find_sub(tag, key).unwrap_or("");
                        let value = a
                            .normalized_value(XmlVersion::Implicit1_0)
                            .map_err(|e| malformed(before, &e.to_string(), &e.to_string()))?;
                        let value: Cow<'a, str> = match value {
                            Cow::Borrowed(v) => Cow::Borrowed(find_sub(tag, v).unwrap_or("")),
                            Cow::Owned(v) => Cow::Owned(v),
                        };
                        if key == "xmlns" {
                            decls.push(("", value));
                        } else if let Some(p) = key.strip_prefix("xmlns:") {
                            if p == "xml" {
                                // Declaring the fixed xml prefix is allowed and never rendered.
                                continue;
                            }
                            if value.is_empty() {
                                return Err(malformed(
                                    before,
                                    &format!("không được bỏ khai báo tiền tố '{p}' trong XML 1.0"),
                                    &format!("prefix '{p}' cannot be undeclared in XML 1.0"),
                                ));
                            }
                            decls.push((p, value));
                        } else {
                            let (ap, al) = split_qname(key);
                            raw_attrs.push((ap, al, value));
                        }
                    }
                    for (p, u) in &decls {
                        scope.bindings.push((p, u.clone(), depth));
                    }
                    let resolve = |p: &str| -> Result<Cow<'a, str>, Error> {
                        if p == "xml" {
                            return Ok(Cow::Borrowed(XML_NS));
                        }
                        match scope.lookup(p) {
                            Some(u) => Ok(u.clone()),
                            None if p.is_empty() => Ok(Cow::Borrowed("")),
                            None => Err(malformed(
                                before,
                                &format!("tiền tố '{p}' chưa được khai báo"),
                                &format!("prefix '{p}' is not declared"),
                            )),
                        }
                    };
                    let ns = resolve(prefix)?;
                    let mut attrs = Vec::with_capacity(raw_attrs.len());
                    for (ap, al, value) in raw_attrs {
                        let ans = if ap.is_empty() {
                            Cow::Borrowed("")
                        } else {
                            resolve(ap)?
                        };
                        if attrs
                            .iter()
                            .any(|x: &Attr<'_>| x.local == al && x.ns == ans)
                        {
                            return Err(malformed(
                                before,
                                &format!("thuộc tính '{al}' lặp lại"),
                                &format!("attribute '{al}' appears twice"),
                            ));
                        }
                        attrs.push(Attr {
                            prefix: ap,
                            local: al,
                            ns: ans,
                            value,
                        });
                    }
                    let id = push(
                        &mut nodes,
                        &mut top,
                        Node::Element(Element {
                            prefix,
                            local,
                            ns,
                            decls,
                            attrs,
                            parent,
                            children: Vec::new(),
                            start: before,
                            start_tag_end: after,
                            end_tag_start: None,
                            end: after,
                        }),
                    );
                    if parent.is_none() {
                        root = Some(id);
                    }
                    if empty {
                        scope.pop_depth(depth);
                    } else {
                        stack.push(id);
                    }
                }
                Event::End(_) => {
                    let depth = stack.len();
                    if let Some(id) = stack.pop()
                        && let Some(Node::Element(el)) = nodes.get_mut(id)
                    {
                        el.end_tag_start = Some(before);
                        el.end = after;
                    }
                    scope.pop_depth(depth);
                }
                Event::Text(t) => {
                    if parent.is_some() {
                        let text = t.xml10_content();
                        let text = match text {
                            Cow::Borrowed(s) => Cow::Borrowed(find_sub(src, s).unwrap_or("")),
                            Cow::Owned(s) => Cow::Owned(s),
                        };
                        push(&mut nodes, &mut top, Node::Text(text));
                    } else if !t.trim().is_empty() {
                        return Err(malformed(
                            before,
                            "có văn bản ngoài phần tử gốc",
                            "text outside the root element",
                        ));
                    }
                }
                Event::CData(t) => {
                    if parent.is_none() {
                        return Err(malformed(
                            before,
                            "CDATA ngoài phần tử gốc",
                            "CDATA outside the root element",
                        ));
                    }
                    let text = t.xml10_content().into_owned();
                    push(&mut nodes, &mut top, Node::Text(Cow::Owned(text)));
                }
                Event::GeneralRef(r) => {
                    if parent.is_none() {
                        return Err(malformed(
                            before,
                            "tham chiếu ngoài phần tử gốc",
                            "reference outside the root element",
                        ));
                    }
                    let s: Cow<'a, str> = match r.resolve_char_ref() {
                        Ok(Some(c)) => Cow::Owned(c.to_string()),
                        Ok(None) => match &*r {
                            "lt" => Cow::Borrowed("<"),
                            "gt" => Cow::Borrowed(">"),
                            "amp" => Cow::Borrowed("&"),
                            "apos" => Cow::Borrowed("'"),
                            "quot" => Cow::Borrowed("\""),
                            other => {
                                return Err(malformed(
                                    before,
                                    &format!("thực thể '&{other};' không được hỗ trợ"),
                                    &format!("entity '&{other};' is not supported"),
                                ));
                            }
                        },
                        Err(e) => return Err(malformed(before, &e.to_string(), &e.to_string())),
                    };
                    push(&mut nodes, &mut top, Node::Text(s));
                }
                Event::Comment(c) => {
                    let c: &'a str = find_sub(src, &c).unwrap_or("");
                    push(&mut nodes, &mut top, Node::Comment(c));
                }
                Event::PI(pi) => {
                    let target: &'a str = find_sub(src, pi.target()).unwrap_or("");
                    let data: &'a str = find_sub(src, pi.content()).unwrap_or("");
                    push(&mut nodes, &mut top, Node::Pi { target, data });
                }
                Event::Decl(_) => {}
                Event::DocType(_) => {
                    return Err(Error::new(
                        "DSIG_XML_DOCTYPE",
                        format!(
                            "Gói tin có khai báo DOCTYPE tại byte {before}; DOCTYPE bị cấm vì lý do an toàn. Bỏ DOCTYPE rồi gửi lại."
                        ),
                        format!(
                            "The package has a DOCTYPE at byte {before}; DOCTYPEs are refused for safety. Remove it and send again."
                        ),
                    ));
                }
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(malformed(
                src.len(),
                "phần tử chưa được đóng",
                "an element is not closed",
            ));
        }
        let root = root.ok_or_else(|| malformed(0, "không có phần tử gốc", "no root element"))?;
        Ok(Doc { nodes, top, root })
    }

    pub(crate) fn element(&self, id: NodeId) -> Option<&Element<'a>> {
        match self.nodes.get(id) {
            Some(Node::Element(e)) => Some(e),
            _ => None,
        }
    }

    /// Element children of `id`.
    pub(crate) fn child_elements(
        &self,
        id: NodeId,
    ) -> impl Iterator<Item = (NodeId, &Element<'a>)> + '_ {
        self.element(id)
            .map(|e| e.children.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter_map(|&c| self.element(c).map(|e| (c, e)))
    }

    pub(crate) fn first_child(&self, id: NodeId, ns: &str, local: &str) -> Option<NodeId> {
        self.child_elements(id)
            .find(|(_, e)| e.is(ns, local))
            .map(|(c, _)| c)
    }

    /// All elements in document order (ids are allocated in document order).
    pub(crate) fn elements(&self) -> impl Iterator<Item = (NodeId, &Element<'a>)> + '_ {
        self.nodes.iter().enumerate().filter_map(|(i, n)| match n {
            Node::Element(e) => Some((i, e)),
            _ => None,
        })
    }

    /// Concatenated text of the direct text children of `id`.
    pub(crate) fn text(&self, id: NodeId) -> String {
        let mut s = String::new();
        if let Some(e) = self.element(id) {
            for &c in &e.children {
                if let Some(Node::Text(t)) = self.nodes.get(c) {
                    s.push_str(t);
                }
            }
        }
        s
    }

    /// Adds `<p:TraceHeader><p:OrganId>…</p:OrganId><p:Timestamp>…</p:Timestamp></p:TraceHeader>`
    /// (`p` and namespace those of `list`) as a child of `list`, right after its child `after`
    /// or first: the tree a parse of the spliced bytes would give, built without parsing them.
    /// The new nodes get ids past every other, so [`Doc::elements`] no longer runs in document
    /// order, and their byte offsets are all `at` (they have no place in the source): only
    /// tree walks (canonicalization) may follow. `organ_id` and `timestamp` must read back
    /// unchanged from escaped text, i.e. hold no control character.
    pub(crate) fn insert_trace_entry(
        &mut self,
        list: NodeId,
        after: Option<NodeId>,
        at: usize,
        organ_id: &str,
        timestamp: &str,
    ) -> Option<()> {
        let l = self.element(list)?;
        let pos = match after {
            Some(a) => l.children.iter().position(|&c| c == a)? + 1,
            None => 0,
        };
        let (prefix, ns) = (l.prefix, l.ns.clone());
        let first = self.nodes.len();
        let element = |local: &'static str, parent: NodeId, children: Vec<NodeId>| {
            Node::Element(Element {
                prefix,
                local,
                ns: ns.clone(),
                decls: Vec::new(),
                attrs: Vec::new(),
                parent: Some(parent),
                children,
                start: at,
                start_tag_end: at,
                end_tag_start: Some(at),
                end: at,
            })
        };
        // Ids: entry, OrganId, its text, Timestamp, its text.
        let (entry, organ, organ_text, stamp, stamp_text) =
            (first, first + 1, first + 2, first + 3, first + 4);
        self.nodes
            .push(element("TraceHeader", list, vec![organ, stamp]));
        self.nodes.push(element("OrganId", entry, vec![organ_text]));
        self.nodes.push(Node::Text(Cow::Owned(organ_id.to_owned())));
        self.nodes
            .push(element("Timestamp", entry, vec![stamp_text]));
        self.nodes
            .push(Node::Text(Cow::Owned(timestamp.to_owned())));
        if let Some(Node::Element(l)) = self.nodes.get_mut(list) {
            l.children.insert(pos, entry);
        }
        Some(())
    }

    /// Resolves `prefix` as in scope at element `id`.
    pub(crate) fn lookup_ns(&self, mut id: NodeId, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(XML_NS);
        }
        loop {
            let e = self.element(id)?;
            if let Some((_, u)) = e.decls.iter().find(|(p, _)| *p == prefix) {
                return Some(u);
            }
            id = e.parent?;
        }
    }
}

/// Returns the slice of `hay` that `needle` points into, so a borrow from a
/// temporary event can be re-expressed as a borrow of the source text.
fn find_sub<'a>(hay: &'a str, needle: &str) -> Option<&'a str> {
    let h = hay.as_ptr() as usize;
    let n = needle.as_ptr() as usize;
    if n >= h && n + needle.len() <= h + hay.len() {
        hay.get(n - h..n - h + needle.len())
    } else {
        None
    }
}
