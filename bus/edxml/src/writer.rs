//! The canonical writer: one fixed element order, default edXML namespace, two-space indentation, LF, UTF-8,
//! canonical dates, `cid:` ids, base64 on one line. Streams to the writer; attachments are encoded in chunks.

use std::io::{self, Write};

use base64::Engine as _;

use crate::EDXML_NS;
use crate::model::*;

/// Writes `package` in the canonical form. Never writes signatures (the dsig crate adds them).
pub fn write<W: Write>(package: &Package, out: W) -> io::Result<()> {
    let mut w = Out {
        out: io::BufWriter::with_capacity(64 * 1024, out),
        depth: 0,
    };
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    w.line(&format!("<edXML xmlns=\"{EDXML_NS}\">"))?;
    w.depth += 1;
    w.open("edXMLEnvelope")?;
    w.open("edXMLHeader")?;
    match package {
        Package::Document(d) => {
            message_header(&mut w, d)?;
            trace_list(&mut w, &d.trace)?;
            w.close("edXMLHeader")?;
            w.open("edXMLBody")?;
            if d.references.is_empty() {
                w.line_indented("<edXMLManifest version=\"1.0\"/>")?;
            } else {
                w.line_indented("<edXMLManifest version=\"1.0\">")?;
                w.depth += 1;
                for r in &d.references {
                    w.open("Reference")?;
                    w.leaf("ContentId", &format!("cid:{}", r.content_id))?;
                    w.opt("ContentType", &r.content_type)?;
                    w.opt("Description", &r.description)?;
                    w.opt("AttachmentName", &r.attachment_name)?;
                    w.close("Reference")?;
                }
                w.close("edXMLManifest")?;
            }
            w.close("edXMLBody")?;
            w.close("edXMLEnvelope")?;
            if !d.attachments.is_empty() {
                w.open("AttachmentEncoded")?;
                for a in &d.attachments {
                    attachment(&mut w, a)?;
                }
                w.close("AttachmentEncoded")?;
            }
        }
        Package::Status(s) => {
            w.open("Status")?;
            organization(&mut w, "From", &s.from)?;
            response_for(&mut w, &s.response_for)?;
            if let Some(si) = &s.staff_info {
                staff_info(&mut w, si)?;
            }
            w.leaf("StatusCode", s.status_code.code())?;
            w.opt("Description", &s.description)?;
            w.opt_display("Timestamp", &s.timestamp)?;
            w.close("Status")?;
            trace_list(&mut w, &s.trace)?;
            w.close("edXMLHeader")?;
            w.close("edXMLEnvelope")?;
        }
    }
    w.depth -= 1;
    w.raw("</edXML>\n")?;
    w.out.flush()
}

/// The canonical form in memory.
pub fn to_bytes(package: &Package) -> Vec<u8> {
    let mut v = Vec::new();
    // Writing to a Vec cannot fail; an error here would be a bug in this crate, so the bytes so far are returned.
    let _ = write(package, &mut v);
    v
}

struct Out<W: Write> {
    out: io::BufWriter<W>,
    depth: usize,
}

impl<W: Write> Out<W> {
    fn raw(&mut self, s: &str) -> io::Result<()> {
        self.out.write_all(s.as_bytes())
    }

    fn indent(&mut self) -> io::Result<()> {
        const SPACES: &[u8] = b"                                ";
        let n = (self.depth * 2).min(SPACES.len());
        self.out.write_all(&SPACES[..n])
    }

    fn tag(&mut self, open: &[u8], name: &str, close: &[u8]) -> io::Result<()> {
        self.out.write_all(open)?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(close)
    }

    fn line(&mut self, s: &str) -> io::Result<()> {
        self.raw(s)?;
        self.raw("\n")
    }

    fn line_indented(&mut self, s: &str) -> io::Result<()> {
        self.indent()?;
        self.line(s)
    }

    fn open(&mut self, name: &str) -> io::Result<()> {
        self.indent()?;
        self.tag(b"<", name, b">\n")?;
        self.depth += 1;
        Ok(())
    }

    fn close(&mut self, name: &str) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        self.indent()?;
        self.tag(b"</", name, b">\n")
    }

    fn empty(&mut self, name: &str) -> io::Result<()> {
        self.indent()?;
        self.tag(b"<", name, b"/>\n")
    }

    fn leaf(&mut self, name: &str, value: &str) -> io::Result<()> {
        self.indent()?;
        self.tag(b"<", name, b">")?;
        escape_into(&mut self.out, value)?;
        self.tag(b"</", name, b">\n")
    }

    fn opt(&mut self, name: &str, value: &Option<String>) -> io::Result<()> {
        match value {
            Some(v) => self.leaf(name, v),
            None => Ok(()),
        }
    }

    fn opt_display<T: std::fmt::Display>(
        &mut self,
        name: &str,
        value: &Option<T>,
    ) -> io::Result<()> {
        match value {
            Some(v) => self.leaf(name, &v.to_string()),
            None => Ok(()),
        }
    }

    /// `<name>` with `items` as `<item>` children; nothing when the list is empty.
    fn list(&mut self, name: &str, item: &str, items: &[String]) -> io::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.open(name)?;
        for i in items {
            self.leaf(item, i)?;
        }
        self.close(name)
    }
}

/// Escapes character data: `&`, `<`, `>` and CR (so it survives line-end normalisation). Characters XML 1.0
/// cannot carry at all (most C0 controls, U+FFFE/U+FFFF) become U+FFFD.
fn escape_into<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\r' => "&#13;",
            '\t' | '\n' => continue,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => "\u{FFFD}",
            _ => continue,
        };
        out.write_all(&s.as_bytes()[start..i])?;
        out.write_all(rep.as_bytes())?;
        start = i + c.len_utf8();
    }
    out.write_all(&s.as_bytes()[start..])
}

fn organization<W: Write>(w: &mut Out<W>, name: &str, o: &Organization) -> io::Result<()> {
    w.open(name)?;
    w.leaf("OrganId", &o.organ_id)?;
    w.opt("OrganizationInCharge", &o.organization_in_charge)?;
    w.opt("OrganName", &o.organ_name)?;
    w.opt("OrganAdd", &o.organ_add)?;
    w.opt("Email", &o.email)?;
    w.opt("Telephone", &o.telephone)?;
    w.opt("Fax", &o.fax)?;
    w.opt("Website", &o.website)?;
    w.close(name)
}

fn response_for<W: Write>(w: &mut Out<W>, r: &ResponseFor) -> io::Result<()> {
    w.open("ResponseFor")?;
    w.opt("OrganId", &r.organ_id)?;
    w.opt("Code", &r.code)?;
    w.opt_display("PromulgationDate", &r.promulgation_date)?;
    w.opt("DocumentId", &r.document_id)?;
    w.close("ResponseFor")
}

fn staff_info<W: Write>(w: &mut Out<W>, s: &StaffInfo) -> io::Result<()> {
    w.open("StaffInfo")?;
    w.opt("Department", &s.department)?;
    w.opt("Staff", &s.staff)?;
    w.opt("Email", &s.email)?;
    w.opt("Mobile", &s.mobile)?;
    w.close("StaffInfo")
}

fn message_header<W: Write>(w: &mut Out<W>, d: &Document) -> io::Result<()> {
    w.open("MessageHeader")?;
    organization(w, "From", &d.from)?;
    for t in &d.to {
        organization(w, "To", t)?;
    }
    w.opt("DocumentId", &d.document_id)?;
    if let Some(c) = &d.code {
        w.open("Code")?;
        w.opt("CodeNumber", &c.code_number)?;
        w.opt("CodeNotation", &c.code_notation)?;
        w.close("Code")?;
    }
    if let Some(p) = &d.promulgation_info {
        w.open("PromulgationInfo")?;
        w.opt("Place", &p.place)?;
        w.opt_display("PromulgationDate", &p.promulgation_date)?;
        w.close("PromulgationInfo")?;
    }
    if let Some(t) = &d.document_type {
        w.open("DocumentType")?;
        w.opt_display("Type", &t.type_code)?;
        w.opt_display("TypeDetail", &t.type_detail)?;
        w.opt("TypeName", &t.type_name)?;
        w.close("DocumentType")?;
    }
    w.opt("Subject", &d.subject)?;
    w.opt("Content", &d.content)?;
    if let Some(s) = &d.signer_info {
        w.open("SignerInfo")?;
        w.opt("Competence", &s.competence)?;
        w.opt("Position", &s.position)?;
        w.opt("FullName", &s.full_name)?;
        w.close("SignerInfo")?;
    }
    w.opt_display("DueDate", &d.due_date)?;
    w.list("ToPlaces", "Place", &d.to_places)?;
    if let Some(o) = &d.other_info {
        w.open("OtherInfo")?;
        w.opt_display("Priority", &o.priority)?;
        w.opt("SphereOfPromulgation", &o.sphere_of_promulgation)?;
        w.opt("TyperNotation", &o.typer_notation)?;
        w.opt_display("PromulgationAmount", &o.promulgation_amount)?;
        w.opt_display("PageAmount", &o.page_amount)?;
        w.opt("Direction", &o.direction)?;
        w.list("Appendixes", "Appendix", &o.appendixes)?;
        w.close("OtherInfo")?;
    }
    for r in &d.response_for {
        response_for(w, r)?;
    }
    w.opt_display("SteeringType", &d.steering_type)?;
    w.close("MessageHeader")
}

fn trace_list<W: Write>(w: &mut Out<W>, t: &TraceHeaderList) -> io::Result<()> {
    if t.trace_headers.is_empty() && t.business.is_none() {
        return w.empty("TraceHeaderList");
    }
    w.open("TraceHeaderList")?;
    for h in &t.trace_headers {
        w.open("TraceHeader")?;
        w.leaf("OrganId", &h.organ_id)?;
        w.opt_display("Timestamp", &h.timestamp)?;
        w.close("TraceHeader")?;
    }
    if let Some(b) = &t.business {
        w.open("Bussiness")?;
        w.opt_display("BussinessDocType", &b.doc_type)?;
        w.opt("BussinessDocReason", &b.doc_reason)?;
        w.opt("DocumentId", &b.document_id)?;
        w.opt_display("Paper", &b.paper)?;
        if let Some(s) = &b.staff_info {
            staff_info(w, s)?;
        }
        if let Some(info) = &b.document_info {
            w.open("BussinessDocumentInfo")?;
            w.opt("DocumentInfo", &info.document_info)?;
            w.opt("DocumentReceiver", &info.document_receiver)?;
            if !info.receivers.is_empty() {
                w.open("ReceiverList")?;
                for r in &info.receivers {
                    w.open("Receiver")?;
                    w.opt_display("ReceiverType", &r.receiver_type)?;
                    w.opt("OrganId", &r.organ_id)?;
                    w.close("Receiver")?;
                }
                w.close("ReceiverList")?;
            }
            w.close("BussinessDocumentInfo")?;
        }
        if !b.replacements.is_empty() {
            w.open("ReplacementInfoList")?;
            for r in &b.replacements {
                w.open("ReplacementInfo")?;
                w.opt("DocumentId", &r.document_id)?;
                w.list("OrganIdList", "OrganId", &r.organ_ids)?;
                w.close("ReplacementInfo")?;
            }
            w.close("ReplacementInfoList")?;
        }
        w.close("Bussiness")?;
    }
    w.close("TraceHeaderList")
}

fn attachment<W: Write>(w: &mut Out<W>, a: &Attachment) -> io::Result<()> {
    w.open("Attachment")?;
    w.leaf("ContentId", &format!("cid:{}", a.content_id))?;
    w.opt("AttachmentName", &a.name)?;
    w.opt("Description", &a.description)?;
    w.opt("ContentType", &a.content_type)?;
    w.indent()?;
    w.raw("<ContentTransferEncoded>")?;
    // 48 KiB of input → 64 KiB of base64 per step (a multiple of 3, so no padding mid-stream).
    const STEP: usize = 48 * 1024;
    let mut buf = vec![0u8; a.data.len().min(STEP).div_ceil(3) * 4];
    for chunk in a.data.chunks(STEP) {
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(chunk, &mut buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        w.out.write_all(&buf[..n])?;
    }
    w.raw("</ContentTransferEncoded>\n")?;
    w.close("Attachment")
}
