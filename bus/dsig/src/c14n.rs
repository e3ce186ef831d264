//! Canonical XML 1.0 (inclusive) and Exclusive XML Canonicalization 1.0,
//! for the node-sets XML-DSig needs here: a whole document or one element's
//! subtree, minus some whole subtrees (signatures, trace entries). Output is
//! streamed into any `Write` (a hasher, a buffer).
//!
//! Namespace rules, in short: inclusive C14N renders every namespace node in
//! scope that the nearest output ancestor did not already render with the same
//! value; exclusive C14N does the same only for prefixes an element visibly
//! uses (its own prefix, its attributes' prefixes) plus an optional
//! InclusiveNamespaces prefix list.

use std::io::{self, Write};

use crate::error::Error;
use crate::xml::{Doc, Element, Node, NodeId, XML_NS};

/// Which canonicalization algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Canonical XML 1.0, `http://www.w3.org/TR/2001/REC-xml-c14n-20010315`.
    Inclusive,
    /// Exclusive XML Canonicalization 1.0, `http://www.w3.org/2001/10/xml-exc-c14n#`.
    Exclusive,
}

pub(crate) const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
pub(crate) const C14N_COMMENTS: &str =
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
pub(crate) const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub(crate) const EXC_C14N_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";

/// Options for one canonicalization run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options<'p> {
    pub method: Method,
    pub with_comments: bool,
    /// Exclusive only: prefixes treated inclusively (`#default` means the default namespace).
    pub inclusive_prefixes: &'p [String],
}

impl Method {
    /// Maps an algorithm URI to (method, with_comments).
    pub(crate) fn from_uri(uri: &str) -> Option<(Method, bool)> {
        match uri {
            C14N => Some((Method::Inclusive, false)),
            C14N_COMMENTS => Some((Method::Inclusive, true)),
            EXC_C14N => Some((Method::Exclusive, false)),
            EXC_C14N_COMMENTS => Some((Method::Exclusive, true)),
            _ => None,
        }
    }
}

/// Canonicalizes a whole XML document (public for tests and tools).
///
/// Comments are removed unless `with_comments`. Documents with a DOCTYPE are refused.
pub fn canonicalize(xml: &[u8], method: Method, with_comments: bool) -> Result<Vec<u8>, Error> {
    let doc = Doc::parse(xml)?;
    let mut out = Vec::with_capacity(xml.len());
    let opts = Options {
        method,
        with_comments,
        inclusive_prefixes: &[],
    };
    // Writing into a Vec cannot fail.
    let _ = write_node_set(&doc, None, &[], opts, &mut out);
    Ok(out)
}

/// Writes the canonical form of the node-set "subtree of `apex` (or the whole
/// document when `None`) minus the subtrees rooted at `excluded`".
pub(crate) fn write_node_set<W: Write>(
    doc: &Doc<'_>,
    apex: Option<NodeId>,
    excluded: &[NodeId],
    opts: Options<'_>,
    out: &mut W,
) -> io::Result<()> {
    write_filtered(doc, apex, excluded, None, opts, out)
}

/// Like [`write_node_set`], and in addition only element and text nodes for
/// which `visible` holds are output (an invisible element's children are still
/// visited). Attribute and namespace nodes follow their element.
pub(crate) fn write_filtered<W: Write>(
    doc: &Doc<'_>,
    apex: Option<NodeId>,
    excluded: &[NodeId],
    visible: Option<&dyn Fn(NodeId) -> bool>,
    opts: Options<'_>,
    out: &mut W,
) -> io::Result<()> {
    let mut c = Canon {
        doc,
        excluded,
        visible,
        opts,
        rendered: Vec::new(),
        ns_buf: Vec::new(),
        attr_buf: Vec::new(),
        out,
    };
    match apex {
        Some(id) => c.element(id, false),
        None => {
            let mut after_root = false;
            for &id in &doc.top {
                match doc.nodes.get(id) {
                    Some(Node::Element(_)) => {
                        c.element(id, false)?;
                        after_root = true;
                    }
                    Some(Node::Comment(_) | Node::Pi { .. }) => {
                        if !c.opts.with_comments
                            && matches!(doc.nodes.get(id), Some(Node::Comment(_)))
                        {
                            continue;
                        }
                        if after_root {
                            c.out.write_all(b"\n")?;
                        }
                        c.leaf(id)?;
                        if !after_root {
                            c.out.write_all(b"\n")?;
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

struct Canon<'d, 'a, 'o, W: Write> {
    doc: &'d Doc<'a>,
    excluded: &'d [NodeId],
    visible: Option<&'d dyn Fn(NodeId) -> bool>,
    opts: Options<'o>,
    /// Namespace nodes rendered by output ancestors, innermost last.
    rendered: Vec<(&'d str, &'d str)>,
    ns_buf: Vec<(&'d str, &'d str)>,
    attr_buf: Vec<(&'d str, &'d str, &'d str, &'d str)>,
    out: &'o mut W,
}

impl<'d, 'a, W: Write> Canon<'d, 'a, '_, W> {
    fn rendered_uri(&self, prefix: &str) -> &'d str {
        self.rendered
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, u)| *u)
            .unwrap_or("")
    }

    fn leaf(&mut self, id: NodeId) -> io::Result<()> {
        match self.doc.nodes.get(id) {
            Some(Node::Text(t)) => escape_text(self.out, t),
            Some(Node::Comment(c)) => {
                if self.opts.with_comments {
                    self.out.write_all(b"<!--")?;
                    self.out.write_all(c.as_bytes())?;
                    self.out.write_all(b"-->")?;
                }
                Ok(())
            }
            Some(Node::Pi { target, data }) => {
                self.out.write_all(b"<?")?;
                self.out.write_all(target.as_bytes())?;
                let data = data.trim_start_matches([' ', '\t', '\r', '\n']);
                if !data.is_empty() {
                    self.out.write_all(b" ")?;
                    self.out.write_all(data.as_bytes())?;
                }
                self.out.write_all(b"?>")
            }
            _ => Ok(()),
        }
    }

    /// Namespace declarations `el` must render, sorted by prefix.
    fn namespaces_to_render(
        &self,
        id: NodeId,
        el: &'d Element<'a>,
        is_apex: bool,
        cands: &mut Vec<(&'d str, &'d str)>,
    ) {
        cands.clear();
        let mut add = |p: &'d str, u: &'d str| {
            if !cands.iter().any(|(q, _)| *q == p) {
                cands.push((p, u));
            }
        };
        match self.opts.method {
            Method::Inclusive => {
                if is_apex {
                    // All namespace nodes in scope (nearest declaration wins).
                    let mut cur = Some(id);
                    while let Some(c) = cur {
                        let Some(e) = self.doc.element(c) else { break };
                        for (p, u) in &e.decls {
                            add(p, u);
                        }
                        cur = e.parent;
                    }
                } else {
                    for (p, u) in &el.decls {
                        add(p, u);
                    }
                }
            }
            Method::Exclusive => {
                add(el.prefix, &el.ns);
                for a in &el.attrs {
                    if !a.prefix.is_empty() && a.prefix != "xml" {
                        add(a.prefix, &a.ns);
                    }
                }
                for p in self.opts.inclusive_prefixes {
                    let p: &str = if p == "#default" { "" } else { p };
                    if let Some(u) = self.doc.lookup_ns(id, p) {
                        // Re-borrow the prefix from the declaring element so it lives long enough.
                        if let Some(pp) = self.declared_prefix(id, p) {
                            add(pp, u);
                        }
                    }
                }
            }
        }
        cands.retain(|(p, u)| self.rendered_uri(p) != *u);
        cands.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }

    fn declared_prefix(&self, mut id: NodeId, prefix: &str) -> Option<&'d str> {
        loop {
            let e = self.doc.element(id)?;
            if let Some((p, _)) = e.decls.iter().find(|(p, _)| *p == prefix) {
                return Some(p);
            }
            id = e.parent?;
        }
    }

    fn shows(&self, id: NodeId) -> bool {
        self.visible.is_none_or(|v| v(id))
    }

    /// `parent_output`: the parent element is in the output. When it is not
    /// (an apex, or below an invisible element), inclusive C14N renders every
    /// namespace in scope and imports `xml:*` attributes from the ancestors.
    fn element(&mut self, id: NodeId, parent_output: bool) -> io::Result<()> {
        if self.excluded.contains(&id) {
            return Ok(());
        }
        let Some(el) = self.doc.element(id) else {
            return self.leaf(id);
        };
        if !self.shows(id) {
            for &c in &el.children {
                match self.doc.nodes.get(c) {
                    Some(Node::Element(_)) => self.element(c, false)?,
                    _ if self.shows(c) => self.leaf(c)?,
                    _ => {}
                }
            }
            return Ok(());
        }
        let is_apex = !parent_output;
        let mark = self.rendered.len();
        // Scratch buffers are reused across elements (children run after we are done with them).
        let mut ns = std::mem::take(&mut self.ns_buf);
        self.namespaces_to_render(id, el, is_apex, &mut ns);
        self.out.write_all(b"<")?;
        write_qname(self.out, el.prefix, el.local)?;
        for (p, u) in &ns {
            if p.is_empty() {
                self.out.write_all(b" xmlns=\"")?;
            } else {
                self.out.write_all(b" xmlns:")?;
                self.out.write_all(p.as_bytes())?;
                self.out.write_all(b"=\"")?;
            }
            escape_attr(self.out, u)?;
            self.out.write_all(b"\"")?;
        }
        self.rendered.extend(ns.iter().copied());
        self.ns_buf = ns;
        // Attributes, plus (inclusive, apex only) xml:* attributes inherited from ancestors.
        let mut attrs = std::mem::take(&mut self.attr_buf);
        attrs.clear();
        attrs.extend(
            el.attrs
                .iter()
                .map(|a| (a.ns.as_ref(), a.local, a.prefix, a.value.as_ref())),
        );
        if is_apex && self.opts.method == Method::Inclusive {
            let mut cur = el.parent;
            while let Some(c) = cur {
                let Some(e) = self.doc.element(c) else { break };
                if self.visible.is_some_and(|v| v(c)) {
                    // An output ancestor already put its xml:* attributes in effect.
                    break;
                }
                for a in &e.attrs {
                    if a.ns == XML_NS && !attrs.iter().any(|x| x.0 == XML_NS && x.1 == a.local) {
                        attrs.push((XML_NS, a.local, a.prefix, a.value.as_ref()));
                    }
                }
                cur = e.parent;
            }
        }
        attrs.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for &(_, local, prefix, value) in &attrs {
            self.out.write_all(b" ")?;
            write_qname(self.out, prefix, local)?;
            self.out.write_all(b"=\"")?;
            escape_attr(self.out, value)?;
            self.out.write_all(b"\"")?;
        }
        self.attr_buf = attrs;
        self.out.write_all(b">")?;
        for &c in &el.children {
            match self.doc.nodes.get(c) {
                Some(Node::Element(_)) => self.element(c, true)?,
                _ if self.shows(c) => self.leaf(c)?,
                _ => {}
            }
        }
        self.out.write_all(b"</")?;
        write_qname(self.out, el.prefix, el.local)?;
        self.out.write_all(b">")?;
        self.rendered.truncate(mark);
        Ok(())
    }
}

fn write_qname<W: Write>(out: &mut W, prefix: &str, local: &str) -> io::Result<()> {
    if !prefix.is_empty() {
        out.write_all(prefix.as_bytes())?;
        out.write_all(b":")?;
    }
    out.write_all(local.as_bytes())
}

fn escape_text<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    // Attachments are megabytes of base64 with nothing to escape: find the
    // special bytes with memchr (SIMD) instead of testing every byte.
    let b = s.as_bytes();
    let mut last = 0;
    let mut next_cr = memchr::memchr(b'\r', b);
    loop {
        let amp_lt_gt = memchr::memchr3(b'&', b'<', b'>', &b[last..]).map(|i| i + last);
        let i = match (amp_lt_gt, next_cr) {
            (Some(a), Some(c)) => a.min(c),
            (Some(a), None) => a,
            (None, Some(c)) => c,
            (None, None) => break,
        };
        let rep: &[u8] = match b[i] {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            _ => {
                next_cr = memchr::memchr(b'\r', &b[i + 1..]).map(|j| j + i + 1);
                b"&#xD;"
            }
        };
        out.write_all(&b[last..i])?;
        out.write_all(rep)?;
        last = i + 1;
    }
    out.write_all(&b[last..])
}

fn escape_attr<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    let b = s.as_bytes();
    let mut last = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'"' => b"&quot;",
            b'\t' => b"&#x9;",
            b'\n' => b"&#xA;",
            b'\r' => b"&#xD;",
            _ => continue,
        };
        out.write_all(&b[last..i])?;
        out.write_all(rep)?;
        last = i + 1;
    }
    out.write_all(&b[last..])
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn subtree(xml: &str, local: &str, method: Method) -> String {
        let doc = Doc::parse(xml.as_bytes()).expect("parse");
        let (id, _) = doc
            .elements()
            .find(|(_, e)| e.local == local)
            .expect("element");
        let mut out = Vec::new();
        let opts = Options {
            method,
            with_comments: false,
            inclusive_prefixes: &[],
        };
        write_node_set(&doc, Some(id), &[], opts, &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    // Exclusive XML Canonicalization 1.0, section 2.2 (the motivating example):
    // the same n1:elem2 subtree in two different contexts.
    const EXC_A: &str = "<n0:local xmlns:n0=\"foo:bar\" xmlns:n3=\"ftp://example.org\"><n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n     <n3:stuff xmlns:n3=\"ftp://example.org\"/>\n  </n1:elem2></n0:local>";
    const EXC_B: &str = "<n2:pdu xmlns:n1=\"http://example.com\" xmlns:n2=\"http://foo.example\" xml:lang=\"fr\" xml:space=\"retain\"><n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n     <n3:stuff xmlns:n3=\"ftp://example.org\"/>\n  </n1:elem2></n2:pdu>";

    #[test]
    fn exc_c14n_spec_example_inclusive_outputs_depend_on_context() {
        assert_eq!(
            subtree(EXC_A, "elem2", Method::Inclusive),
            "<n1:elem2 xmlns:n0=\"foo:bar\" xmlns:n1=\"http://example.net\" xmlns:n3=\"ftp://example.org\" xml:lang=\"en\">\n     <n3:stuff></n3:stuff>\n  </n1:elem2>"
        );
        assert_eq!(
            subtree(EXC_B, "elem2", Method::Inclusive),
            "<n1:elem2 xmlns:n1=\"http://example.net\" xmlns:n2=\"http://foo.example\" xml:lang=\"en\" xml:space=\"retain\">\n     <n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff>\n  </n1:elem2>"
        );
    }

    #[test]
    fn exc_c14n_spec_example_exclusive_output_is_context_free() {
        let want = "<n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n     <n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff>\n  </n1:elem2>";
        assert_eq!(subtree(EXC_A, "elem2", Method::Exclusive), want);
        assert_eq!(subtree(EXC_B, "elem2", Method::Exclusive), want);
    }

    #[test]
    fn exclusive_inclusive_namespaces_prefix_list_keeps_listed_prefix() {
        let doc = Doc::parse(EXC_A.as_bytes()).expect("parse");
        let (id, _) = doc
            .elements()
            .find(|(_, e)| e.local == "elem2")
            .expect("element");
        let list = vec!["n0".to_string()];
        let opts = Options {
            method: Method::Exclusive,
            with_comments: false,
            inclusive_prefixes: &list,
        };
        let mut out = Vec::new();
        write_node_set(&doc, Some(id), &[], opts, &mut out).expect("write");
        assert!(String::from_utf8_lossy(&out).starts_with(
            "<n1:elem2 xmlns:n0=\"foo:bar\" xmlns:n1=\"http://example.net\" xml:lang=\"en\">"
        ));
    }

    /// W3C Canonical XML 1.0, example 3.7 (document subsets). The spec input
    /// has a DTD that defaults `xml:space="preserve"` on e2 and declares `id`
    /// as an ID; we refuse DTDs, so the default is written out and the XPath
    /// `id("E3")` subset is expressed as a node predicate: e1 (with its
    /// attributes and namespaces, not its text), and everything inside e3.
    #[test]
    fn w3c_3_7_document_subset() {
        let xml = "<doc xmlns=\"http://www.ietf.org\" xmlns:w3c=\"http://www.w3.org\">\n   <e1>\n      <e2 xmlns=\"\" xml:space=\"preserve\">\n         <e3 id=\"E3\"/>\n      </e2>\n   </e1>\n</doc>";
        let doc = Doc::parse(xml.as_bytes()).expect("parse");
        let (e1, _) = doc.elements().find(|(_, e)| e.local == "e1").expect("e1");
        let (e3, _) = doc.elements().find(|(_, e)| e.local == "e3").expect("e3");
        let within = |mut id: NodeId, top: NodeId| loop {
            if id == top {
                return true;
            }
            let parent = match doc.nodes.get(id) {
                Some(Node::Element(e)) => e.parent,
                _ => doc
                    .elements()
                    .find(|(_, e)| e.children.contains(&id))
                    .map(|(p, _)| p),
            };
            match parent {
                Some(p) => id = p,
                None => return false,
            }
        };
        let visible = |id: NodeId| id == e1 || within(id, e3);
        let opts = Options {
            method: Method::Inclusive,
            with_comments: false,
            inclusive_prefixes: &[],
        };
        let mut out = Vec::new();
        write_filtered(&doc, None, &[], Some(&visible), opts, &mut out).expect("write");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "<e1 xmlns=\"http://www.ietf.org\" xmlns:w3c=\"http://www.w3.org\"><e3 xmlns=\"\" id=\"E3\" xml:space=\"preserve\"></e3></e1>"
        );
    }

    /// W3C C14N 3.7 adapted: the e1 subtree without e2's element node is not
    /// expressible as "minus whole subtrees", so we check the part we support:
    /// excluding a subtree keeps the surrounding text and re-declares the
    /// default namespace where an output descendant needs `xmlns=""`.
    #[test]
    fn excluded_subtree_and_default_namespace_reset() {
        let xml = "<doc xmlns=\"http://www.ietf.org\" xmlns:w3c=\"http://www.w3.org\">\n   <e1>\n      <e2 xmlns=\"\">\n         <e3 id=\"E3\"/>\n      </e2>\n   </e1>\n</doc>";
        let doc = Doc::parse(xml.as_bytes()).expect("parse");
        let (e3, _) = doc.elements().find(|(_, e)| e.local == "e3").expect("e3");
        let mut out = Vec::new();
        let opts = Options {
            method: Method::Inclusive,
            with_comments: false,
            inclusive_prefixes: &[],
        };
        write_node_set(&doc, None, &[e3], opts, &mut out).expect("write");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "<doc xmlns=\"http://www.ietf.org\" xmlns:w3c=\"http://www.w3.org\">\n   <e1>\n      <e2 xmlns=\"\">\n         \n      </e2>\n   </e1>\n</doc>"
        );
        assert_eq!(
            subtree(xml, "e3", Method::Inclusive),
            "<e3 xmlns:w3c=\"http://www.w3.org\" id=\"E3\"></e3>"
        );
        assert_eq!(subtree(xml, "e3", Method::Exclusive), "<e3 id=\"E3\"></e3>");
    }
}
