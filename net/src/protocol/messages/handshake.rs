//! ApiVersions: the first exchange on a connection.

use crate::generated as fb;
use crate::protocol::api::ApiVersionRange;
use crate::protocol::error::{EncodeError, ProtocolError};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::payload::{PayloadReader, PayloadWriter};
use crate::protocol::wire::{code, opt_str, opt_text, verified_root, Body, Fbb, Root};

/// The client says who it is and which versions of each API it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsRequest {
    pub client_id: String,
    pub versions: Vec<ApiVersionRange>,
}

/// The broker's versions of each API; feed both lists to [`crate::protocol::negotiate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub versions: Vec<ApiVersionRange>,
}

fn build_ranges<'f>(
    fbb: &mut Fbb<'f>,
    ranges: &[ApiVersionRange],
) -> flatbuffers::WIPOffset<flatbuffers::Vector<'f, fb::ApiVersionRange>> {
    let items: Vec<_> = ranges
        .iter()
        .map(|r| fb::ApiVersionRange::new(r.api_key, r.min_version, r.max_version))
        .collect();
    fbb.create_vector(&items)
}

fn parse_ranges(v: Option<flatbuffers::Vector<'_, fb::ApiVersionRange>>) -> Vec<ApiVersionRange> {
    v.map(|v| {
        v.iter()
            .map(|r| ApiVersionRange {
                api_key: r.api_key(),
                min_version: r.min_version(),
                max_version: r.max_version(),
            })
            .collect()
    })
    .unwrap_or_default()
}

impl Body for ApiVersionsRequest {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::ApiVersionsRequestArgs {
            client_id: Some(fbb.create_string(&self.client_id)),
            versions: Some(build_ranges(fbb, &self.versions)),
        };
        Ok(fb::ApiVersionsRequest::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::ApiVersionsRequest>(body, "ApiVersionsRequest")?;
        Ok(ApiVersionsRequest {
            client_id: t.client_id().to_owned(),
            versions: parse_ranges(t.versions()),
        })
    }
}

impl Body for ApiVersionsResponse {
    fn build(&self, fbb: &mut Fbb<'_>, _: &mut PayloadWriter) -> Result<Root, EncodeError> {
        let args = fb::ApiVersionsResponseArgs {
            error_code: self.error_code.as_u16(),
            error_message: opt_str(fbb, &self.error_message),
            versions: Some(build_ranges(fbb, &self.versions)),
        };
        Ok(fb::ApiVersionsResponse::create(fbb, &args).as_union_value())
    }

    fn parse(body: &[u8], _: &mut PayloadReader) -> Result<Self, ProtocolError> {
        let t = verified_root::<fb::ApiVersionsResponse>(body, "ApiVersionsResponse")?;
        Ok(ApiVersionsResponse {
            error_code: code(t.error_code()),
            error_message: opt_text(t.error_message()),
            versions: parse_ranges(t.versions()),
        })
    }
}
