//! Every word the portal shows, Vietnamese first, English on `?lang=en` (remembered in a
//! cookie). Templates read them as `t.KEY`; state and status labels come from [`state_label`]
//! and [`status_label`].

use std::collections::BTreeMap;

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn pick<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }

    /// The table templates read as `t`.
    pub fn table(self) -> BTreeMap<&'static str, &'static str> {
        TEXTS
            .iter()
            .map(|(k, vi, en)| (*k, self.pick(vi, en)))
            .collect()
    }
}

const TEXTS: &[(&str, &str, &str)] = &[
    ("title", "Trục liên thông văn bản", "Document exchange bus"),
    ("other_lang", "English", "Tiếng Việt"),
    ("sign_in", "Đăng nhập", "Sign in"),
    ("sign_out", "Đăng xuất", "Sign out"),
    ("account", "Tài khoản", "Account"),
    ("password", "Mật khẩu", "Password"),
    ("operator", "Quản trị trục", "Operator"),
    ("clerk_of", "Văn thư đơn vị", "Clerk of unit"),
    ("documents", "Văn bản", "Documents"),
    ("sent", "Đã gửi", "Sent"),
    ("received", "Đã nhận", "Received"),
    ("search", "Tìm", "Search"),
    (
        "search_text",
        "Số/ký hiệu, trích yếu",
        "Number/notation, subject",
    ),
    ("recipient", "Nơi nhận (mã)", "Recipient (code)"),
    ("date_from", "Từ ngày", "From date"),
    ("date_to", "Đến ngày", "To date"),
    ("filter", "Lọc", "Filter"),
    ("all", "Tất cả", "All"),
    ("not_delivered", "Chưa chuyển đến hết", "Not yet delivered"),
    ("not_registered", "Chưa vào sổ hết", "Not yet registered"),
    ("rejected", "Bị từ chối", "Rejected"),
    ("unit", "Đơn vị", "Unit"),
    ("number", "Số, ký hiệu", "Number/notation"),
    ("subject", "Trích yếu", "Subject"),
    ("sender", "Nơi gửi", "Sender"),
    ("accepted_at", "Thời điểm trục nhận", "Accepted at"),
    ("progress", "Tiến độ", "Progress"),
    ("state", "Trạng thái", "State"),
    ("next_page", "Trang sau →", "Next page →"),
    ("first_page", "← Trang đầu", "← First page"),
    ("no_documents", "Không có văn bản nào.", "No documents."),
    (
        "searched_to",
        "Đã tìm đến văn bản nhận lúc",
        "Searched back to the document accepted at",
    ),
    (
        "search_further",
        "Tìm tiếp các văn bản cũ hơn →",
        "Search older documents →",
    ),
    ("document", "Văn bản", "Document"),
    ("document_id", "Mã văn bản (DocumentId)", "Document id"),
    ("relay_id", "Mã gói tin trên trục", "Relay package id"),
    ("promulgation", "Nơi, ngày ban hành", "Place, date of issue"),
    ("doc_type", "Loại văn bản", "Document type"),
    ("priority", "Độ khẩn", "Priority"),
    ("signer", "Người ký", "Signer"),
    ("due_date", "Hạn xử lý", "Due date"),
    ("recipients", "Nơi nhận", "Recipients"),
    ("attachments", "Tệp đính kèm", "Attachments"),
    ("download", "Tải về", "Download"),
    (
        "no_attachments",
        "Không có tệp đính kèm.",
        "No attachments.",
    ),
    ("timeline", "Diễn biến", "Timeline"),
    ("status_code", "Mã trạng thái", "Status code"),
    ("reason", "Lý do", "Reason"),
    ("have_received", "đơn vị đã nhận", "units have received it"),
    (
        "have_registered",
        "đơn vị đã vào sổ",
        "units have registered it",
    ),
    ("have_rejected", "đơn vị từ chối", "units rejected it"),
    ("back", "← Danh sách", "← List"),
    ("live", "Tự làm mới", "Live refresh"),
    ("ops", "Vận hành", "Operations"),
    ("bytes", "byte", "bytes"),
    ("choose_unit", "Mã đơn vị cần xem", "Unit code to view"),
    ("view", "Xem", "View"),
    (
        "operator_pick_unit",
        "Quản trị trục xem được văn bản của mọi đơn vị: hãy nhập mã đơn vị.",
        "Operators can see every unit's documents: enter a unit code.",
    ),
    ("broker", "Hàng đợi", "Broker"),
    ("broker_up", "đang kết nối", "connected"),
    ("broker_down", "MẤT KẾT NỐI", "DOWN"),
    (
        "mailboxes",
        "Hộp thư (nặng nhất trước)",
        "Mailboxes (worst first)",
    ),
    ("ready", "Chờ lấy", "Ready"),
    ("in_flight", "Đang lấy", "In flight"),
    ("dead_lettered", "Thư chết", "Dead letters"),
    ("oldest_age", "Chờ lâu nhất", "Oldest waiting"),
    (
        "dead_letters",
        "Gói tin không chuyển được",
        "Dead-lettered packages",
    ),
    ("redrive", "Chuyển lại", "Re-drive"),
    ("rates", "Lưu lượng (mỗi phút)", "Rates (per minute)"),
    ("accepted", "Nhận vào", "Accepted"),
    ("delivered_n", "Đã chuyển", "Delivered"),
    ("rejected_n", "Từ chối", "Rejected"),
    ("signature_failures", "Lỗi chữ ký", "Signature failures"),
    ("last_hour", "trong 60 phút", "in the last 60 minutes"),
    ("since_start", "từ khi khởi động", "since start"),
    ("total", "Tổng", "Total"),
    (
        "nothing_waiting",
        "Không hộp thư nào đang chờ.",
        "No mailbox is waiting.",
    ),
    (
        "no_dead_letters",
        "Không có gói tin chết.",
        "No dead letters.",
    ),
    ("when", "Thời điểm", "When"),
];

/// The label of a recipient state (as tracking names it).
pub fn state_label(state: &str, lang: Lang) -> String {
    let (vi, en) = match state {
        "queued" => ("Đang chờ chuyển", "Queued"),
        "delivered" => ("Đã chuyển đến", "Delivered"),
        "arrived" => ("Đã đến (01)", "Arrived (01)"),
        "rejected" => ("Từ chối / trả lại (02)", "Rejected / returned (02)"),
        "registered" => ("Đã vào sổ (03)", "Registered (03)"),
        "assigned" => ("Đã phân công (04)", "Assigned (04)"),
        "processing" => ("Đang xử lý (05)", "Processing (05)"),
        "completed" => ("Đã hoàn thành (06)", "Completed (06)"),
        "withdrawal_requested" => ("Bên gửi xin thu hồi (13)", "Withdrawal requested (13)"),
        "withdrawn" => ("Đồng ý thu hồi/cập nhật (15)", "Withdrawal agreed (15)"),
        "withdrawal_refused" => ("Từ chối thu hồi (16)", "Withdrawal refused (16)"),
        other => return other.to_owned(),
    };
    lang.pick(vi, en).to_owned()
}

/// The label of a status code (01…06, 13, 15, 16).
pub fn status_label(code: &str, lang: Lang) -> String {
    let (vi, en) = match code {
        "01" => ("Đã đến", "Arrived"),
        "02" => ("Từ chối / trả lại", "Rejected / returned"),
        "03" => ("Đã tiếp nhận, vào sổ", "Accepted, registered"),
        "04" => ("Đã phân công", "Assigned"),
        "05" => ("Đang xử lý", "Processing"),
        "06" => ("Đã hoàn thành", "Completed"),
        "13" => ("Xin thu hồi", "Withdrawal requested"),
        "15" => ("Đồng ý thu hồi/cập nhật", "Withdrawal/update agreed"),
        "16" => ("Từ chối thu hồi", "Withdrawal refused"),
        other => return format!("{} {other}", lang.pick("Mã", "Code")),
    };
    lang.pick(vi, en).to_owned()
}

/// A CSS class for a state: good (green), wait (amber), bad (red).
pub fn state_class(state: &str) -> &'static str {
    match state {
        "rejected" | "withdrawal_refused" => "bad",
        "queued" => "wait",
        "delivered" => "part",
        _ => "good",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_has_both_languages() {
        let mut keys: Vec<&str> = TEXTS.iter().map(|t| t.0).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate text keys");
        for (k, vi, en) in TEXTS {
            assert!(!vi.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(Lang::En.table()["sign_in"], "Sign in");
        assert_eq!(Lang::Vi.table()["sign_in"], "Đăng nhập");
        assert_eq!(status_label("02", Lang::Vi), "Từ chối / trả lại");
        assert_eq!(state_label("registered", Lang::En), "Registered (03)");
    }
}
