//! Spin's HTTP routing: exact routes beat wildcards (`/prefix/...`), the longest wildcard
//! prefix wins, matching is case-sensitive.

/// A route table entry.
#[derive(Debug, Clone)]
pub struct Route {
    /// The manifest pattern.
    pub pattern: String,
    /// Index of the component serving it.
    pub component: usize,
}

/// A matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Component index.
    pub component: usize,
    /// The pattern (`spin-matched-route`, `spin-raw-component-route`).
    pub pattern: String,
    /// The pattern without its wildcard (`spin-component-route`).
    pub component_route: String,
    /// The path after the route (`spin-path-info`).
    pub path_info: String,
}

/// Finds the route for `path` (no query).
pub fn find(routes: &[Route], path: &str) -> Option<Matched> {
    // `/probe/` and `//probe` reach the exact route `/probe`, as in Spin.
    let trimmed = path.trim_end_matches('/');
    let normalized = format!("/{}", trimmed.trim_start_matches('/'));
    let exact = routes
        .iter()
        .rev()
        .find(|r| !r.pattern.ends_with("/...") && r.pattern == normalized);
    if let Some(route) = exact {
        return Some(Matched {
            component: route.component,
            pattern: route.pattern.clone(),
            component_route: route.pattern.clone(),
            path_info: String::new(),
        });
    }
    routes
        .iter()
        .filter_map(|r| {
            let prefix = r.pattern.strip_suffix("/...")?;
            let rest = path.strip_prefix(prefix)?;
            (rest.is_empty() || rest.starts_with('/')).then_some((prefix.len(), r, rest))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, route, rest)| Matched {
            component: route.component,
            pattern: route.pattern.clone(),
            component_route: route.pattern.trim_end_matches("/...").to_string(),
            path_info: rest.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<Route> {
        ["/w/...", "/probe", "/w/exact", "/w/a/...", "/..."]
            .iter()
            .enumerate()
            .map(|(i, p)| Route {
                pattern: p.to_string(),
                component: i,
            })
            .collect()
    }

    #[test]
    fn precedence() {
        let routes = table();
        let c = |path: &str| find(&routes, path).map(|m| (m.component, m.path_info));
        assert_eq!(c("/probe"), Some((1, String::new())));
        assert_eq!(c("/probe/"), Some((1, String::new())));
        assert_eq!(c("//probe"), Some((1, String::new())));
        assert_eq!(c("/w/exact"), Some((2, String::new())));
        assert_eq!(c("/w/a/b"), Some((3, "/b".into())));
        assert_eq!(c("/w/x/y"), Some((0, "/x/y".into())));
        assert_eq!(c("/w"), Some((0, String::new())));
        assert_eq!(c("/wx"), Some((4, "/wx".into())));
        assert_eq!(c("/PROBE"), Some((4, "/PROBE".into())));
        assert_eq!(find(&routes[1..3], "/nothing"), None);
    }
}
