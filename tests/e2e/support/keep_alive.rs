//! Reading the requests of one keep-alive HTTP/1.1 connection by hand, for the tests' paced
//! servers that must control when each byte of their answer leaves.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;

/// The body of the next request on the connection (its headers skipped, `content-length`
/// read); `None` when the client closed it.
pub fn next_request_body(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}
