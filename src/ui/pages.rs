//! The dashboard's pages, rendered on the server from the data model: the overview, a
//! workflow (counts, graph, critical path, tasks with why they wait, stacked pull requests)
//! and a task (attempts, branch todos, the tests that decided and their output, logs, the model
//! transcript, result and provenance). The renderers are plain functions of the data, shared by
//! `plancd serve` and `plancd status -o html`.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::html::{Links, badge, esc, page, safe_url, table};
use super::model::{self, Overview, PageQuery, TaskView, UiError, WorkflowData, WorkflowView};
use super::{Dashboard, blocking};
use crate::ops::status::{human_cost, human_duration};
use crate::render::{MAX_NODES, Node, Workflow, svg};
use crate::state::TaskKey;

/// The stylesheet.
pub const STYLE_CSS: &str = include_str!("assets/style.css");
/// The script of live updates.
pub const APP_JS: &str = include_str!("assets/app.js");

/// `GET /ui/assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `GET /ui`.
pub async fn overview(State(d): State<Arc<Dashboard>>) -> Response {
    let dash = d.clone();
    match blocking(move || model::overview(&dash.sources, &dash.env)).await {
        Ok(o) => Html(overview_html(&o, &Links::Served, d.settings.actions)).into_response(),
        Err(e) => error_page(&e),
    }
}

/// `GET /ui/workflows/{wf}?limit=&after=`.
pub async fn workflow(State(d): State<Arc<Dashboard>>, Path(wf): Path<String>, Query(q): Query<PageQuery>) -> Response {
    let dash = d.clone();
    let id = wf.clone();
    let source = q.source.clone();
    let found = blocking(move || model::find_workflow(&dash.sources, &dash.env, &id, source.as_deref())).await;
    match found {
        Ok((_, data)) => {
            let w = data.workflows.iter().find(|w| w.summary.id == wf).expect("found above");
            Html(workflow_html(w, &w.view(data.plan_commit.clone(), &q), &Links::Served, d.settings.actions)).into_response()
        }
        Err(e) => error_page(&e),
    }
}

/// `GET /ui/workflows/{wf}/tasks/{task}`.
pub async fn task(State(d): State<Arc<Dashboard>>, Path((wf, task)): Path<(String, String)>) -> Response {
    let dash = d.clone();
    let view = blocking(move || {
        let (source, data) = model::find_workflow(&dash.sources, &dash.env, &wf, None)?;
        model::task_view(&source, &data, &TaskKey::new(&wf, &task))
    })
    .await;
    match view {
        Ok(v) => Html(task_html(&v, &Links::Served, d.settings.actions)).into_response(),
        Err(e) => error_page(&e),
    }
}

fn error_page(e: &UiError) -> Response {
    let code = match e {
        UiError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let main = format!("<h1>{}</h1><p>{}</p>", code.as_u16(), esc(&e.to_string()));
    (code, Html(page(&Links::Served, "error", &[], "", &main, ""))).into_response()
}

fn money(usd: f64) -> String {
    format!("${usd:.4}")
}

/// The overview page: each source with its workflows' counts (and, with `actions`, a button
/// that starts a pass of every source).
pub fn overview_html(o: &Overview, links: &Links, actions: bool) -> String {
    let mut main = String::from("<h1>Workflows</h1>\n");
    for s in &o.sources {
        let _ = write!(main, "<section class=\"source\" data-source=\"{}\"><h2>{}</h2><p class=\"meta\">", esc(&s.name), esc(&s.name));
        if let Some(c) = &s.plan_commit {
            let _ = write!(main, "watched commit <code>{}</code>", esc(&c[..c.len().min(12)]));
        }
        match &s.last_pass {
            Some(p) => {
                let _ = write!(
                    main,
                    " · last pass {} ({}, {})",
                    esc(&p.ended_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()),
                    esc(&p.outcome),
                    human_duration(p.seconds)
                );
            }
            None => main.push_str(" · no pass yet"),
        }
        main.push_str("</p>\n");
        if let Some(e) = &s.plans_error {
            let _ = writeln!(main, "<p class=\"error\">the plans could not be read: {}</p>", esc(e));
        }
        if s.workflows.is_empty() {
            main.push_str("<p>no workflows yet</p></section>\n");
            continue;
        }
        main.push_str(
            "<table class=\"overview\"><thead><tr><th>Workflow</th><th>Satisfied</th><th>Running</th><th>Waiting</th>\
             <th>For a person</th><th>Escalated</th><th>Spend / budget</th><th>State</th></tr></thead><tbody>\n",
        );
        for w in &s.workflows {
            let title = w.title.as_deref().map(|t| format!("<div class=\"sub\">{}</div>", esc(t))).unwrap_or_default();
            let budget = w.budget_usd.map_or_else(|| "no budget".to_owned(), money);
            let over = if w.budget_usd.is_some_and(|b| w.spend_usd > b) { " over" } else { "" };
            let state = match (&w.stalled, w.suspended) {
                (Some(why), _) => format!("<span class=\"badge phase-failed\" title=\"{}\">Stalled</span>", esc(why)),
                (None, true) => badge("Suspended"),
                (None, false) => "active".into(),
            };
            let _ = writeln!(
                main,
                "<tr data-workflow=\"{id}\"><td><a href=\"{href}\">{id}</a>{title}</td>\
                 <td class=\"n-satisfied\"><meter min=\"0\" max=\"{total}\" value=\"{sat}\"></meter> <span class=\"count\">{sat}/{total}</span></td>\
                 <td class=\"n-running\">{run}</td><td class=\"n-waiting\">{wait}</td><td class=\"n-person\">{person}</td>\
                 <td class=\"n-escalated\">{esc_n}</td><td class=\"spend{over}\">{spend} / {budget}</td><td>{state}</td></tr>",
                id = esc(&w.id),
                href = esc(&links.workflow(&w.id)),
                total = w.tasks,
                sat = w.satisfied,
                run = w.running,
                wait = w.waiting,
                person = w.needs_person,
                esc_n = w.escalated,
                spend = money(w.spend_usd),
            );
        }
        main.push_str("</tbody></table></section>\n");
    }
    let aside = if actions && links.live() {
        format!("<aside class=\"actions\"><h2>Actions</h2>{}</aside>\n", action_form("/api/v1/reconcile", "Reconcile now", false))
    } else {
        String::new()
    };
    page(links, "Workflows", &[], "", &main, &aside)
}

/// The graph to draw: every task and branch todo of the workflow.
pub fn graph(id: &str, w: &WorkflowData) -> Workflow {
    let nodes = w
        .rows
        .iter()
        .map(|r| Node {
            id: r.task.clone(),
            role: r.role.clone(),
            phase: Some(r.phase.clone()),
            after: match &r.parent {
                Some(p) => vec![p.clone()],
                None => w.dependencies.get(&r.task).cloned().unwrap_or_default(),
            },
            branch: r.parent.is_some(),
            critical: w.critical_path.contains(&r.task),
            ..Node::default()
        })
        .collect();
    Workflow { id: id.to_owned(), title: None, nodes }
}

/// A workflow's page.
pub fn workflow_html(w: &WorkflowData, v: &WorkflowView, links: &Links, actions: bool) -> String {
    let s = &v.summary;
    let mut main = format!("<h1>{}</h1>\n", esc(&s.id));
    if let Some(t) = &s.title {
        let _ = writeln!(main, "<p class=\"sub\">{}</p>", esc(t));
    }
    let _ = writeln!(
        main,
        "<p class=\"counts\" data-workflow=\"{}\"><b>{}/{}</b> satisfied · {} running · {} waiting · {} for a person · {} escalated · {} branch todo(s) · {} spent{}{}</p>",
        esc(&s.id),
        s.satisfied,
        s.tasks,
        s.running,
        s.waiting,
        s.needs_person,
        s.escalated,
        s.branch_todos,
        money(s.spend_usd),
        s.budget_usd.map(|b| format!(" of {}", money(b))).unwrap_or_default(),
        if s.suspended { " · <b>suspended</b>" } else { "" }
    );
    if let Some(st) = &w.stalled {
        let _ = writeln!(
            main,
            "<div class=\"error\"><p>Stalled ({}): nothing of it runs until the plan is fixed</p><pre>",
            esc(st.reason.reason())
        );
        for d in &st.plan.diagnostics {
            let _ = writeln!(main, "{}", esc(&d.to_string()));
        }
        main.push_str("</pre></div>\n");
    }
    main.push_str("<h2>Graph</h2>\n");
    if w.rows.len() <= MAX_NODES {
        let _ = writeln!(main, "<div class=\"dagbox\">{}</div>", svg(&graph(&s.id, w), &|t| links.task(&s.id, t)));
    } else {
        let _ = writeln!(main, "<p>{} tasks: too many to draw; the table lists them.</p>", w.rows.len());
    }
    if !v.critical_path.is_empty() {
        let path: Vec<String> =
            v.critical_path.iter().map(|t| format!("<a href=\"{}\">{}</a>", esc(&links.task(&s.id, t)), esc(t))).collect();
        let _ = writeln!(main, "<p class=\"critical\">Critical path: {}</p>", path.join(" → "));
    }
    let _ = writeln!(main, "<h2>Tasks</h2>");
    let rows: Vec<Vec<String>> = v
        .tasks
        .iter()
        .map(|t| {
            let r = &t.row;
            let name = match &r.parent {
                Some(_) => format!("<span class=\"branch\">↳ <a href=\"{}\">{}</a></span>", esc(&links.task(&s.id, &r.task)), esc(&r.task)),
                None => format!("<a href=\"{}\">{}</a>", esc(&links.task(&s.id, &r.task)), esc(&r.task)),
            };
            let why = match (&r.why, r.message.is_empty()) {
                (Some(w), _) => w.clone(),
                (None, false) if r.phase != "Succeeded" => r.message.lines().next().unwrap_or_default().to_owned(),
                _ => String::new(),
            };
            let result = match (&r.pull_request, &r.result_tag, &r.result_branch) {
                (Some(pr), _, _) if safe_url(pr).is_some() => format!("<a href=\"{}\">pull request</a>", esc(pr)),
                (_, Some(tag), _) => format!("<code>{}</code>", esc(tag)),
                (_, None, Some(b)) => format!("<code>{}</code>", esc(b)),
                _ => "-".into(),
            };
            vec![
                name,
                esc(r.role.as_deref().unwrap_or("-")),
                badge(&r.phase),
                if r.attempt == 0 { "-".into() } else { r.attempt.to_string() },
                r.duration_seconds.map_or_else(|| "-".into(), human_duration),
                format!("<span class=\"why standing-{:?}\">{}</span>", t.standing, esc(&why)),
                result,
                r.cost.as_ref().map_or_else(|| "-".into(), human_cost),
            ]
        })
        .collect();
    main.push_str(&table("tasks", &["Task", "Role", "Phase", "Attempt", "Duration", "Why", "Result", "Cost"], &rows));
    if let Some(next) = &v.next {
        let href = match links {
            Links::Served => format!("{}?after={}", links.workflow(&s.id), super::html::seg(next)),
            Links::Static { .. } => String::new(),
        };
        if !href.is_empty() {
            let _ = writeln!(main, "<p><a class=\"next\" href=\"{}\">next page</a> ({} tasks in all)</p>", esc(&href), v.total);
        }
    }
    if !v.pull_requests.is_empty() {
        main.push_str("<h2>Stacked results, in merge order</h2>\n<ol class=\"prs\">\n");
        for pr in &v.pull_requests {
            let link = pr
                .pull_request
                .as_deref()
                .and_then(safe_url)
                .map(|u| format!(" — <a href=\"{}\">pull request</a>", esc(u)))
                .unwrap_or_default();
            let on = if pr.depends_on.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"sub\">on {}</span>", esc(&pr.depends_on.join(", ")))
            };
            let _ = writeln!(main, "<li><b>{}</b> <code>{}</code>{link}{on}</li>", esc(&pr.task), esc(&pr.branch));
        }
        main.push_str("</ol>\n");
    }
    let aside = if actions && links.live() {
        let op = if s.suspended { "resume" } else { "suspend" };
        format!(
            "<aside class=\"actions\"><h2>Actions</h2>{}</aside>\n",
            action_form(
                &format!("/api/v1/workflows/{}/{op}", super::html::seg(&s.id)),
                &format!("{}{}", &op[..1].to_uppercase(), &op[1..]),
                false
            )
        )
    } else {
        String::new()
    };
    let crumbs = [(links.workflow(&s.id), s.id.clone())];
    page(links, &s.id, &crumbs, &s.id, &main, &aside)
}

/// A form that posts an operation with the token (and, for retry, instructions).
fn action_form(path: &str, label: &str, instructions: bool) -> String {
    let text = if instructions { "<label>Instructions <textarea name=\"instructions\" rows=\"3\"></textarea></label>" } else { "" };
    format!(
        "<form method=\"post\" action=\"{}\" class=\"op\" data-op=\"{}\">{text}<label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\"></label>\
         <label>Your name <input type=\"text\" name=\"by\"></label><button type=\"submit\">{}</button></form>",
        esc(path),
        esc(&label.to_ascii_lowercase()),
        esc(label)
    )
}

fn kv(main: &mut String, name: &str, value_html: &str) {
    let _ = writeln!(main, "<tr><th>{}</th><td>{value_html}</td></tr>", esc(name));
}

/// A task's page.
pub fn task_html(v: &TaskView, links: &Links, actions: bool) -> String {
    let d = &v.description;
    let mut main = format!("<h1>{}/{}</h1>\n", esc(&d.workflow), esc(&d.task));
    if let Some(t) = &d.title {
        let _ = writeln!(main, "<p class=\"sub\">{}</p>", esc(t));
    }
    main.push_str("<table class=\"kv\">\n");
    kv(
        &mut main,
        "Phase",
        &format!(
            "<span id=\"phase\" data-phase=\"{}\">{}</span>{}",
            esc(d.phase.as_str()),
            badge(d.phase.as_str()),
            d.reason.as_ref().filter(|r| r.as_str() != d.phase.as_str()).map(|r| format!(" ({})", esc(r.as_str()))).unwrap_or_default()
        ),
    );
    kv(&mut main, "Role", &esc(d.role.as_deref().unwrap_or("-")));
    if let Some(p) = &d.parent {
        kv(&mut main, "Branch todo of", &format!("<a href=\"{}\">{}</a>", esc(&links.task(&d.workflow, p)), esc(p)));
    }
    if !v.dependencies.is_empty() {
        let deps: Vec<String> =
            v.dependencies.iter().map(|t| format!("<a href=\"{}\">{}</a>", esc(&links.task(&d.workflow, t)), esc(t))).collect();
        kv(&mut main, "Depends on", &deps.join(", "));
    }
    if !d.message.is_empty() {
        kv(&mut main, "Message", &format!("<span class=\"msg\">{}</span>", esc(&d.message)));
    }
    if let Some(n) = &d.next {
        kv(&mut main, "Next", &esc(n));
    }
    let spec = match (&d.spec.recorded, d.spec.matches) {
        (Some(r), true) => format!("<code>{}</code> (the plan's current spec)", esc(&r[..r.len().min(12)])),
        (Some(r), false) => {
            format!("<code>{}</code> — {}", esc(&r[..r.len().min(12)]), esc(d.spec.why.as_deref().unwrap_or("differs from the plan's")))
        }
        (None, _) => esc(d.spec.why.as_deref().unwrap_or("-")),
    };
    kv(&mut main, "Spec hash", &spec);
    let limit = d.max_attempts.map(|m| format!(" of {m}")).unwrap_or_default();
    kv(&mut main, "Attempts", &format!("{}{limit} since the last retry or spec change", d.attempts_used));
    if let Some(c) = &d.cost {
        kv(&mut main, "Cost", &esc(&format!("{} in, {} out tokens, {}", c.input_tokens, c.output_tokens, c.dollars())));
    }
    if let Some(r) = &d.review {
        kv(&mut main, "Review", &esc(&format!("{} asked: {}", r.by, r.instructions)));
    }
    main.push_str("</table>\n");
    attempts_html(&mut main, v);
    branches_html(&mut main, v, links);
    decided_html(&mut main, v);
    result_html(&mut main, v);
    quality_html(&mut main, v);
    transcript_html(&mut main, v);
    if !v.logs.is_empty() {
        let _ = writeln!(main, "<h2>Logs of attempt {}</h2>", v.logs_attempt.unwrap_or(0));
        for f in &v.logs {
            let _ = writeln!(
                main,
                "<details class=\"log\" data-file=\"{}\"><summary>{} ({} bytes)</summary><pre>{}</pre></details>",
                esc(&f.name),
                esc(&f.name),
                f.bytes,
                esc(&f.tail)
            );
        }
    }
    if !d.events.is_empty() {
        main.push_str("<h2>Events</h2>\n");
        let rows: Vec<Vec<String>> = d
            .events
            .iter()
            .map(|e| {
                vec![
                    esc(&e.time.strftime("%Y-%m-%d %H:%M:%S").to_string()),
                    esc(&e.task),
                    format!("{} → {}", esc(e.from.as_str()), esc(e.phase.as_str())),
                    esc(e.reason.as_ref().map(|r| r.as_str()).unwrap_or("")),
                    esc(e.message.lines().next().unwrap_or_default()),
                    esc(e.by.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        main.push_str(&table("events", &["Time", "Task", "Change", "Reason", "Message", "By"], &rows));
    }
    let aside = if actions && links.live() {
        let base = format!("/api/v1/workflows/{}/tasks/{}", super::html::seg(&d.workflow), super::html::seg(&d.task));
        let mut forms = String::new();
        if d.phase == crate::state::Phase::NeedsApproval || d.next.as_deref().is_some_and(|n| n.starts_with("needs approval")) {
            forms.push_str(&action_form(&format!("{base}/approve"), "Approve", false));
        }
        forms.push_str(&action_form(&format!("{base}/retry"), "Retry", true));
        format!("<aside class=\"actions\"><h2>Actions</h2>{forms}</aside>\n")
    } else {
        String::new()
    };
    let crumbs = [(links.workflow(&d.workflow), d.workflow.clone()), (links.task(&d.workflow, &d.task), d.task.clone())];
    page(links, &format!("{}/{}", d.workflow, d.task), &crumbs, &format!("{}/{}", d.workflow, d.task), &main, &aside)
}

fn attempts_html(main: &mut String, v: &TaskView) {
    if v.description.attempts.is_empty() {
        return;
    }
    main.push_str("<h2>Attempts</h2>\n");
    let rows: Vec<Vec<String>> = v
        .description
        .attempts
        .iter()
        .map(|a| {
            let way: Vec<&str> = a.phases.iter().map(|p| p.as_str()).collect();
            vec![
                a.attempt.to_string(),
                esc(&way.join(" → ")),
                esc(&a.failure_type.as_ref().map(ToString::to_string).unwrap_or_default()),
                a.duration_seconds.map_or_else(|| "-".into(), human_duration),
                a.tests.as_ref().map_or_else(|| "-".into(), |t| format!("{}/{} passed", t.passed, t.passed + t.failed + t.errors)),
                esc(a.message.lines().next().unwrap_or_default()),
            ]
        })
        .collect();
    main.push_str(&table("attempts", &["#", "Phases", "Failure", "Took", "Tests", "Message"], &rows));
}

fn branches_html(main: &mut String, v: &TaskView, links: &Links) {
    let d = &v.description;
    if d.branch_todos.is_empty() {
        return;
    }
    main.push_str("<h2>Branch todos</h2>\n<ul class=\"tree\">\n");
    for b in &d.branch_todos {
        let _ = writeln!(
            main,
            "<li class=\"depth-{}\"><a href=\"{}\">{}</a> {} <span class=\"sub\">{} · [{}] from attempt {} · attempt {}/{}</span>{}<pre class=\"evidence\">{}</pre></li>",
            b.depth.min(5),
            esc(&links.task(&d.workflow, &b.id)),
            esc(&b.id),
            badge(b.phase.as_str()),
            esc(&b.role),
            esc(&b.failure_type.to_string()),
            b.parent_attempt,
            b.attempts,
            b.max_attempts,
            if b.message.is_empty() { String::new() } else { format!("<div class=\"msg\">{}</div>", esc(&b.message)) },
            esc(&model::clip(&b.evidence, 4000)),
        );
    }
    main.push_str("</ul>\n");
}

fn decided_html(main: &mut String, v: &TaskView) {
    if let Some(dec) = &v.description.decided_by {
        let _ = writeln!(main, "<h2>Tests that decided <span class=\"sub\">({} attempt {})</span></h2>", esc(&dec.task), dec.attempt);
        let rows: Vec<Vec<String>> = dec
            .tests
            .iter()
            .map(|t| {
                let verdict = if t.passed {
                    "passed"
                } else if t.timed_out {
                    "timed out"
                } else {
                    "failed"
                };
                vec![
                    format!("<span class=\"verdict {}\">{verdict}</span>", if t.passed { "ok" } else { "bad" }),
                    format!("<code>{}</code>", esc(&t.cmd)),
                    t.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
                    human_duration(t.duration_seconds),
                ]
            })
            .collect();
        main.push_str(&table("tests", &["Verdict", "Command", "Exit", "Took"], &rows));
        if let Some(t) = &dec.triage {
            let _ = writeln!(main, "<p class=\"triage\">triage: <b>{}</b> — {}</p>", esc(&t.failure_type.to_string()), esc(&t.summary));
            if !t.evidence.is_empty() {
                let _ = writeln!(main, "<pre class=\"evidence\">{}</pre>", esc(&t.evidence.join("\n")));
            }
        }
    }
    if let Some(out) = &v.test_output {
        let _ = writeln!(main, "<h3>Test output</h3><pre id=\"test-output\">{}</pre>", esc(out));
    }
}

fn result_html(main: &mut String, v: &TaskView) {
    let Some(r) = &v.description.result else { return };
    main.push_str("<h2>Result</h2>\n<table class=\"kv\">\n");
    kv(main, "Branch", &format!("<code>{}</code>", esc(&r.branch)));
    if let Some(tag) = &r.tag {
        kv(main, "Tag", &format!("<code>{}</code>", esc(tag)));
    }
    kv(main, "Commit", &format!("<code>{}</code>", esc(&r.commit)));
    if !r.files.is_empty() {
        kv(main, "Files", &esc(&r.files.join(", ")));
    }
    let pr = match r.pull_request.as_deref() {
        Some(u) => match safe_url(u) {
            Some(u) => format!("<a href=\"{}\">{}</a>", esc(u), esc(u)),
            None => esc(u),
        },
        None => "-".into(),
    };
    kv(main, "Pull request", &pr);
    if let Some(a) = &r.accepted_in {
        kv(main, "Accepted in", &esc(&format!("{} attempt {}", a.task_id, a.attempt)));
    }
    main.push_str("</table>\n");
    if !v.provenance.is_empty() {
        main.push_str("<h3>Provenance</h3>\n<table class=\"kv provenance\">\n");
        for (k, val) in &v.provenance {
            kv(main, k, &format!("<code>{}</code>", esc(val)));
        }
        main.push_str("</table>\n");
    }
}

/// The quality figures plancd measured on the latest work whose tests passed.
fn quality_html(main: &mut String, v: &TaskView) {
    let Some(q) = &v.description.quality else { return };
    main.push_str("<h2>Quality</h2>\n<table class=\"kv quality\">\n");
    let coverage = match &q.coverage {
        Some(c) => format!(
            "<span id=\"coverage\" data-percent=\"{:.1}\">{:.1}%</span> ({} of {} statements in {} file(s); {} of {} test command(s) measured)",
            c.percent, c.percent, c.covered_lines, c.statements, c.files, c.commands_measured, c.commands
        ),
        None => "not measured".into(),
    };
    kv(main, "Coverage", &coverage);
    let security = match &q.security {
        Some(s) => format!(
            "<span id=\"security\" data-findings=\"{}\">{}</span> (bandit, {} line(s))",
            s.counts.total(),
            esc(&s.summary()),
            s.lines_scanned
        ),
        None => "not measured".into(),
    };
    kv(main, "Security", &security);
    for u in &q.unmeasured {
        let figure = match u.figure {
            crate::state::quality::Figure::Coverage => "Coverage",
            crate::state::quality::Figure::Security => "Security",
        };
        let detail = if u.detail.is_empty() { String::new() } else { format!(": {}", u.detail) };
        kv(main, figure, &esc(&format!("not measured: {}{detail}", u.reason.describe())));
    }
    main.push_str("</table>\n");
    if let Some(s) = q.security.as_ref().filter(|s| !s.findings.is_empty()) {
        let rows: Vec<Vec<String>> = s
            .findings
            .iter()
            .map(|f| {
                vec![
                    esc(f.severity.as_str()),
                    format!("<code>{}</code>", esc(&f.rule)),
                    format!("<code>{}:{}</code>", esc(&f.path), f.line),
                    esc(&f.text),
                ]
            })
            .collect();
        main.push_str(&table("findings", &["Severity", "Rule", "Where", "Finding"], &rows));
    }
}

fn transcript_html(main: &mut String, v: &TaskView) {
    if v.transcript.is_empty() {
        return;
    }
    let (tin, tout, usd) = v.transcript.iter().fold((0, 0, 0.0), |(a, b, c), t| (a + t.input_tokens, b + t.output_tokens, c + t.usd));
    let _ = writeln!(
        main,
        "<h2>Model transcript <span class=\"sub\">{} turn(s), {tin} in / {tout} out tokens, {}</span></h2>\n<ol class=\"turns\">",
        v.transcript.len(),
        money(usd)
    );
    for t in &v.transcript {
        let _ = write!(
            main,
            "<li value=\"{}\"><div class=\"sub\">{} in / {} out tokens, {}{}</div>",
            t.turn,
            t.input_tokens,
            t.output_tokens,
            money(t.usd),
            if t.cached { ", from the cache" } else { "" }
        );
        if !t.text.is_empty() {
            let _ = write!(main, "<pre class=\"say\">{}</pre>", esc(&t.text));
        }
        for (name, args) in &t.calls {
            let _ = write!(main, "<div class=\"call\">→ <b>{}</b> <code>{}</code></div>", esc(name), esc(args));
        }
        for (name, failed, content) in &t.results {
            let _ = write!(
                main,
                "<details class=\"result{}\"><summary>← {}</summary><pre>{}</pre></details>",
                if *failed { " bad" } else { "" },
                esc(name),
                esc(content)
            );
        }
        for n in &t.notes {
            let _ = write!(main, "<div class=\"note\">{}</div>", esc(n));
        }
        main.push_str("</li>\n");
    }
    main.push_str("</ol>\n");
}
