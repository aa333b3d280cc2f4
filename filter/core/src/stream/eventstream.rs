//! AWS event-stream (`application/vnd.amazon.eventstream`): binary frames with a prelude CRC
//! and a message CRC, as Bedrock's ConverseStream sends them; incremental parsing and writing.
//!
//! Frame layout (all integers big-endian): total length u32, headers length u32, CRC-32 of those
//! 8 bytes, headers, payload, CRC-32 of everything before it. The prelude CRC is checked as soon
//! as 12 bytes are in, so garbage is rejected before a bogus length makes us wait or buffer.

use super::FrameError;

/// Prelude (12) plus message CRC (4): the size of a frame with no headers and no payload.
const MIN_FRAME: usize = 16;
const PRELUDE: usize = 12;

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header such as `:event-type` or `:message-type`.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Splits bytes into messages. Holds at most one frame, and never one longer than `max_frame`.
pub struct EventStreamFramer {
    max_frame: usize,
    /// Bytes of the current, incomplete frame.
    buf: Vec<u8>,
    /// The current frame's total length, once its prelude has been read and checked.
    expected: Option<usize>,
}

impl EventStreamFramer {
    pub fn new(max_frame: usize) -> Self {
        EventStreamFramer {
            max_frame,
            buf: Vec::new(),
            expected: None,
        }
    }

    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        let mut rest = chunk;
        loop {
            let want = match self.expected {
                Some(total) => total,
                None => PRELUDE,
            };
            // Copy only what the current frame still needs, so a chunk holding many frames
            // never makes the buffer grow past one frame.
            let need = want.saturating_sub(self.buf.len());
            let take = need.min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.buf.extend_from_slice(head);
            rest = tail;
            if self.buf.len() < want {
                return Ok(());
            }
            match self.expected {
                None => {
                    let total = self.check_prelude()?;
                    self.buf.reserve_exact(total.saturating_sub(self.buf.len()));
                    self.expected = Some(total);
                }
                Some(_) => {
                    let frame = std::mem::take(&mut self.buf);
                    self.expected = None;
                    out.push(decode_frame(&frame)?);
                }
            }
        }
    }

    /// The stream ended: anything held is a frame cut short.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }

    /// Validates the 12 buffered prelude bytes and returns the frame's total length.
    fn check_prelude(&self) -> Result<usize, FrameError> {
        let total = be_u32(&self.buf, 0)?;
        let headers = be_u32(&self.buf, 4)?;
        let crc = be_u32(&self.buf, 8)?;
        let covered = self.buf.get(..8).unwrap_or_default();
        if crc32(covered) != crc {
            return Err(FrameError::Malformed("prelude CRC mismatch".into()));
        }
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        let headers = usize::try_from(headers).unwrap_or(usize::MAX);
        if total > self.max_frame {
            return Err(FrameError::TooLarge {
                limit: self.max_frame,
            });
        }
        if total < MIN_FRAME || headers > total - MIN_FRAME {
            return Err(FrameError::Malformed(
                "frame lengths are inconsistent".into(),
            ));
        }
        Ok(total)
    }
}

fn be_u32(buf: &[u8], at: usize) -> Result<u32, FrameError> {
    buf.get(at..at.saturating_add(4))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| FrameError::Malformed("short frame".into()))
}

/// Decodes one whole frame whose prelude has already been checked.
fn decode_frame(frame: &[u8]) -> Result<Message, FrameError> {
    let crc_at = frame
        .len()
        .checked_sub(4)
        .ok_or_else(|| FrameError::Malformed("short frame".into()))?;
    let crc = be_u32(frame, crc_at)?;
    let covered = frame.get(..crc_at).unwrap_or_default();
    if crc32(covered) != crc {
        return Err(FrameError::Malformed("message CRC mismatch".into()));
    }
    let headers_len = usize::try_from(be_u32(frame, 4)?).unwrap_or(usize::MAX);
    let headers_end = PRELUDE.saturating_add(headers_len);
    let headers = frame
        .get(PRELUDE..headers_end)
        .ok_or_else(|| FrameError::Malformed("headers overrun the frame".into()))?;
    let payload = frame
        .get(headers_end..crc_at)
        .ok_or_else(|| FrameError::Malformed("headers overrun the frame".into()))?;
    Ok(Message {
        headers: decode_headers(headers)?,
        payload: payload.to_vec(),
    })
}

/// A cursor over header bytes that reports running off the end as malformed, never panics.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if n > self.bytes.len() {
            return Err(FrameError::Malformed("a header runs past its block".into()));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let s = self.take(N)?;
        <[u8; N]>::try_from(s).map_err(|_| FrameError::Malformed("short header".into()))
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(u8::from_be_bytes(self.array::<1>()?))
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes(self.array::<2>()?))
    }
}

fn decode_headers(bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut r = Reader { bytes };
    let mut out = Vec::new();
    while !r.bytes.is_empty() {
        let name_len = usize::from(r.u8()?);
        if name_len == 0 {
            return Err(FrameError::Malformed("a header has an empty name".into()));
        }
        let name = std::str::from_utf8(r.take(name_len)?)
            .map_err(|_| FrameError::Malformed("a header name is not UTF-8".into()))?
            .to_string();
        let value = match r.u8()? {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(r.array()?)),
            3 => HeaderValue::Short(i16::from_be_bytes(r.array()?)),
            4 => HeaderValue::Int(i32::from_be_bytes(r.array()?)),
            5 => HeaderValue::Long(i64::from_be_bytes(r.array()?)),
            6 => {
                let len = usize::from(r.u16()?);
                HeaderValue::Bytes(r.take(len)?.to_vec())
            }
            7 => {
                let len = usize::from(r.u16()?);
                let s = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| FrameError::Malformed("a string header is not UTF-8".into()))?;
                HeaderValue::String(s.to_string())
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(r.array()?)),
            9 => HeaderValue::Uuid(r.array()?),
            t => {
                return Err(FrameError::Malformed(format!(
                    "unknown header value type {t}"
                )))
            }
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Encodes one message with correct CRCs (used by tests and by anyone replaying a stream).
/// Never panics: a name longer than 255 bytes or a value longer than 65535 bytes is cut to
/// the field's maximum, since the format cannot say more.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in &msg.headers {
        let name = name.as_bytes();
        let name = name.get(..name.len().min(255)).unwrap_or_default();
        headers.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        headers.extend_from_slice(name);
        match value {
            HeaderValue::Bool(true) => headers.push(0),
            HeaderValue::Bool(false) => headers.push(1),
            HeaderValue::Byte(v) => {
                headers.push(2);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                headers.push(3);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                headers.push(4);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                headers.push(5);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(b) => {
                headers.push(6);
                push_short_bytes(&mut headers, b);
            }
            HeaderValue::String(s) => {
                headers.push(7);
                push_short_bytes(&mut headers, s.as_bytes());
            }
            HeaderValue::Timestamp(v) => {
                headers.push(8);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(u) => {
                headers.push(9);
                headers.extend_from_slice(u);
            }
        }
    }
    let total = MIN_FRAME
        .saturating_add(headers.len())
        .saturating_add(msg.payload.len());
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(headers.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&msg.payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn push_short_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let b = b
        .get(..b.len().min(usize::from(u16::MAX)))
        .unwrap_or_default();
    out.extend_from_slice(&u16::try_from(b.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(b);
}

/// The reflected CRC-32 table for polynomial 0xEDB88320 (IEEE 802.3, as zlib computes it).
// Indexing in a const initialiser is checked at compile time: it cannot panic at run time.
#[allow(clippy::indexing_slicing)]
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE), the checksum both event-stream CRC fields use.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        let idx = usize::from((crc as u8) ^ b);
        crc = CRC_TABLE.get(idx).copied().unwrap_or(0) ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testutil::{splits, XorShift};

    fn parse_all(chunks: &[&[u8]], max: usize) -> Result<Vec<Message>, FrameError> {
        let mut f = EventStreamFramer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out)?;
        }
        f.finish()?;
        Ok(out)
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    // Known-answer frames from awslabs/aws-c-event-stream's tests
    // (tests/message_deserializer_test.c and tests/message_streaming_decoder_test.c).
    const NO_OP: [u8; 16] = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];
    const NO_HEADERS: [u8; 29] = [
        0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66,
        0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
    ];
    const ONE_STRING_HEADER: [u8; 61] = [
        0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C, b'c', b'o',
        b'n', b't', b'e', b'n', b't', b'-', b't', b'y', b'p', b'e', 0x07, 0x00, 0x10, b'a', b'p',
        b'p', b'l', b'i', b'c', b'a', b't', b'i', b'o', b'n', b'/', b'j', b's', b'o', b'n', 0x7b,
        0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x8D, 0x9C, 0x08,
        0xB1,
    ];
    const ONE_INT_HEADER: [u8; 30] = [
        0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x0e, 0x5d, 0x4a, 0xdb, 0x8d, 0x08, b'e', b'v',
        b'e', b'n', b't', b'-', b'i', b'd', 0x04, 0x00, 0x00, 0x00, 0x20, 0x2a, 0x4f, 0xb0, 0xea,
    ];
    const ONE_BOOL_HEADER: [u8; 26] = [
        0x00, 0x00, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x0a, 0xaf, 0xa7, 0xb9, 0x54, 0x08, b'e', b'v',
        b'e', b'n', b't', b'-', b'i', b'd', 0x00, 0x6a, 0x44, 0x14, 0xad,
    ];

    fn known_answers() -> Vec<(&'static [u8], Message)> {
        vec![
            (
                &NO_OP[..],
                Message {
                    headers: vec![],
                    payload: vec![],
                },
            ),
            (
                &NO_HEADERS[..],
                Message {
                    headers: vec![],
                    payload: b"{'foo':'bar'}".to_vec(),
                },
            ),
            (
                &ONE_STRING_HEADER[..],
                Message {
                    headers: vec![(
                        "content-type".into(),
                        HeaderValue::String("application/json".into()),
                    )],
                    payload: b"{'foo':'bar'}".to_vec(),
                },
            ),
            (
                &ONE_INT_HEADER[..],
                Message {
                    headers: vec![("event-id".into(), HeaderValue::Int(0x20))],
                    payload: vec![],
                },
            ),
            (
                &ONE_BOOL_HEADER[..],
                Message {
                    headers: vec![("event-id".into(), HeaderValue::Bool(true))],
                    payload: vec![],
                },
            ),
        ]
    }

    #[test]
    fn decodes_and_encodes_the_aws_known_answer_frames() {
        for (bytes, msg) in known_answers() {
            assert_eq!(parse_all(&[bytes], 1024).unwrap(), vec![msg.clone()]);
            assert_eq!(encode(&msg), bytes);
        }
    }

    fn all_types() -> Message {
        Message {
            headers: vec![
                (":message-type".into(), HeaderValue::String("event".into())),
                ("t".into(), HeaderValue::Bool(true)),
                ("f".into(), HeaderValue::Bool(false)),
                ("b".into(), HeaderValue::Byte(-3)),
                ("s".into(), HeaderValue::Short(-300)),
                ("i".into(), HeaderValue::Int(-70_000)),
                ("l".into(), HeaderValue::Long(-5_000_000_000)),
                ("by".into(), HeaderValue::Bytes(vec![0, 1, 255])),
                ("ts".into(), HeaderValue::Timestamp(1_700_000_000_000)),
                ("u".into(), HeaderValue::Uuid([7; 16])),
            ],
            payload: "{\"text\":\"héllo 🦀\"}".as_bytes().to_vec(),
        }
    }

    #[test]
    fn every_header_type_round_trips_and_header_str_finds_strings_only() {
        let msg = all_types();
        let got = parse_all(&[&encode(&msg)], 1024).unwrap();
        assert_eq!(got, vec![msg]);
        assert_eq!(got[0].header_str(":message-type"), Some("event"));
        assert_eq!(got[0].header_str("i"), None);
    }

    #[test]
    fn any_split_of_several_frames_gives_the_same_messages() {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (bytes, msg) in known_answers() {
            stream.extend_from_slice(bytes);
            want.push(msg);
        }
        stream.extend_from_slice(&encode(&all_types()));
        want.push(all_types());
        for chunks in splits(&stream, 300) {
            let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
            assert_eq!(parse_all(&parts, 256).unwrap(), want);
        }
    }

    #[test]
    fn crc_mismatches_are_malformed() {
        let mut bad_prelude = ONE_STRING_HEADER;
        bad_prelude[9] ^= 1;
        assert!(matches!(
            parse_all(&[&bad_prelude], 1024),
            Err(FrameError::Malformed(m)) if m.contains("prelude")
        ));
        let mut bad_payload = ONE_STRING_HEADER;
        bad_payload[50] ^= 1;
        assert!(matches!(
            parse_all(&[&bad_payload], 1024),
            Err(FrameError::Malformed(m)) if m.contains("message CRC")
        ));
    }

    #[test]
    fn a_frame_over_the_bound_is_rejected_from_its_prelude_alone() {
        let big = encode(&Message {
            headers: vec![],
            payload: vec![b'x'; 100],
        });
        let mut f = EventStreamFramer::new(64);
        let err = f.push(&big[..12], &mut Vec::new()).unwrap_err();
        assert_eq!(err, FrameError::TooLarge { limit: 64 });
    }

    #[test]
    fn a_cut_frame_is_truncated_and_empty_input_is_fine() {
        assert_eq!(
            parse_all(&[&ONE_STRING_HEADER[..40]], 1024),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            parse_all(&[&ONE_STRING_HEADER[..5]], 1024),
            Err(FrameError::Truncated)
        );
        assert_eq!(parse_all(&[], 1024), Ok(vec![]));
    }

    /// Builds a frame with valid CRCs around arbitrary lengths and header bytes.
    fn forged(total: u32, headers_len: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&headers_len.to_be_bytes());
        let c = crc32(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out.extend_from_slice(body);
        let c = crc32(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out
    }

    #[test]
    fn inconsistent_lengths_and_bad_headers_are_malformed_not_panics() {
        // Total below the minimum frame.
        let f = forged(8, 0, &[]);
        assert!(matches!(
            parse_all(&[&f[..12]], 1024),
            Err(FrameError::Malformed(_))
        ));
        // Headers longer than the frame allows.
        let f = forged(16, 1, &[]);
        assert!(matches!(
            parse_all(&[&f], 1024),
            Err(FrameError::Malformed(_))
        ));
        // Header cases: empty name, unknown type, value past the block, bad UTF-8.
        for hdr in [
            vec![0u8],
            vec![1, b'a', 42],
            vec![1, b'a', 7, 0, 9, b'x'],
            vec![1, b'a', 4, 0, 0],
            vec![1, 0xff, 0],
            vec![1, b'a', 7, 0, 1, 0xff],
        ] {
            let len = u32::try_from(hdr.len()).unwrap();
            let f = forged(16 + len, len, &hdr);
            assert!(
                matches!(parse_all(&[&f], 1024), Err(FrameError::Malformed(_))),
                "{hdr:?}"
            );
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = XorShift(42);
        for _ in 0..2000 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = parse_all(&[&bytes], 128);
        }
        // Valid CRCs around random header bytes exercise the header parser itself.
        for _ in 0..2000 {
            let len = rng.below(40);
            let hdr: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let l = u32::try_from(len).unwrap();
            let _ = parse_all(&[&forged(16 + l, l, &hdr)], 128);
        }
    }

    #[test]
    fn the_buffer_never_holds_more_than_one_frame() {
        let one = encode(&all_types());
        let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * 50).collect();
        let mut f = EventStreamFramer::new(one.len());
        let mut out = Vec::new();
        f.push(&many, &mut out).unwrap();
        assert_eq!(out.len(), 50);
        assert!(f.buf.capacity() <= one.len());
    }
}
