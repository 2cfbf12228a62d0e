//! Test support shared by the broker's tests and the `cfa` binary's: a blocking client that
//! speaks the raw protocol, one request at a time. Not the client SDK (net/src/client).
#![doc(hidden)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cfa_engine::batch::decode_records;
use cfa_engine::{BatchBuilder, ProducerStamp};

use crate::protocol::*;

pub struct RawClient {
    stream: TcpStream,
    next_id: u32,
    buf: BytesMut,
    splitter: FrameSplitter,
}

impl RawClient {
    /// Connects with a 5 s timeout; reads time out after 10 s.
    pub fn connect(addr: SocketAddr) -> std::io::Result<RawClient> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(RawClient {
            stream,
            next_id: 1,
            buf: BytesMut::new(),
            splitter: FrameSplitter::new(),
        })
    }

    /// Reads wait up to `d` (a group join can be answered many seconds later).
    pub fn with_read_timeout(self, d: Duration) -> std::io::Result<RawClient> {
        self.stream.set_read_timeout(Some(d))?;
        Ok(self)
    }

    pub fn send(&mut self, req: &Request) -> std::io::Result<u32> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = encode_request(id, 0, req).map_err(std::io::Error::other)?;
        self.stream.write_all(&frame.to_bytes())?;
        Ok(id)
    }

    /// The next response; `None` when the broker closed the connection.
    pub fn recv(&mut self) -> std::io::Result<Option<DecodedResponse>> {
        loop {
            if let Some(frame) = self
                .splitter
                .next_frame(&mut self.buf)
                .map_err(std::io::Error::other)?
            {
                return decode_response(frame)
                    .map(Some)
                    .map_err(std::io::Error::other);
            }
            let mut chunk = vec![0u8; 64 << 10];
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
                Err(e) => return Err(e),
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends and waits for the answer (panics in tests on a broken connection).
    pub fn call(&mut self, req: Request) -> Response {
        let id = self.send(&req).expect("send");
        let r = self.recv().expect("recv").expect("a response");
        assert_eq!(r.request_id, id, "responses come in request order");
        r.response
    }

    pub fn create_topic(&mut self, name: &str, partitions: u32) -> TopicResult {
        match self.call(Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                partitions: Some(partitions),
                replication_factor: None,
                configs: vec![],
            }],
            timeout_ms: 10_000,
        })) {
            Response::CreateTopics(mut c) => c.topics.remove(0),
            other => panic!("{other:?}"),
        }
    }

    pub fn produce(
        &mut self,
        topic: &str,
        partition: u32,
        batches: Vec<Bytes>,
        acks: Acks,
    ) -> ProducePartitionResponse {
        match self.call(Request::Produce(ProduceRequest {
            acks,
            timeout_ms: 10_000,
            topics: vec![ProduceTopic {
                name: topic.into(),
                partitions: vec![ProducePartition { partition, batches }],
            }],
        })) {
            Response::Produce(mut p) => p.topics.remove(0).partitions.remove(0),
            other => panic!("{other:?}"),
        }
    }

    pub fn fetch(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
        wait_ms: u32,
    ) -> FetchPartitionResponse {
        match self.call(Request::Fetch(FetchRequest {
            replica_id: None,
            max_wait_ms: wait_ms,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                name: topic.into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                }],
            }],
        })) {
            Response::Fetch(mut f) => f.topics.remove(0).partitions.remove(0),
            other => panic!("{other:?}"),
        }
    }

    /// Every record value of a partition from `offset` on, as (offset, UTF-8 value).
    pub fn read_all(&mut self, topic: &str, partition: u32) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut next = 0;
        loop {
            let f = self.fetch(topic, partition, next, 0);
            assert_eq!(
                f.error_code,
                ErrorCode::None,
                "{topic}-{partition}: {:?}",
                f.error_message
            );
            if f.batches.is_empty() {
                return out;
            }
            for r in f
                .batches
                .iter()
                .flat_map(|b| decode_records(b).expect("records"))
            {
                if r.offset >= next {
                    let v = r
                        .value
                        .map(|v| String::from_utf8_lossy(&v).into_owned())
                        .unwrap_or_default();
                    out.push((r.offset, v));
                    next = r.offset + 1;
                }
            }
        }
    }
}

/// A batch of UTF-8 values.
pub fn batch(values: &[&str], stamp: ProducerStamp) -> Bytes {
    let mut b = BatchBuilder::new(1_700_000_000_000);
    for v in values {
        b.push(1_700_000_000_000, None, Some(v.as_bytes()), &[]);
    }
    b.finish(stamp).freeze()
}

/// The values of some batches, in order.
pub fn values(batches: &[Bytes]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| decode_records(b).expect("records"))
        .map(|r| String::from_utf8_lossy(&r.value.expect("value")).into_owned())
        .collect()
}
