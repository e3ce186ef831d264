//! Closed code lists of the format (status codes, business types, priority, steering type) and unit codes.
//! Each enum keeps values it does not know in `Other`, so nothing a producer sends is dropped.

use serde::Serialize;

macro_rules! code_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $($variant:ident => ($code:literal, $vi:literal, $en:literal)),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($variant,)+
            /// A value outside the known list, kept as sent.
            Other(String),
        }

        impl $name {
            /// Every known value, in code order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire code (`"01"`, `"0"`, …); for `Other`, the text as sent.
            pub fn code(&self) -> &str {
                match self {
                    $($name::$variant => $code,)+
                    $name::Other(s) => s,
                }
            }

            /// Reads a wire code; surrounding whitespace is ignored, unknown values become `Other`.
            pub fn parse(s: &str) -> Self {
                let t = s.trim();
                match t {
                    $($code => $name::$variant,)+
                    _ => $name::Other(t.to_owned()),
                }
            }

            /// Vietnamese label (the default for users).
            pub fn label_vi(&self) -> &str {
                match self {
                    $($name::$variant => $vi,)+
                    $name::Other(_) => "Giá trị không có trong danh mục",
                }
            }

            /// English label.
            pub fn label_en(&self) -> &str {
                match self {
                    $($name::$variant => $en,)+
                    $name::Other(_) => "Value not in the code list",
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::KNOWN[0].clone()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

code_enum! {
    /// `StatusCode` of a status package (processing state reported by a unit).
    StatusCode {
        Arrived => ("01", "Đã đến", "Arrived"),
        Rejected => ("02", "Từ chối tiếp nhận", "Rejected"),
        Registered => ("03", "Đã tiếp nhận", "Registered"),
        Assigned => ("04", "Phân công", "Assigned"),
        Processing => ("05", "Đang xử lý", "Processing"),
        Completed => ("06", "Hoàn thành", "Completed"),
        Withdraw => ("13", "Thu hồi", "Withdrawal requested"),
        AgreeWithdraw => ("15", "Đồng ý thu hồi/cập nhật", "Withdrawal/update agreed"),
        RefuseWithdraw => ("16", "Từ chối thu hồi/cập nhật", "Withdrawal/update refused"),
    }
}

code_enum! {
    /// `Bussiness/BussinessDocType`: what the package does to a document.
    BusinessDocType {
        New => ("0", "Văn bản mới", "New document"),
        Revoke => ("1", "Thu hồi", "Revoke"),
        Update => ("2", "Cập nhật", "Update"),
        Replace => ("3", "Thay thế", "Replace"),
    }
}

code_enum! {
    /// `OtherInfo/Priority` (độ khẩn).
    Priority {
        Normal => ("0", "Thường", "Normal"),
        Urgent => ("1", "Khẩn", "Urgent"),
        VeryUrgent => ("2", "Thượng khẩn", "Very urgent"),
        Express => ("3", "Hỏa tốc", "Express"),
        ExpressScheduled => ("4", "Hỏa tốc hẹn giờ", "Express at a set time"),
    }
}

code_enum! {
    /// `SteeringType`: whether the document is a directive.
    SteeringType {
        NotDirective => ("1", "Không phải chỉ đạo", "Not a directive"),
        Directive => ("2", "Chỉ đạo", "Directive"),
        DirectiveReport => ("3", "Báo cáo chỉ đạo", "Report on a directive"),
    }
}

/// A national unit code (mã định danh), shape `NNN.NN.NN.XNN`: four dot-separated groups of 3, 2, 2 and 3
/// characters, all digits except the last group, which is a letter and two digits. Level 1 is the rightmost group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UnitCode(String);

/// Why a text is not a unit code; both texts name the bad part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCodeError {
    pub vi: String,
    pub en: String,
}

impl std::fmt::Display for UnitCodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.en)
    }
}

impl std::error::Error for UnitCodeError {}

impl UnitCode {
    /// Checks the national shape; the error names the group that is wrong.
    pub fn parse(s: &str) -> Result<UnitCode, UnitCodeError> {
        let groups: Vec<&str> = s.split('.').collect();
        if groups.len() != 4 {
            return Err(UnitCodeError {
                vi: format!(
                    "Mã định danh \"{s}\" có {} nhóm, cần đúng 4 nhóm dạng NNN.NN.NN.XNN (ví dụ 000.00.00.H41).",
                    groups.len()
                ),
                en: format!(
                    "Unit code \"{s}\" has {} groups; it needs exactly 4, shaped NNN.NN.NN.XNN (e.g. 000.00.00.H41).",
                    groups.len()
                ),
            });
        }
        const LEN: [usize; 4] = [3, 2, 2, 3];
        const ORDINAL_VI: [&str; 4] = ["thứ nhất", "thứ hai", "thứ ba", "thứ tư"];
        const ORDINAL_EN: [&str; 4] = ["first", "second", "third", "fourth"];
        for (i, g) in groups.iter().enumerate() {
            let ok = if i < 3 {
                g.len() == LEN[i] && g.bytes().all(|b| b.is_ascii_digit())
            } else {
                let b = g.as_bytes();
                b.len() == 3 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
            };
            if !ok {
                let (want_vi, want_en) = if i < 3 {
                    (format!("{} chữ số", LEN[i]), format!("{} digits", LEN[i]))
                } else {
                    (
                        "một chữ cái in hoa và 2 chữ số".to_owned(),
                        "an upper-case letter and 2 digits".to_owned(),
                    )
                };
                return Err(UnitCodeError {
                    vi: format!(
                        "Mã định danh \"{s}\": nhóm {} \"{g}\" phải là {want_vi} (dạng NNN.NN.NN.XNN).",
                        ORDINAL_VI[i]
                    ),
                    en: format!(
                        "Unit code \"{s}\": the {} group \"{g}\" must be {want_en} (shape NNN.NN.NN.XNN).",
                        ORDINAL_EN[i]
                    ),
                });
            }
        }
        Ok(UnitCode(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent unit: the deepest (leftmost) non-zero digit group set to zeros. `None` for a level-1 unit
    /// (`000.00.00.H41`), which has no parent in the code itself.
    pub fn parent(&self) -> Option<UnitCode> {
        let mut groups: Vec<String> = self.0.split('.').map(str::to_owned).collect();
        let deepest = groups
            .iter()
            .take(3)
            .position(|g| g.bytes().any(|b| b != b'0'))?;
        let zeros = "0".repeat(groups[deepest].len());
        groups[deepest] = zeros;
        Some(UnitCode(groups.join(".")))
    }
}

impl std::fmt::Display for UnitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_round_trip_and_keep_unknown_values() {
        for known in StatusCode::KNOWN {
            assert_eq!(&StatusCode::parse(known.code()), known);
        }
        assert_eq!(StatusCode::parse(" 03 "), StatusCode::Registered);
        assert_eq!(StatusCode::parse("03").label_vi(), "Đã tiếp nhận");
        assert_eq!(
            StatusCode::parse("15").label_en(),
            "Withdrawal/update agreed"
        );
        assert_eq!(StatusCode::parse("07"), StatusCode::Other("07".into()));
        assert_eq!(StatusCode::parse("07").code(), "07");
        assert_eq!(BusinessDocType::parse("3"), BusinessDocType::Replace);
        assert_eq!(Priority::parse("4").label_vi(), "Hỏa tốc hẹn giờ");
        assert_eq!(SteeringType::parse("0"), SteeringType::Other("0".into()));
    }

    #[test]
    fn unit_code_shape_and_parent() {
        // Level 1 is the rightmost group, level 4 the leftmost: the parent zeroes the deepest (leftmost) non-zero
        // group. (The Quảng Nam registry pairs 001.00.10.H47 with parent 001.00.00.H47, which does not follow this
        // rule; the directory's explicit parent wins over this structural guess.)
        let unit = UnitCode::parse("001.02.10.H47").unwrap();
        let up1 = unit.parent().unwrap();
        assert_eq!(up1.as_str(), "000.02.10.H47");
        let up2 = up1.parent().unwrap();
        assert_eq!(up2.as_str(), "000.00.10.H47");
        assert_eq!(up2.parent().unwrap().as_str(), "000.00.00.H47");
        assert_eq!(UnitCode::parse("000.00.00.H41").unwrap().parent(), None);
        let e = UnitCode::parse("28.22.H17").unwrap_err();
        assert!(e.en.contains("3 groups"), "{}", e.en);
        let e = UnitCode::parse("999.010.01.H22").unwrap_err();
        assert!(e.en.contains("second group \"010\""), "{}", e.en);
        assert!(e.vi.contains("nhóm thứ hai \"010\""), "{}", e.vi);
        let e = UnitCode::parse("000.00.00.h41").unwrap_err();
        assert!(e.en.contains("fourth group"), "{}", e.en);
    }
}
