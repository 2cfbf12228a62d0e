//! Small helpers between domain values and flatbuffers, shared by every message module.

use flatbuffers::{
    FlatBufferBuilder, Follow, ForwardsUOffset, UnionWIPOffset, Vector, Verifiable,
    VerifierOptions, WIPOffset,
};

use crate::constants::{VERIFIER_APPARENT_BYTES_MAX, VERIFIER_DEPTH_MAX, VERIFIER_TABLES_MAX};
use crate::protocol::error::{EncodeError, ProtocolError};
use crate::protocol::error_code::ErrorCode;
use crate::protocol::payload::{PayloadReader, PayloadWriter};

pub(crate) type Fbb<'f> = FlatBufferBuilder<'f>;
pub(crate) type Root = WIPOffset<UnionWIPOffset>;
pub(crate) type Tables<'f, X> = WIPOffset<Vector<'f, ForwardsUOffset<X>>>;
pub(crate) type FbTables<'a, X> = Option<Vector<'a, ForwardsUOffset<X>>>;

/// A message body: one root table per API and direction.
pub(crate) trait Body: Sized {
    /// Adds the body to `fbb` (record batches to `payload`) and returns its root.
    fn build(&self, fbb: &mut Fbb<'_>, payload: &mut PayloadWriter) -> Result<Root, EncodeError>;

    /// Verifies `body` and reads it (record batches from `payload`).
    fn parse(body: &[u8], payload: &mut PayloadReader) -> Result<Self, ProtocolError>;
}

/// Verifier limits: the crate defaults allow a 2 GiB apparent size and depth 64; ours
/// follow the body bound (see constants).
fn verifier_options() -> VerifierOptions {
    VerifierOptions {
        max_depth: VERIFIER_DEPTH_MAX,
        max_tables: VERIFIER_TABLES_MAX,
        max_apparent_size: VERIFIER_APPARENT_BYTES_MAX,
        ignore_missing_null_terminator: false,
    }
}

/// The verified root table of `body`: the safe `root` path, never `root_unchecked`.
pub(crate) fn verified_root<'a, T>(
    body: &'a [u8],
    what: &'static str,
) -> Result<T::Inner, ProtocolError>
where
    T: Follow<'a> + Verifiable + 'a,
{
    flatbuffers::root_with_opts::<T>(&verifier_options(), body)
        .map_err(|source| ProtocolError::InvalidFlatbuffer { what, source })
}

// ---- encoding ----

pub(crate) fn opt_str<'f>(fbb: &mut Fbb<'f>, s: &Option<String>) -> Option<WIPOffset<&'f str>> {
    s.as_deref().map(|s| fbb.create_string(s))
}

pub(crate) fn strs<'f>(fbb: &mut Fbb<'f>, items: &[String]) -> Tables<'f, &'f str> {
    let offsets: Vec<_> = items.iter().map(|s| fbb.create_string(s)).collect();
    fbb.create_vector(&offsets)
}

pub(crate) fn u32s<'f>(fbb: &mut Fbb<'f>, items: &[u32]) -> WIPOffset<Vector<'f, u32>> {
    fbb.create_vector(items)
}

/// A vector of tables, each built by `f` in order (payload references stay in body order).
pub(crate) fn tables<'f, T, X>(
    fbb: &mut Fbb<'f>,
    items: &[T],
    mut f: impl FnMut(&mut Fbb<'f>, &T) -> Result<WIPOffset<X>, EncodeError>,
) -> Result<Tables<'f, X>, EncodeError> {
    let mut offsets = Vec::with_capacity(items.len());
    for item in items {
        offsets.push(f(fbb, item)?);
    }
    Ok(fbb.create_vector(&offsets))
}

// ---- decoding ----

pub(crate) fn list<'a, X, T>(
    v: FbTables<'a, X>,
    mut f: impl FnMut(X::Inner) -> Result<T, ProtocolError>,
) -> Result<Vec<T>, ProtocolError>
where
    X: Follow<'a> + 'a,
{
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(v.len());
    for item in v.iter() {
        out.push(f(item)?);
    }
    Ok(out)
}

pub(crate) fn string_list(v: FbTables<'_, &str>) -> Vec<String> {
    v.map(|v| v.iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

pub(crate) fn u32_list(v: Option<Vector<'_, u32>>) -> Vec<u32> {
    v.map(|v| v.iter().collect()).unwrap_or_default()
}

/// An optional string field that the domain treats as plain text: absent reads as empty.
pub(crate) fn text(s: Option<&str>) -> String {
    s.unwrap_or_default().to_owned()
}

pub(crate) fn opt_text(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

pub(crate) fn code(value: u16) -> ErrorCode {
    ErrorCode::from_wire(value)
}

pub(crate) fn batches(
    refs: Option<Vector<'_, crate::generated::PayloadRef>>,
    payload: &mut PayloadReader,
) -> Result<Vec<bytes::Bytes>, ProtocolError> {
    let Some(refs) = refs else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(refs.len());
    for r in refs.iter() {
        out.push(payload.take(r)?);
    }
    Ok(out)
}

pub(crate) fn batch_refs<'f>(
    fbb: &mut Fbb<'f>,
    batches: &[bytes::Bytes],
    payload: &mut PayloadWriter,
) -> WIPOffset<Vector<'f, crate::generated::PayloadRef>> {
    let refs: Vec<_> = batches.iter().map(|b| payload.push(b)).collect();
    fbb.create_vector(&refs)
}
