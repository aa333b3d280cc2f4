//! AWS Signature Version 4 request signing (header form), for calling Bedrock.
//! Owns the canonical request, HMAC-SHA256 over `sha2`, and date formatting without a clock crate.
//!
//! The canonical URI follows botocore for non-S3 services: the path as sent (already
//! percent-encoded once, e.g. a Bedrock model id's `:` as `%3A`) has its dot segments and empty
//! segments removed and is then percent-encoded again, so `%3A` is signed as `%253A`.

use sha2::{Digest, Sha256};

/// Long-term or session credentials. Never logged: `Debug` is implemented by hand.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Headers botocore leaves unsigned because proxies rewrite them in flight.
const UNSIGNED: [&str; 4] = ["expect", "user-agent", "x-amzn-trace-id", "authorization"];

/// Signs one request and returns the headers to add: `x-amz-date`, `x-amz-content-sha256`,
/// `x-amz-security-token` (with session credentials) and `authorization`.
///
/// `headers` are the other headers that will be sent (names in any case); they are all signed
/// except pseudo-headers and those in [`UNSIGNED`]. `host` is signed as the `host` header.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    method: &str,
    host: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
    unix_seconds: u64,
) -> Vec<(String, String)> {
    let amz_date = amz_date(unix_seconds);
    let payload_hash = hex(&Sha256::digest(body));
    let mut added = vec![
        ("x-amz-date".to_string(), amz_date.clone()),
        ("x-amz-content-sha256".to_string(), payload_hash.clone()),
    ];
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".to_string(), token.clone()));
    }
    let mut to_sign: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| {
            !n.starts_with(':')
                && n != "host"
                && !UNSIGNED.contains(&n.as_str())
                && !added.iter().any(|(a, _)| a == n)
        })
        .collect();
    to_sign.push(("host".to_string(), host.to_string()));
    to_sign.extend(added.iter().cloned());
    let auth = authorization(
        creds,
        region,
        service,
        method,
        path_and_query,
        &to_sign,
        &payload_hash,
        &amz_date,
    );
    added.push(("authorization".to_string(), auth));
    added
}

/// The `Authorization` value for a request whose signed headers are exactly `headers`
/// (which must include `host` and `x-amz-date`).
#[allow(clippy::too_many_arguments)]
fn authorization(
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
    amz_date: &str,
) -> String {
    let (creq, signed_headers) = canonical_request(method, path_and_query, headers, payload_hash);
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(creq.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    )
}

/// The canonical request text and the signed-headers list.
fn canonical_request(
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
) -> (String, String) {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    // Group by lower-cased name; repeated headers join with commas in the order given.
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        let value = collapse_spaces(value);
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    grouped.sort_by(|a, b| a.0.cmp(&b.0));
    let mut canonical_headers = String::new();
    for (name, values) in &grouped {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let signed: Vec<&str> = grouped.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    let creq = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
        method.to_ascii_uppercase(),
        canonical_uri(path),
        canonical_query(query),
    );
    (creq, signed)
}

/// Trims and collapses runs of spaces, as the canonical header value requires.
fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes `.`/`..` and empty segments (keeping a trailing slash), then encodes once more.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::from("/");
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    uri_encode(normalized.as_bytes(), true)
}

/// Sorted `name=value` pairs, each side decoded and re-encoded so two spellings sign alike.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// AWS `UriEncode`: unreserved characters stay, everything else is `%XX` in upper case.
fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| char::from(*c).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|c| char::from(*c).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// HMAC-SHA256 (RFC 2104) over the `sha2` crate.
fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let mut inner = Sha256::new();
    inner.update(k.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>());
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>());
    outer.update(inner);
    outer.finalize().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub use crate::time::amz_date;

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SUITE: &str =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ";
    /// 2015-08-30T12:36:00Z, the AWS test suite's clock.
    const SUITE_TIME: u64 = 1_440_938_160;

    fn suite(method: &str, pq: &str, headers: &[(&str, &str)], payload_hash: &str) -> String {
        let mut all = h(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        all.extend(h(headers));
        authorization(
            &example(),
            "us-east-1",
            "service",
            method,
            pq,
            &all,
            payload_hash,
            "20150830T123600Z",
        )
    }

    // Vectors from the AWS SigV4 test suite (aws-sig-v4-test-suite, as shipped in
    // awslabs/aws-c-auth tests/aws-signing-test-suite/v4 and botocore's aws4_testsuite).
    #[test]
    fn get_vanilla() {
        assert_eq!(
            suite("GET", "/", &[], EMPTY),
            format!("{SUITE}SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        assert_eq!(
            suite("GET", "/?Param2=value2&Param1=value1", &[], EMPTY),
            format!("{SUITE}SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        );
    }

    #[test]
    fn post_x_www_form_urlencoded() {
        let body_hash = hex(&Sha256::digest(b"Param1=value1"));
        assert_eq!(
            suite(
                "POST",
                "/",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                &body_hash
            ),
            format!("{SUITE}SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
        );
    }

    #[test]
    fn get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        assert_eq!(
            suite("GET", "/", &[("X-Amz-Security-Token", token)], EMPTY),
            format!("{SUITE}SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8")
        );
    }

    #[test]
    fn the_full_signer_matches_the_suite_vector_that_signs_the_body_hash() {
        // aws-c-auth's post-x-www-form-urlencoded header-signed-request.txt, which signs
        // x-amz-content-sha256 the way `sign` always does.
        let out = sign(
            &example(),
            "us-east-1",
            "service",
            "POST",
            "example.amazonaws.com",
            "/",
            &h(&[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", "13"),
            ]),
            b"Param1=value1",
            SUITE_TIME,
        );
        assert_eq!(
            out,
            h(&[
                ("x-amz-date", "20150830T123600Z"),
                ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
                ("authorization", &format!("{SUITE}SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b")),
            ])
        );
    }

    #[test]
    fn canonical_uri_double_encodes_and_normalizes_like_botocore() {
        assert_eq!(
            canonical_uri("/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
            "/model/us.anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/example space/"), "/example%20space/");
        assert_eq!(canonical_query("b=2&a=1&A=0&e"), "A=0&a=1&b=2&e=");
        assert_eq!(canonical_query("k=a%20b&j=a+b"), "j=a%2Bb&k=a%20b");
    }

    /// A Bedrock Converse call with a session token, checked against botocore 1.43
    /// (`SigV4Auth(Credentials(ak, sk, token), "bedrock", "us-east-1")` over the same
    /// `AWSRequest`, with the path as botocore's serializer renders the model id).
    #[test]
    fn signs_a_bedrock_converse_request_like_botocore() {
        let creds = AwsCredentials {
            session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN".into()),
            ..example()
        };
        let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
        let out = sign(
            &creds,
            "us-east-1",
            "bedrock",
            "POST",
            "bedrock-runtime.us-east-1.amazonaws.com",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            &h(&[("content-type", "application/json"), ("user-agent", "weir")]),
            body,
            1_700_000_000,
        );
        let get = |n: &str| out.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(
            get("x-amz-security-token"),
            Some("FwoGZXIvYXdzEXAMPLETOKEN")
        );
        assert_eq!(get("authorization"), Some(BOTOCORE_BEDROCK_AUTHZ));
    }

    const BOTOCORE_BEDROCK_AUTHZ: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=f71248086634d74fddc0924c407827e3a7a673e271cf20d6e0586bd344fd7fd0";

    #[test]
    fn dates_format_from_unix_seconds() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(SUITE_TIME), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
        // 2100 is not a leap year.
        assert_eq!(amz_date(4_107_542_399 + 1), "21000301T000000Z");
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Keys longer than a block are hashed first (RFC 4231 case 6).
        assert_eq!(
            hex(&hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let creds = AwsCredentials {
            session_token: Some("tok".into()),
            ..example()
        };
        let s = format!("{creds:?}");
        assert!(!s.contains("wJalr") && !s.contains("tok\""));
    }
}
