//! API keys, the versions this build speaks, and version negotiation.

use std::fmt;

/// Which API a frame belongs to, carried as a u16 in the frame header. Like error codes,
/// the numbers are stable and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum ApiKey {
    ApiVersions = 0,
    Metadata = 1,
    CreateTopics = 2,
    DeleteTopics = 3,
    ListTopics = 4,
    DescribeTopic = 5,
    Produce = 6,
    Fetch = 7,
    ListOffsets = 8,
    InitProducerId = 9,
    JoinGroup = 10,
    SyncGroup = 11,
    Heartbeat = 12,
    LeaveGroup = 13,
    OffsetCommit = 14,
    OffsetFetch = 15,
    ListGroups = 16,
    DescribeGroup = 17,
}

impl ApiKey {
    /// Every API, in numeric order.
    pub const ALL: [ApiKey; 18] = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::ListTopics,
        ApiKey::DescribeTopic,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::InitProducerId,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::ListGroups,
        ApiKey::DescribeGroup,
    ];

    pub fn as_u16(self) -> u16 {
        self as u16
    }

    pub fn from_u16(value: u16) -> Option<ApiKey> {
        ApiKey::ALL.get(usize::from(value)).copied()
    }

    /// The versions of this API that this build encodes and decodes. Every API is at
    /// version 0; a new version adds fields to the schema (flatbuffers keeps old readers
    /// working) and raises `max` here.
    pub fn versions(self) -> VersionRange {
        match self {
            ApiKey::ApiVersions
            | ApiKey::Metadata
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::ListTopics
            | ApiKey::DescribeTopic
            | ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::InitProducerId
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::ListGroups
            | ApiKey::DescribeGroup => VersionRange { min: 0, max: 0 },
        }
    }

    pub fn supports(self, version: u16) -> bool {
        self.versions().contains(version)
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An inclusive range of versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    pub min: u16,
    pub max: u16,
}

impl VersionRange {
    pub fn contains(self, version: u16) -> bool {
        self.min <= version && version <= self.max
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.min, self.max)
    }
}

/// The versions of one API a peer speaks, as announced in ApiVersions. The key is raw: a
/// peer may announce APIs this build does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    pub api_key: u16,
    pub min_version: u16,
    pub max_version: u16,
}

/// What this build speaks, one range per API: the list a client sends and a broker
/// answers with in ApiVersions.
pub fn supported_versions() -> Vec<ApiVersionRange> {
    ApiKey::ALL
        .iter()
        .map(|api| {
            let r = api.versions();
            ApiVersionRange {
                api_key: api.as_u16(),
                min_version: r.min,
                max_version: r.max,
            }
        })
        .collect()
}

/// The version to use for each API both sides speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedVersions {
    versions: [Option<u16>; ApiKey::ALL.len()],
}

impl NegotiatedVersions {
    /// The highest common version of `api`, or `None` when the sides share none.
    pub fn get(&self, api: ApiKey) -> Option<u16> {
        self.versions[usize::from(api.as_u16())]
    }
}

/// A required API that the two sides cannot speak in a common version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{api} is unsupported: we speak {}, the peer speaks {}", show(.ours), show(.theirs))]
pub struct UnsupportedApi {
    pub api: ApiKey,
    /// Our range, `None` if we do not list the API.
    pub ours: Option<VersionRange>,
    /// The peer's range, `None` if the peer does not list the API.
    pub theirs: Option<VersionRange>,
}

fn show(r: &Option<VersionRange>) -> String {
    r.map_or_else(|| "no version".to_owned(), |r| format!("versions {r}"))
}

/// Picks, per API, the highest version in both `ours` and `theirs`. Fails naming the
/// first API of `required` with no common version. Ranges with min > max and unknown API
/// keys are ignored; if a side lists an API twice, its first entry counts.
pub fn negotiate(
    ours: &[ApiVersionRange],
    theirs: &[ApiVersionRange],
    required: &[ApiKey],
) -> Result<NegotiatedVersions, UnsupportedApi> {
    let mut versions = [None; ApiKey::ALL.len()];
    for api in ApiKey::ALL {
        let (a, b) = (find(ours, api), find(theirs, api));
        if let (Some(a), Some(b)) = (a, b) {
            let (low, high) = (a.min.max(b.min), a.max.min(b.max));
            if low <= high {
                versions[usize::from(api.as_u16())] = Some(high);
            }
        }
    }
    let negotiated = NegotiatedVersions { versions };
    for &api in required {
        if negotiated.get(api).is_none() {
            return Err(UnsupportedApi {
                api,
                ours: find(ours, api),
                theirs: find(theirs, api),
            });
        }
    }
    Ok(negotiated)
}

fn find(ranges: &[ApiVersionRange], api: ApiKey) -> Option<VersionRange> {
    ranges
        .iter()
        .find(|r| r.api_key == api.as_u16())
        .filter(|r| r.min_version <= r.max_version)
        .map(|r| VersionRange {
            min: r.min_version,
            max: r.max_version,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(api: ApiKey, min: u16, max: u16) -> ApiVersionRange {
        ApiVersionRange {
            api_key: api.as_u16(),
            min_version: min,
            max_version: max,
        }
    }

    #[test]
    fn keys_round_trip_and_are_dense() {
        for (i, api) in ApiKey::ALL.iter().enumerate() {
            assert_eq!(usize::from(api.as_u16()), i);
            assert_eq!(ApiKey::from_u16(api.as_u16()), Some(*api));
        }
        assert_eq!(ApiKey::from_u16(ApiKey::ALL.len() as u16), None);
    }

    #[test]
    fn negotiate_picks_highest_common_version() {
        let ours = [range(ApiKey::Produce, 0, 3), range(ApiKey::Fetch, 1, 2)];
        let theirs = [
            range(ApiKey::Produce, 2, 5),
            range(ApiKey::Fetch, 0, 1),
            range(ApiKey::Metadata, 0, 9),
            ApiVersionRange {
                api_key: 999,
                min_version: 0,
                max_version: 1,
            },
        ];
        let v = negotiate(&ours, &theirs, &[ApiKey::Produce, ApiKey::Fetch]).expect("common");
        assert_eq!(v.get(ApiKey::Produce), Some(3));
        assert_eq!(v.get(ApiKey::Fetch), Some(1));
        assert_eq!(v.get(ApiKey::Metadata), None, "we do not list Metadata");
    }

    #[test]
    fn negotiate_names_the_unsupported_api() {
        let ours = [range(ApiKey::Produce, 0, 1), range(ApiKey::JoinGroup, 0, 0)];
        let theirs = [range(ApiKey::Produce, 2, 3)];
        let err = negotiate(&ours, &theirs, &[ApiKey::Produce]).expect_err("no overlap");
        assert_eq!(err.api, ApiKey::Produce);
        assert_eq!(err.theirs, Some(VersionRange { min: 2, max: 3 }));
        let err = negotiate(&ours, &theirs, &[ApiKey::JoinGroup]).expect_err("missing");
        assert_eq!(err.theirs, None);
        assert!(err.to_string().contains("JoinGroup"), "{err}");
        // Not required: the handshake succeeds, the API is just unavailable.
        let v = negotiate(&ours, &theirs, &[]).expect("nothing required");
        assert_eq!(v.get(ApiKey::Produce), None);
    }

    #[test]
    fn this_build_negotiates_with_itself() {
        let ours = supported_versions();
        let v = negotiate(&ours, &ours, &ApiKey::ALL).expect("self");
        for api in ApiKey::ALL {
            assert_eq!(v.get(api), Some(api.versions().max));
        }
    }
}
