//! docs/format.md's "Wire protocol" section lists every error code and API key with its
//! number: keep the document and the code in step.

use cfa_net::constants::{FRAME_BYTES_MAX, FRAME_HEADER_BYTES};
use cfa_net::protocol::{ApiKey, ErrorCode};

fn wire_section() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/format.md");
    let doc = std::fs::read_to_string(path).expect("docs/format.md is readable");
    let start = doc
        .find("\n## Wire protocol")
        .expect("docs/format.md has a Wire protocol section");
    let rest = &doc[start + 1..];
    // The section ends at the next top-level heading, if another section follows it.
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

#[test]
fn every_error_code_is_documented_with_its_number() {
    let doc = wire_section();
    for code in ErrorCode::ALL {
        let row = format!("| {} | `{}` |", code.as_u16(), code.name());
        assert!(doc.contains(&row), "docs/format.md lacks the row {row}");
    }
}

#[test]
fn every_api_key_is_documented_with_its_number() {
    let doc = wire_section();
    for api in ApiKey::ALL {
        let row = format!("| {} | `{:?}` |", api.as_u16(), api);
        assert!(doc.contains(&row), "docs/format.md lacks the row {row}");
    }
}

#[test]
fn frame_layout_matches_the_constants() {
    let doc = wire_section();
    // The body starts right after the fixed header.
    let body_row = format!("| {FRAME_HEADER_BYTES} | `body_length` | body |");
    assert!(doc.contains(&body_row), "docs/format.md lacks {body_row}");
    assert!(doc.contains(&format!("{} MiB", FRAME_BYTES_MAX >> 20)));
}
