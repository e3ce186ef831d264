//! A made-up directory shaped like the national one, for benchmarks, tests and demos: the 63
//! provinces (`000.00.00.H01`…, group `tinh`), about 11 districts each (`000.00.DD.HPP`, group
//! `huyen`, explicit parent) and communes for the rest (`000.CC.DD.HPP`, group `xa`, parent derived
//! from the code). Every unit has a (fake) certificate fingerprint; provinces and every tenth
//! commune have an old code; every 500th commune is suspended. The codes follow the real shape;
//! the names are invented from the real province names.

use crate::fingerprint;

/// The 63 provinces and centrally-run cities (before the 2025 merger).
pub const PROVINCES: [&str; 63] = [
    "An Giang",
    "Bà Rịa - Vũng Tàu",
    "Bắc Giang",
    "Bắc Kạn",
    "Bạc Liêu",
    "Bắc Ninh",
    "Bến Tre",
    "Bình Định",
    "Bình Dương",
    "Bình Phước",
    "Bình Thuận",
    "Cà Mau",
    "Cần Thơ",
    "Cao Bằng",
    "Đà Nẵng",
    "Đắk Lắk",
    "Đắk Nông",
    "Điện Biên",
    "Đồng Nai",
    "Đồng Tháp",
    "Gia Lai",
    "Hà Giang",
    "Hà Nam",
    "Hà Nội",
    "Hà Tĩnh",
    "Hải Dương",
    "Hải Phòng",
    "Hậu Giang",
    "Hòa Bình",
    "Hưng Yên",
    "Khánh Hòa",
    "Kiên Giang",
    "Kon Tum",
    "Lai Châu",
    "Lâm Đồng",
    "Lạng Sơn",
    "Lào Cai",
    "Long An",
    "Nam Định",
    "Nghệ An",
    "Ninh Bình",
    "Ninh Thuận",
    "Phú Thọ",
    "Phú Yên",
    "Quảng Bình",
    "Quảng Nam",
    "Quảng Ngãi",
    "Quảng Ninh",
    "Quảng Trị",
    "Sóc Trăng",
    "Sơn La",
    "Tây Ninh",
    "Thái Bình",
    "Thái Nguyên",
    "Thanh Hóa",
    "Thừa Thiên Huế",
    "Tiền Giang",
    "Hồ Chí Minh",
    "Trà Vinh",
    "Tuyên Quang",
    "Vĩnh Long",
    "Vĩnh Phúc",
    "Yên Bái",
];

/// Districts per province in the sample (63 × 11 = 693, close to the real ~700).
pub const DISTRICTS_PER_PROVINCE: usize = 11;

/// Province code for 1-based index `p`.
pub fn province_code(p: usize) -> String {
    format!("000.00.00.H{p:02}")
}

/// District code for province `p`, district `d` (both 1-based).
pub fn district_code(p: usize, d: usize) -> String {
    format!("000.00.{d:02}.H{p:02}")
}

/// Commune code for province `p`, district `d`, commune `c` (all 1-based).
pub fn commune_code(p: usize, d: usize, c: usize) -> String {
    format!("000.{c:02}.{d:02}.H{p:02}")
}

/// A CSV import file with `total` units (at least the 63 provinces and their districts; at most
/// 63 × 11 × 99 communes more).
pub fn national_csv(total: usize) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut row = |fields: [&str; 7]| {
        // Writing to a Vec cannot fail.
        let _ = w.write_record(fields);
    };
    row([
        "code",
        "name",
        "parent",
        "aliases",
        "state",
        "fingerprints",
        "groups",
    ]);
    let provinces = PROVINCES.len();
    let districts = provinces * DISTRICTS_PER_PROVINCE;
    let communes = total.saturating_sub(provinces + districts);
    for (i, name) in PROVINCES.iter().enumerate() {
        let code = province_code(i + 1);
        row([
            &code,
            &format!("Ủy ban nhân dân tỉnh {name}"),
            "",
            &format!("T{:02}", i + 1),
            "active",
            &fingerprint(code.as_bytes()),
            "tinh",
        ]);
    }
    for (i, name) in PROVINCES.iter().enumerate() {
        for d in 1..=DISTRICTS_PER_PROVINCE {
            let code = district_code(i + 1, d);
            row([
                &code,
                &format!("Ủy ban nhân dân huyện số {d}, tỉnh {name}"),
                &province_code(i + 1),
                "",
                "active",
                &fingerprint(code.as_bytes()),
                "huyen",
            ]);
        }
    }
    let per_district = communes.div_ceil(districts.max(1)).min(99);
    let mut written = 0;
    'all: for (i, name) in PROVINCES.iter().enumerate() {
        for d in 1..=DISTRICTS_PER_PROVINCE {
            for c in 1..=per_district {
                if written == communes {
                    break 'all;
                }
                written += 1;
                let code = commune_code(i + 1, d, c);
                let alias = if written % 10 == 0 {
                    format!("X{:02}{d:02}{c:02}", i + 1)
                } else {
                    String::new()
                };
                let state = if written % 500 == 0 {
                    "suspended"
                } else {
                    "active"
                };
                row([
                    &code,
                    &format!("Ủy ban nhân dân xã số {c}, huyện số {d}, tỉnh {name}"),
                    "",
                    &alias,
                    state,
                    &fingerprint(code.as_bytes()),
                    "xa",
                ]);
            }
        }
    }
    w.into_inner().unwrap_or_default()
}
