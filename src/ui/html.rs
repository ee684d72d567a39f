//! HTML building blocks: escaping (every text an agent or a plan wrote goes through [`esc`]),
//! links that work both served and as static files, and the page frame.

use std::fmt::Write;

pub use crate::render::esc;

/// `url` when it is an `http(s)` address (a pull request's link), else `None`: never a
/// `javascript:` or `data:` link from a record.
pub fn safe_url(url: &str) -> Option<&str> {
    let lower = url.trim().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url.trim())
}

/// A path segment (a workflow or task id) percent-encoded for a link.
pub fn seg(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// How pages link to each other: served under `/ui`, or as files of a static site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Links {
    /// Served by `plancd serve`: absolute paths, live updates on.
    Served,
    /// Files written by `plancd status -o html`: relative paths from a page `depth` folders
    /// below the site's root.
    Static {
        /// How many folders below the root the page is.
        depth: usize,
    },
}

impl Links {
    fn root(&self) -> String {
        match self {
            Links::Served => "/ui/".into(),
            Links::Static { depth } => "../".repeat(*depth),
        }
    }

    fn page(&self, path: &str) -> String {
        match self {
            Links::Served => format!("/ui/{path}"),
            Links::Static { .. } => format!("{}{path}/index.html", self.root()),
        }
    }

    /// The overview.
    pub fn overview(&self) -> String {
        match self {
            Links::Served => "/ui".into(),
            Links::Static { .. } => format!("{}index.html", self.root()),
        }
    }

    /// A workflow's page.
    pub fn workflow(&self, wf: &str) -> String {
        self.page(&format!("workflows/{}", seg(wf)))
    }

    /// A task's page.
    pub fn task(&self, wf: &str, task: &str) -> String {
        self.page(&format!("workflows/{}/tasks/{}", seg(wf), seg(task)))
    }

    /// A file of the assets (style.css, app.js).
    pub fn asset(&self, file: &str) -> String {
        format!("{}assets/{file}", self.root())
    }

    /// Whether pages update themselves (served pages do; files do not).
    pub fn live(&self) -> bool {
        *self == Links::Served
    }
}

/// A whole page: the frame around `main`. `scope` says what the live updates concern: `""`
/// for every workflow, a workflow id, or `WF/TASK`.
pub fn page(links: &Links, title: &str, crumbs: &[(String, String)], scope: &str, main: &str, aside: &str) -> String {
    let mut nav = format!("<a href=\"{}\">plancd</a>", esc(&links.overview()));
    for (href, name) in crumbs {
        let _ = write!(nav, " / <a href=\"{}\">{}</a>", esc(href), esc(name));
    }
    let live = if links.live() { format!(" data-live=\"{}\" data-events=\"/api/v1/events\"", esc(scope)) } else { String::new() };
    let script = if links.live() { format!("<script src=\"{}\" defer></script>", esc(&links.asset("app.js"))) } else { String::new() };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · plancd</title><link rel=\"stylesheet\" href=\"{}\">{script}</head>\n<body><header><nav>{nav}</nav>\
         <span id=\"live\" class=\"live\"></span></header>\n<main{live}>\n{main}</main>\n{aside}</body></html>\n",
        esc(title),
        esc(&links.asset("style.css")),
    )
}

/// A phase as a coloured badge.
pub fn badge(phase: &str) -> String {
    format!("<span class=\"badge phase-{}\">{}</span>", esc(&phase.to_ascii_lowercase()), esc(phase))
}

/// A table with `head` and `rows` (cells already HTML).
pub fn table(class: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("<table class=\"{class}\"><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for cell in r {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_text_cannot_open_an_element_or_leave_an_attribute() {
        let evil = r#"<script>alert(1)</script><img src=x onerror="alert('x')">&"#;
        let out = esc(evil);
        assert!(!out.contains('<') && !out.contains('>') && !out.contains('"') && !out.contains('\''), "{out}");
        assert_eq!(esc("a<b & 'c'"), "a&lt;b &amp; &#39;c&#39;");
    }

    #[test]
    fn only_web_addresses_become_links() {
        assert_eq!(safe_url("https://github.com/o/r/pull/1"), Some("https://github.com/o/r/pull/1"));
        assert_eq!(safe_url(" javascript:alert(1)"), None);
        assert_eq!(safe_url("data:text/html,x"), None);
    }

    #[test]
    fn links_work_served_and_as_files() {
        assert_eq!(Links::Served.task("w f", "t/1"), "/ui/workflows/w%20f/tasks/t%2F1");
        assert_eq!(Links::Served.asset("app.js"), "/ui/assets/app.js");
        let file = Links::Static { depth: 4 };
        assert_eq!(file.workflow("wf"), "../../../../workflows/wf/index.html");
        assert_eq!(file.overview(), "../../../../index.html");
        assert_eq!(Links::Static { depth: 0 }.asset("style.css"), "assets/style.css");
    }
}
