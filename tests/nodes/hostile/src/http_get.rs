//! A minimal blocking HTTP GET over wasi:http that follows redirects, each one a new request
//! the host checks against the node's permissions.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

pub fn get(url: &str, redirects_left: u32) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("bad url {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&Method::Get)
        .map_err(|()| "bad method".to_string())?;
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme".to_string())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "bad authority".to_string())?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "bad path".to_string())?;
    let pending =
        outgoing_handler::handle(request, None).map_err(|e| format!("GET {url}: {e:?}"))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(format!("GET {url}: {e:?}")),
        _ => return Err(format!("GET {url}: no response")),
    };
    let status = response.status();
    if (300..400).contains(&status) && redirects_left > 0 {
        let location = response.headers().get("location");
        let location = location
            .first()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .unwrap_or_default();
        return get(&location, redirects_left - 1);
    }
    let body = response.consume().map_err(|()| "no body".to_string())?;
    let stream = body.stream().map_err(|()| "no body stream".to_string())?;
    let mut bytes = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        bytes.extend(chunk);
    }
    Ok(format!("{status} {}", String::from_utf8_lossy(&bytes)))
}
