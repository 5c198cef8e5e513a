//! HTTP/1.1 responses read off a raw socket, for the actors that speak HTTP
//! by hand (slow readers, event subscribers): each complete response with
//! its status and body, so their requests are recorded like any other.

/// One complete response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// Its status code.
    pub status: u16,
    /// Its body, de-chunked.
    pub body: Vec<u8>,
}

/// What can be read from the start of a buffer.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// A complete response and how many bytes it took.
    Complete(Response, usize),
    /// Only a head so far, with its status.
    Head(u16),
    /// Not even a complete head.
    Partial,
    /// Not HTTP.
    Invalid,
}

/// Parses the first response in `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut headers);
    let start = match head.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Invalid,
    };
    let status = head.code.unwrap_or(0);
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let rest = &buf[start..];
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        (rest.len() >= len).then(|| (rest[..len].to_vec(), len))
    };
    match body {
        Some((body, used)) => Parsed::Complete(Response { status, body }, start + used),
        None => Parsed::Head(status),
    }
}

/// A chunked body, if complete: the data and the bytes it took.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&buf[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        let data = line_end + 2;
        if size == 0 {
            // The last chunk, then an empty trailer line.
            let end = data + buf.get(data..)?.windows(2).position(|w| w == b"\r\n")? + 2;
            return Some((body, end));
        }
        body.extend_from_slice(buf.get(data..data + size)?);
        at = data + size + 2;
        if buf.len() < at {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_with_a_length_and_chunked_ones_are_read_in_order() {
        let mut buf = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        buf.extend_from_slice(
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        );
        let Parsed::Complete(first, used) = parse(&buf) else { panic!("a complete first response") };
        assert_eq!((first.status, first.body.as_slice()), (200, &b"{}"[..]));
        let Parsed::Complete(second, rest) = parse(&buf[used..]) else {
            panic!("a complete second response")
        };
        assert_eq!((second.status, second.body.as_slice()), (503, &b"abc"[..]));
        assert_eq!(used + rest, buf.len());
    }

    #[test]
    fn an_unfinished_response_is_a_head_or_partial() {
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab"), Parsed::Head(200));
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nab"), Parsed::Head(200));
        assert_eq!(parse(b"HTTP/1.1 200"), Parsed::Partial);
        assert_eq!(parse(b"garbage\r\n\r\n"), Parsed::Invalid);
    }
}
