//! Netstring framing (`<len>:<payload>,`) as a tokio-util codec, with the
//! checks of contract section 5: 1-9 length digits, no leading zero, `:` and
//! `,` where they belong, a size limit, and a payload that is a JSON object
//! within the depth limit.
//! Every violation has its own error, raised as soon as the bytes show it.

use bytes::{Buf, BufMut, BytesMut};
use serde_json::{Map, Value};
use tokio_util::codec::{Decoder, Encoder};

use crate::input::{self, InputError, MAX_DEPTH};

/// At most this many length digits (so a length fits in 999,999,999).
const MAX_DIGITS: usize = 9;

/// How deep a frame may nest: [`MAX_DEPTH`] and the two levels above the
/// result in an `event::CheckResult` (`params`, then `cr`, which holds what
/// `last_check_result` stores). Every result the API accepts and relays
/// then passes every peer's check.
pub const MAX_FRAME_DEPTH: usize = MAX_DEPTH + 2;

/// Why a netstring stream cannot go on. Each names the violation for the one
/// log line that ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum NetstringError {
    /// More than nine length digits.
    #[error("Invalid NetString: Length specifier must not exceed 9 characters")]
    LengthTooLong,
    /// A length such as `012`.
    #[error("Invalid NetString (leading zero)")]
    LeadingZero,
    /// The frame does not start with a digit.
    #[error("Invalid NetString (no length specifier)")]
    NoLength,
    /// Something other than `:` after the digits.
    #[error("Invalid NetString (missing :)")]
    MissingColon,
    /// Something other than `,` after the payload.
    #[error("Invalid NetString (missing ,)")]
    MissingComma,
    /// The declared length is over the limit.
    #[error("Max data length exceeded: a frame of {len} bytes is over the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    /// The payload is not JSON.
    #[error("Invalid JSON in message: {0}")]
    InvalidJson(String),
    /// The payload nests deeper than [`MAX_FRAME_DEPTH`].
    #[error("Invalid JSON-RPC message: {0}")]
    TooDeep(InputError),
    /// The payload is JSON but not an object.
    #[error("Invalid JSON-RPC message: the payload is a JSON {0}, not an object")]
    NotAnObject(&'static str),
    /// The stream ended in the middle of a frame.
    #[error("Connection closed in the middle of a message ({0} bytes buffered)")]
    Truncated(usize),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Frames JSON objects as netstrings, in both directions.
#[derive(Debug, Clone)]
pub struct NetstringCodec {
    max_len: usize,
}

impl NetstringCodec {
    /// A codec that refuses frames longer than `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        NetstringCodec { max_len }
    }

    /// Changes the limit, e.g. when a peer turns out to be a known endpoint.
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// Reads the length prefix. `Ok(None)`: more bytes are needed.
    fn header(&self, src: &[u8]) -> Result<Option<(usize, usize)>, NetstringError> {
        let digits = src.iter().take_while(|b| b.is_ascii_digit()).count();
        // In the order the bytes show them: a leading zero is plain from the
        // second digit, a length too long only from the tenth. Checked the
        // other way round, `0000000000` would be refused for one or the
        // other depending on how its bytes arrived.
        if digits > 1 && src[0] == b'0' {
            return Err(NetstringError::LeadingZero);
        }
        if digits > MAX_DIGITS {
            return Err(NetstringError::LengthTooLong);
        }
        if digits == 0 {
            return if src.is_empty() { Ok(None) } else { Err(NetstringError::NoLength) };
        }
        let Some(&after) = src.get(digits) else { return Ok(None) };
        if after != b':' {
            return Err(NetstringError::MissingColon);
        }
        // At most nine ASCII digits: always valid UTF-8 and always fits.
        let len: usize =
            std::str::from_utf8(&src[..digits]).ok().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
        if len > self.max_len {
            return Err(NetstringError::TooLarge { len, limit: self.max_len });
        }
        Ok(Some((digits + 1, len)))
    }
}

/// Decodes a payload into a JSON object of at most [`MAX_FRAME_DEPTH`] levels.
pub fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, NetstringError> {
    let what = || "the message".to_string();
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => match input::check_object_depth(&map, MAX_FRAME_DEPTH, what) {
            Ok(()) => Ok(map),
            Err(e) => Err(NetstringError::TooDeep(e)),
        },
        Ok(other) => Err(NetstringError::NotAnObject(json_kind(&other))),
        Err(e) if input::is_too_deep(&e) => {
            Err(NetstringError::TooDeep(InputError::TooDeep { what: what(), limit: MAX_FRAME_DEPTH }))
        }
        Err(e) => Err(NetstringError::InvalidJson(e.to_string())),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Decoder for NetstringCodec {
    type Item = Map<String, Value>;
    type Error = NetstringError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, NetstringError> {
        let Some((header, len)) = self.header(src)? else { return Ok(None) };
        let total = header + len + 1;
        if src.len() < total {
            // Grow in modest steps: a peer that declares a large frame and
            // then trickles it must not make us allocate it all up front.
            src.reserve((total - src.len()).min(64 * 1024));
            return Ok(None);
        }
        if src[total - 1] != b',' {
            return Err(NetstringError::MissingComma);
        }
        src.advance(header);
        let payload = src.split_to(len);
        src.advance(1);
        parse_object(&payload).map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, NetstringError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(NetstringError::Truncated(src.len())),
        }
    }
}

/// Appends one netstring with `payload` to `dst`.
pub fn encode_payload(payload: &[u8], dst: &mut BytesMut) {
    let len = payload.len().to_string();
    dst.reserve(len.len() + payload.len() + 2);
    dst.put_slice(len.as_bytes());
    dst.put_u8(b':');
    dst.put_slice(payload);
    dst.put_u8(b',');
}

impl Encoder<&Value> for NetstringCodec {
    type Error = NetstringError;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), NetstringError> {
        let payload = serde_json::to_vec(item).map_err(|e| NetstringError::InvalidJson(e.to_string()))?;
        encode_payload(&payload, dst);
        Ok(())
    }
}

impl Encoder<bytes::Bytes> for NetstringCodec {
    type Error = NetstringError;

    /// Frames bytes already serialized (the replay log keeps messages so).
    fn encode(&mut self, item: bytes::Bytes, dst: &mut BytesMut) -> Result<(), NetstringError> {
        encode_payload(&item, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn decode_all(codec: &mut NetstringCodec, bytes: &[u8]) -> Result<Vec<Map<String, Value>>, String> {
        let mut buf = BytesMut::from(bytes);
        let mut out = vec![];
        loop {
            match codec.decode_eof(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => return Ok(out),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn err(bytes: &[u8]) -> NetstringError {
        let mut buf = BytesMut::from(bytes);
        let mut c = NetstringCodec::new(1024);
        loop {
            match c.decode(&mut buf) {
                Err(e) => return e,
                Ok(Some(_)) => continue,
                Ok(None) => match c.decode_eof(&mut buf) {
                    Err(e) => return e,
                    other => panic!("{:?}: expected an error, got {other:?}", String::from_utf8_lossy(bytes)),
                },
            }
        }
    }

    #[test]
    fn frames_decode_one_by_one() {
        let mut c = NetstringCodec::new(1024);
        let got = decode_all(&mut c, br#"7:{"a":1},2:{},"#).unwrap();
        assert_eq!(got, vec![json!({"a":1}).as_object().unwrap().clone(), Map::new()]);
    }

    #[test]
    fn every_violation_has_its_own_error() {
        assert!(matches!(err(b"1234567890:"), NetstringError::LengthTooLong));
        assert!(matches!(err(b"1234567890"), NetstringError::LengthTooLong), "ten digits are enough to know");
        assert!(matches!(err(b"02:{},"), NetstringError::LeadingZero));
        assert!(matches!(err(b":{},"), NetstringError::NoLength));
        assert!(matches!(err(b"x"), NetstringError::NoLength));
        assert!(matches!(err(b"2;{},"), NetstringError::MissingColon));
        assert!(matches!(err(b"2:{}."), NetstringError::MissingComma));
        assert!(matches!(err(b"2000:"), NetstringError::TooLarge { len: 2000, limit: 1024 }));
        assert!(matches!(err(b"3:{x},"), NetstringError::InvalidJson(_)));
        assert!(matches!(err(b"2:[],"), NetstringError::NotAnObject("array")));
        assert!(
            matches!(err(b"0:,"), NetstringError::InvalidJson(_)),
            "an empty payload is framed but not JSON"
        );
        assert!(matches!(err(b"5:{\"a"), NetstringError::Truncated(_)));
    }

    #[test]
    fn ten_zeros_are_a_leading_zero_whole_or_split() {
        // Scenario: a peer sends `0000000000`, which breaks two rules.
        // Bug: whole, it was refused for its length (ten digits); arriving
        // two bytes first, for its leading zero: the error hung on the
        // network's chunking (found by the split-anywhere property).
        // Fix: the header checks the leading zero, which the second byte
        // shows, before the length, which only the tenth shows.
        assert!(matches!(err(b"0000000000"), NetstringError::LeadingZero));
        assert_eq!(
            decode_in_chunks(256, b"0000000000", &[2]),
            Err("Invalid NetString (leading zero)".into())
        );
    }

    fn deep_frame(levels: usize) -> Vec<u8> {
        let payload = format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels));
        let mut buf = BytesMut::new();
        encode_payload(payload.as_bytes(), &mut buf);
        buf.to_vec()
    }

    #[test]
    fn a_payload_deeper_than_the_frame_limit_is_a_violation_naming_it() {
        let mut c = NetstringCodec::new(1 << 20);
        assert_eq!(decode_all(&mut c, &deep_frame(MAX_FRAME_DEPTH)).map(|f| f.len()), Ok(1));
        let named = "Invalid JSON-RPC message: the message is nested deeper than the limit of 34 levels";
        for levels in [MAX_FRAME_DEPTH + 1, 129, 100_000] {
            let got = decode_all(&mut NetstringCodec::new(1 << 20), &deep_frame(levels));
            assert_eq!(got, Err(named.to_string()), "{levels} levels");
        }
    }

    #[test]
    fn the_limit_can_be_raised_for_endpoints() {
        let mut c = NetstringCodec::new(4);
        let big = br#"9:{"a":123},"#;
        assert!(decode_all(&mut c, big).is_err());
        c.set_max_len(16);
        assert_eq!(decode_all(&mut c, big).unwrap().len(), 1);
    }

    #[test]
    fn encoding_is_len_colon_payload_comma() {
        let mut c = NetstringCodec::new(1024);
        let mut buf = BytesMut::new();
        c.encode(&json!({"method":"event::Heartbeat"}), &mut buf).unwrap();
        assert_eq!(&buf[..], br#"29:{"method":"event::Heartbeat"},"#);
    }

    fn json_object() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,20}".prop_map(Value::String),
        ];
        let tree = leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[a-z]{1,6}", tree, 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    /// Feeds `bytes` in the chunks `cuts` makes, decoding after each, then
    /// at the end of the stream.
    fn decode_in_chunks(
        limit: usize,
        bytes: &[u8],
        cuts: &[usize],
    ) -> Result<Vec<Map<String, Value>>, String> {
        let mut c = NetstringCodec::new(limit);
        let mut buf = BytesMut::new();
        let mut out = vec![];
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.push(bytes.len());
        points.sort_unstable();
        let mut at = 0;
        for p in points {
            buf.extend_from_slice(&bytes[at..p]);
            at = p;
            while let Some(m) = c.decode(&mut buf).map_err(|e| e.to_string())? {
                out.push(m);
            }
        }
        while let Some(m) = c.decode_eof(&mut buf).map_err(|e| e.to_string())? {
            out.push(m);
        }
        Ok(out)
    }

    proptest! {
        #[test]
        fn any_object_round_trips(v in json_object()) {
            let mut c = NetstringCodec::new(usize::MAX);
            let mut buf = BytesMut::new();
            c.encode(&v, &mut buf).unwrap();
            let got = c.decode(&mut buf).unwrap();
            prop_assert_eq!(got.map(Value::Object), Some(v));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn any_bytes_split_anywhere_decode_the_same_without_panicking(
            bytes in prop::collection::vec(prop_oneof![
                3 => prop::sample::select(b"0123456789:,{}\"a".to_vec()),
                1 => any::<u8>(),
            ], 0..200),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let whole = decode_in_chunks(256, &bytes, &[]);
            let split = decode_in_chunks(256, &bytes, &cuts);
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn valid_streams_split_anywhere_yield_every_frame(
            objs in prop::collection::vec(json_object(), 0..5),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut c = NetstringCodec::new(usize::MAX);
            let mut bytes = BytesMut::new();
            for o in &objs {
                c.encode(o, &mut bytes).unwrap();
            }
            let got = decode_in_chunks(usize::MAX, &bytes, &cuts);
            prop_assert_eq!(got, Ok(objs.into_iter().filter_map(|v| v.as_object().cloned()).collect::<Vec<_>>()));
        }

        #[test]
        fn a_payload_of_any_depth_is_decoded_within_the_limit_and_refused_past_it(
            levels in prop_oneof![0..(2 * MAX_FRAME_DEPTH), 100..5_000usize],
            kinds in prop::collection::vec(any::<bool>(), 1..8),
            closed in any::<bool>(),
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            // An object around `levels` more of lists and dictionaries, in a
            // repeating pattern; unclosed, it is invalid JSON as well as deep.
            let opens: String = (0..levels).map(|i| if kinds[i % kinds.len()] { "[" } else { r#"{"a":"# }).collect();
            let closes: String = (0..levels).rev().map(|i| if kinds[i % kinds.len()] { "]" } else { "}" }).collect();
            let payload = format!(r#"{{"m":{opens}1{}}}"#, if closed { closes.as_str() } else { "" });
            let mut bytes = BytesMut::new();
            encode_payload(payload.as_bytes(), &mut bytes);
            let got = decode_in_chunks(1 << 20, &bytes, &cuts);
            // The outer object is one level more than `levels`, and always closed.
            match (closed || levels == 0, levels < MAX_FRAME_DEPTH) {
                (true, true) => prop_assert_eq!(got.map(|f| f.len()), Ok(1)),
                (true, false) => prop_assert!(got.unwrap_err().contains("nested deeper than the limit of 34")),
                (false, _) => prop_assert!(got.is_err()),
            }
        }

        #[test]
        fn a_huge_declared_length_is_refused_or_awaited_without_allocating_it(
            len in prop_oneof![0..1_000usize, 1_000..999_999_999usize, Just(999_999_999usize)],
            limit in prop_oneof![Just(1usize << 20), Just(16usize << 20), any::<usize>()],
            sent in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            // Part of the payload at most, and never the closing comma.
            let mut buf = BytesMut::from(format!("{len}:").as_bytes());
            buf.extend_from_slice(&sent[..sent.len().min(len)]);
            match NetstringCodec::new(limit).decode(&mut buf) {
                Err(NetstringError::TooLarge { len: l, limit: m }) => prop_assert!(l == len && len > m),
                Ok(None) => {
                    prop_assert!(len <= limit);
                    prop_assert!(buf.capacity() <= 256 * 1024, "{} bytes reserved for a frame of {len}", buf.capacity());
                }
                other => prop_assert!(false, "an unfinished frame gave {:?}", other),
            }
        }
    }
}
