//! Spin's HTTP route matching: exact routes, `:param` segments and a trailing `/...` wildcard.
//!
//! Matching is by whole, undecoded path segments and case-sensitive. Among the routes that
//! match, the most specific wins segment by segment from the left (a literal beats a parameter,
//! which beats the wildcard); on a tie the route declared last wins, as in Spin.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// One parsed `route = "..."` of an HTTP trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

impl Route {
    pub fn parse(raw: &str) -> Self {
        let (base, wildcard) = match raw.strip_suffix("/...") {
            Some(base) => (base, true),
            None if raw == "..." => ("", true),
            None => (raw, false),
        };
        let segments = base
            .trim_start_matches('/')
            .trim_end_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(s.to_string()),
            })
            .collect();
        Self {
            raw: raw.to_string(),
            segments,
            wildcard,
        }
    }

    /// The route as declared (`spin-raw-component-route`, `spin-matched-route`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route without its wildcard (`spin-component-route`): `/api/cars/...` -> `/api/cars`.
    pub fn component_route(&self) -> String {
        if self.wildcard {
            self.raw
                .strip_suffix("/...")
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string()
        } else {
            self.raw.clone()
        }
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// Match `path` (no query).
    fn matches(&self, path: &str) -> Option<Matched> {
        if !path.starts_with('/') {
            return None;
        }
        let mut key = Vec::with_capacity(self.segments.len() + 1);
        let mut params = Vec::new();
        // `pos` is always at the '/' that opens the next path segment, or at the end.
        let mut pos = 0;
        for segment in &self.segments {
            if pos >= path.len() {
                return None;
            }
            let start = pos + 1;
            let end = path[start..].find('/').map_or(path.len(), |i| start + i);
            let head = &path[start..end];
            match segment {
                Segment::Literal(lit) if lit == head => key.push(3),
                Segment::Param(name) if !head.is_empty() => {
                    params.push((name.clone(), head.to_string()));
                    key.push(2);
                }
                _ => return None,
            }
            pos = end;
        }
        let rest = &path[pos..];
        if self.wildcard {
            key.push(0);
            Some(Matched {
                key,
                path_info: rest.to_string(),
                params,
            })
        } else if rest.is_empty() || rest == "/" {
            // A single trailing slash is ignored; anything more is another path.
            key.push(1);
            Some(Matched {
                key,
                path_info: String::new(),
                params,
            })
        } else {
            None
        }
    }
}

/// A route's match: its specificity key (compared left to right), path-info and parameters.
struct Matched {
    key: Vec<u8>,
    path_info: String,
    params: Vec<(String, String)>,
}

/// The outcome of routing a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub component: &'a str,
    pub route: &'a Route,
    pub path_info: String,
    pub params: Vec<(String, String)>,
}

/// The public routes of an application, in declaration order.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route; returns the component that previously owned the same route, if any.
    pub fn add(&mut self, route: &str, component: &str) -> Option<String> {
        let route = Route::parse(route);
        let previous = self
            .routes
            .iter()
            .find(|(r, _)| r.segments == route.segments && r.wildcard == route.wildcard)
            .map(|(_, c)| c.clone());
        self.routes.push((route, component.to_string()));
        previous
    }

    pub fn routes(&self) -> impl Iterator<Item = (&Route, &str)> {
        self.routes.iter().map(|(r, c)| (r, c.as_str()))
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let mut best: Option<(Vec<u8>, RouteMatch<'_>)> = None;
        for (route, component) in &self.routes {
            let Some(Matched {
                key,
                path_info,
                params,
            }) = route.matches(path)
            else {
                continue;
            };
            let better = match &best {
                None => true,
                // `>=`: on equal specificity the later declaration wins.
                Some((best_key, _)) => key.cmp(best_key) != Ordering::Less,
            };
            if better {
                best = Some((
                    key,
                    RouteMatch {
                        component,
                        route,
                        path_info,
                        params,
                    },
                ));
            }
        }
        best.map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let mut r = Router::new();
        for (route, c) in routes {
            r.add(route, c);
        }
        r
    }

    fn hit(r: &Router, path: &str) -> Option<(String, String)> {
        r.route(path)
            .map(|m| (m.component.to_string(), m.path_info))
    }

    #[test]
    fn wildcard_gives_path_info_and_component_route() {
        let r = router(&[("/api/cars/...", "cars")]);
        assert_eq!(
            hit(&r, "/api/cars/123/x"),
            Some(("cars".into(), "/123/x".into()))
        );
        assert_eq!(hit(&r, "/api/cars"), Some(("cars".into(), "".into())));
        assert_eq!(hit(&r, "/api/cars/"), Some(("cars".into(), "/".into())));
        assert_eq!(hit(&r, "/api/carsx"), None);
        assert_eq!(hit(&r, "/API/cars"), None);
        assert_eq!(hit(&r, "/api"), None);
        let m = r.route("/api/cars/1").unwrap();
        assert_eq!(m.route.component_route(), "/api/cars");
        assert_eq!(m.route.raw(), "/api/cars/...");
    }

    #[test]
    fn root_wildcard_matches_everything() {
        let r = router(&[("/...", "all")]);
        assert_eq!(hit(&r, "/"), Some(("all".into(), "/".into())));
        assert_eq!(hit(&r, "/a/b"), Some(("all".into(), "/a/b".into())));
        assert_eq!(r.route("/").unwrap().route.component_route(), "");
    }

    #[test]
    fn exact_beats_param_beats_wildcard() {
        let r = router(&[("/a/...", "wild"), ("/a/:x", "param"), ("/a/b", "exact")]);
        assert_eq!(hit(&r, "/a/b").unwrap().0, "exact");
        assert_eq!(hit(&r, "/a/c").unwrap().0, "param");
        assert_eq!(hit(&r, "/a/c/d").unwrap().0, "wild");
    }

    #[test]
    fn specificity_is_by_segment_from_the_left() {
        let r = router(&[("/a/:x/...", "param-wild"), ("/a/b/c", "exact")]);
        assert_eq!(hit(&r, "/a/b/c").unwrap().0, "exact");
        assert_eq!(hit(&r, "/a/z/c").unwrap().0, "param-wild");
        let r = router(&[("/w/:x/z", "param"), ("/w/y/...", "wild")]);
        assert_eq!(hit(&r, "/w/y/z").unwrap().0, "wild");
        let r = router(&[("/api/...", "short"), ("/api/cars/...", "long")]);
        assert_eq!(hit(&r, "/api/cars/1").unwrap().0, "long");
        assert_eq!(hit(&r, "/api/orders/1").unwrap().0, "short");
    }

    #[test]
    fn params_are_captured_and_trailing_slash_is_ignored() {
        let r = router(&[("/items/:id/parts/:part", "items"), ("/exact", "exact")]);
        let m = r.route("/items/7/parts/door").unwrap();
        assert_eq!(
            m.params,
            vec![("id".into(), "7".into()), ("part".into(), "door".into())]
        );
        assert_eq!(m.path_info, "");
        assert_eq!(hit(&r, "/exact/").unwrap().0, "exact");
        assert_eq!(hit(&r, "/exact//"), None);
        assert_eq!(hit(&r, "/items/7/parts"), None);
        assert_eq!(hit(&r, "/items//parts/door"), None);
    }

    #[test]
    fn later_duplicate_wins_and_is_reported() {
        let mut r = Router::new();
        assert_eq!(r.add("/dup", "first"), None);
        assert_eq!(r.add("/dup", "second"), Some("first".into()));
        assert_eq!(hit(&r, "/dup").unwrap().0, "second");
    }

    #[test]
    fn undecoded_paths_are_kept() {
        let r = router(&[("/files/...", "files")]);
        assert_eq!(hit(&r, "/files/a%2Fb//c").unwrap().1, "/a%2Fb//c");
    }
}
