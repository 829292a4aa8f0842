//! The `spin-*` request headers a guest receives, set exactly as Spin sets them.
//!
//! Client-sent `spin-*` headers are removed first, so a client cannot spoof
//! `spin-client-addr` or `spin-path-match-*` (Spin passes them through; we do not).

use crate::routes::RouteMatch;
use http::{HeaderMap, HeaderName, HeaderValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpinRequestInfo {
    pub full_url: String,
    pub path_info: String,
    pub matched_route: String,
    pub component_route: String,
    pub raw_component_route: String,
    pub client_addr: String,
    pub params: Vec<(String, String)>,
}

impl SpinRequestInfo {
    pub fn inbound(m: &RouteMatch<'_>, full_url: String, client_addr: String) -> Self {
        Self {
            full_url,
            path_info: m.path_info.clone(),
            matched_route: m.route.raw().to_string(),
            component_route: m.route.component_route(),
            raw_component_route: m.route.raw().to_string(),
            client_addr,
            params: m.params.clone(),
        }
    }

    /// A chained call: the whole path is path-info and the route is the root wildcard.
    pub fn chained(uri: &http::Uri) -> Self {
        Self {
            full_url: uri.to_string(),
            path_info: uri.path().to_string(),
            matched_route: "/...".into(),
            component_route: String::new(),
            raw_component_route: "/...".into(),
            client_addr: "0.0.0.0:0".into(),
            params: Vec::new(),
        }
    }
}

/// Removes client `spin-*` headers and adds the host's.
pub fn apply(headers: &mut HeaderMap, info: &SpinRequestInfo) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(&name);
    }
    let mut set = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    };
    set("spin-full-url", &info.full_url);
    set("spin-path-info", &info.path_info);
    set("spin-matched-route", &info.matched_route);
    set("spin-component-route", &info.component_route);
    set("spin-raw-component-route", &info.raw_component_route);
    set("spin-base-path", "/");
    set("spin-client-addr", &info.client_addr);
    for (name, value) in &info.params {
        set(
            &format!("spin-path-match-{}", name.to_ascii_lowercase()),
            value,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Router;

    #[test]
    fn inbound_headers_match_spin_and_drop_spoofed_ones() {
        let mut router = Router::new();
        router.add("/items/:id/parts/:part", "items");
        let m = router.route("/items/7/parts/door").unwrap();
        let info = SpinRequestInfo::inbound(
            &m,
            "http://127.0.0.1:3000/items/7/parts/door".into(),
            "127.0.0.1:5000".into(),
        );
        let mut headers = HeaderMap::new();
        headers.insert("spin-client-addr", HeaderValue::from_static("1.2.3.4:1"));
        headers.insert("spin-path-match-evil", HeaderValue::from_static("x"));
        apply(&mut headers, &info);
        assert_eq!(headers["spin-client-addr"], "127.0.0.1:5000");
        assert!(headers.get("spin-path-match-evil").is_none());
        assert_eq!(headers["spin-path-match-id"], "7");
        assert_eq!(headers["spin-path-match-part"], "door");
        assert_eq!(headers["spin-path-info"], "");
        assert_eq!(headers["spin-component-route"], "/items/:id/parts/:part");
        assert_eq!(headers["spin-base-path"], "/");
    }

    #[test]
    fn chained_requests_see_the_whole_path_as_path_info() {
        let uri: http::Uri = "http://car-service.spin.internal/api/cars/1?x=2"
            .parse()
            .unwrap();
        let info = SpinRequestInfo::chained(&uri);
        assert_eq!(info.path_info, "/api/cars/1");
        assert_eq!(info.matched_route, "/...");
        assert_eq!(info.component_route, "");
        assert_eq!(info.client_addr, "0.0.0.0:0");
        assert_eq!(
            info.full_url,
            "http://car-service.spin.internal/api/cars/1?x=2"
        );
    }
}
