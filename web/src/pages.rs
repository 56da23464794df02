//! Server-rendered pages (maud): no front-end build, no JavaScript needed. Each page calls
//! the same arena operations as the API with the signed-in session's actor, so the role
//! matrix applies unchanged; forms carry the session's CSRF token ([`crate::auth`]).

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use medarena_arena::{
    Action, Actor, AdmissionDecision, AdmissionState, Arena, ArenaError, CompetitionId,
    Contribution, DatasetId, LeaderboardKind, OrgId, Registration, Resource, Role, ScorePoint,
    Tier, authorize,
};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::api::{read_parts, upload_from_parts};
use crate::auth::{Auth, SESSION_COOKIE};
use crate::error::ApiError;
use crate::extract::MultipartBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/register", get(register_page).post(register))
        .route("/apply", get(apply_page).post(apply))
        .route("/logout", post(logout))
        .route("/competitions/{id}", get(competition_page))
        .route("/competitions/{id}/accept", post(accept))
        .route("/competitions/{id}/submit", post(submit))
        .route("/competitions/{id}/submissions", get(submissions_page))
        .route("/datasets", get(datasets_page).post(create_dataset))
        .route("/datasets/{id}", get(dataset_page))
        .route("/datasets/{id}/upload", post(upload))
        .route("/datasets/{id}/privacy", post(set_dataset_privacy))
        .route("/datasets/{id}/synthetic", post(measure_synthetic))
        .route("/datasets/{id}/suspension", post(set_dataset_suspension))
        .route("/synthetic/{id}/{action}", post(change_synthetic))
        .route("/contributions/{id}/withdraw", post(withdraw_contribution))
        .route("/privacy", get(privacy_page))
        .route("/organizer", get(organizer_page))
        .route("/organizer/applications/{org}", post(review_application))
        .route("/organizer/datasets/{id}", post(review_dataset))
        .route("/organizer/competitions", post(create_competition))
        .route(
            "/organizer/competitions/{id}/{action}",
            post(manage_competition),
        )
        .route("/team", get(team_page))
        .route("/team/members", post(add_team_member))
        .route("/ledger", get(ledger_page))
        .route("/certificates/{serial}", get(certificate_page))
        .route("/style.css", get(stylesheet))
        .merge(crate::contract_pages::router())
}

/// A page's outcome: HTML, or an error page with the error's status and message.
pub(crate) type PageResult = Result<Response, PageError>;

/// An error shown as a page. Boxed: results stay small on the happy path.
pub struct PageError(Box<ApiError>);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError(Box::new(error))
    }
}

impl From<ArenaError> for PageError {
    fn from(error: ArenaError) -> Self {
        PageError::from(ApiError::from(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = *self.0;
        let status = error.status();
        if status.is_server_error() {
            tracing::error!(%error, "page failed");
        }
        let signed_out = matches!(&error, ApiError::Arena(ArenaError::Unauthenticated));
        let auth = Auth {
            actor: Actor::Anonymous,
            via: crate::auth::Via::Anonymous,
        };
        let body = layout(
            "Error",
            &auth,
            html! {
                h1 { "Something went wrong" }
                p.error role="alert" { (error.public_message()) }
                @if signed_out { p { a href="/login" { "Sign in" } } }
                p { a href="/" { "Back to the competitions" } }
            },
        );
        (status, body).into_response()
    }
}

pub(crate) fn page(markup: Markup) -> PageResult {
    Ok(markup.into_response())
}

pub(crate) fn see_other(to: &str) -> PageResult {
    Ok(Redirect::to(to).into_response())
}

/// Rejects anonymous visitors with a sign-in prompt.
pub(crate) fn require_signed_in(auth: &Auth) -> Result<(), PageError> {
    auth.require_signed_in().map_err(PageError::from)
}

/// A form post: signed in, and carrying this session's CSRF token.
pub(crate) fn check_form(auth: &Auth, csrf: &str) -> Result<(), PageError> {
    require_signed_in(auth)?;
    auth.check_csrf(csrf).map_err(PageError::from)
}

pub(crate) fn layout(title: &str, auth: &Auth, body: Markup) -> Markup {
    let role = auth.actor.role();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · medarena" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    nav {
                        a.brand href="/" { "medarena" }
                        a href="/" { "Competitions" }
                        @if matches!(role, Some(Role::Hospital | Role::Organizer)) { a href="/datasets" { "Datasets" } }
                        @if role == Some(Role::TeamMember) { a href="/team" { "Team" } }
                        @if role == Some(Role::Organizer) { a href="/organizer" { "Organizer" } }
                        @if role.is_some() { a href="/contracts" { "Contracts" } }
                        a href="/ledger" { "Ledger" }
                        a href="/privacy" { "Privacy" }
                        span.spacer {}
                        @if let Some(csrf) = auth.csrf() {
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/register" { "Register" }
                            a href="/login" { "Sign in" }
                        }
                    }
                }
                main { (body) }
                footer { "Hospital data is usable but never visible. Every operation is on the " a href="/ledger" { "ledger" } "." }
            }
        }
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
        .into_response()
}

/// `binary classification`, from the bundle's `binary_classification`.
fn task_name(task: medarena_arena::bundle::TaskKind) -> String {
    serde_json::to_value(task)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.4}"))
}

pub(crate) fn time(at: medarena_arena::Timestamp) -> String {
    at.to_rfc3339()
        .chars()
        .take(16)
        .collect::<String>()
        .replace('T', " ")
}

async fn home(State(state): State<AppState>, auth: Auth) -> PageResult {
    let competitions = state.arena.competitions(&auth.actor).await?;
    let now = state.arena.now();
    page(layout(
        "Competitions",
        &auth,
        html! {
            h1 { "Competitions" }
            @if competitions.is_empty() { p { "No competition yet." } }
            table {
                thead { tr { th { "Competition" } th { "Task" } th { "Metric" } th { "Phase now" } th { "State" } } }
                tbody {
                    @for c in &competitions {
                        tr {
                            td { a href={ "/competitions/" (c.id.0) } { (c.bundle.title) } }
                            td { (task_name(c.bundle.task)) }
                            td { (c.bundle.metric) }
                            td { (c.bundle.phases.iter().find(|p| p.contains(now)).map_or("none", |p| p.name.as_str())) }
                            td { @if c.published_at.is_some() { "published" } @else if c.closed_at.is_some() { "closed" } @else { "open" } }
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(auth: Auth, Query(query): Query<NextQuery>) -> PageResult {
    page(login_form(&auth, query.next.as_deref(), None))
}

fn login_form(auth: &Auth, next: Option<&str>, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        auth,
        html! {
            h1 { "Sign in" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next.unwrap_or("/"));
                label { "E-mail" input type="email" name="email" required autocomplete="username"; }
                label { "Password" input type="password" name="password" required autocomplete="current-password"; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// Only same-site paths are followed after sign-in.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

async fn login(
    State(state): State<AppState>,
    auth: Auth,
    Form(form): Form<LoginForm>,
) -> PageResult {
    match crate::throttle::sign_in(&state, &form.email, &form.password).await {
        Ok(issued) => Ok(with_session(
            &state,
            &issued,
            safe_next(form.next.as_deref()),
        )),
        Err(ApiError::Arena(ArenaError::Unauthenticated)) => Ok((
            StatusCode::UNAUTHORIZED,
            login_form(
                &auth,
                form.next.as_deref(),
                Some("Wrong e-mail or password."),
            ),
        )
            .into_response()),
        Err(err @ ApiError::TooManySignIns { .. }) => Ok((
            err.status(),
            login_form(&auth, form.next.as_deref(), Some(&err.to_string())),
        )
            .into_response()),
        Err(other) => Err(other.into()),
    }
}

/// A redirect to `to` that sets the session cookie of `issued`.
fn with_session(state: &AppState, issued: &medarena_arena::IssuedToken, to: &str) -> Response {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        issued.token.as_str(),
        state.arena.config().session_ttl.as_secs()
    );
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn register_form(auth: &Auth, error: Option<&str>) -> Markup {
    layout(
        "Register",
        auth,
        html! {
            h1 { "Register" }
            p { "Hospital staff and competitors register here, then apply for their hospital or team; an organizer reviews each application." }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/register" {
                label { "E-mail" input type="email" name="email" required autocomplete="username"; }
                label { "Name" input name="display_name" required; }
                label { "Password (12 characters or more)" input type="password" name="password" required minlength="12" autocomplete="new-password"; }
                label { "I am"
                    select name="role" {
                        option value="team_member" { "a competitor (team member)" }
                        option value="hospital" { "hospital staff contributing data" }
                    }
                }
                button type="submit" { "Register" }
            }
        },
    )
}

async fn register_page(auth: Auth) -> PageResult {
    page(register_form(&auth, None))
}

/// Registers, signs in and goes on to the application form.
async fn register(
    State(state): State<AppState>,
    auth: Auth,
    Form(form): Form<Registration>,
) -> PageResult {
    match state.arena.register(&form).await {
        Ok(_) => {
            let issued = crate::throttle::sign_in(&state, &form.email, &form.password).await?;
            Ok(with_session(&state, &issued, "/apply"))
        }
        Err(err @ (ArenaError::Invalid { .. } | ArenaError::Conflict(_))) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            register_form(&auth, Some(&err.to_string())),
        )
            .into_response()),
        Err(other) => Err(other.into()),
    }
}

/// An account without an organization applies for one (its hospital or its team).
async fn apply_page(State(state): State<AppState>, auth: Auth) -> PageResult {
    require_signed_in(&auth)?;
    let me = state.arena.me(&auth.actor).await?;
    let csrf = auth.csrf().unwrap_or_default();
    let what = if me.account.role == Role::Hospital {
        "hospital"
    } else {
        "team"
    };
    page(layout(
        "Apply",
        &auth,
        html! {
            h1 { "Apply" }
            @if let Some(org) = &me.organization {
                p { "Your " (org.kind.as_str()) " " strong { (org.name) } " is " strong.state { (org.admission.as_str()) } "."
                    @if org.admission == AdmissionState::Pending { " An organizer will review it." } }
            } @else {
                p { "Name your " (what) " and say why it takes part; an organizer reviews the application"
                    @if what == "team" { " and sets what your team may do (dummy data only, real data, DP aggregates)" } "." }
                form method="post" action="/apply" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Name of your " (what) input name="name" required; }
                    label { "Statement" textarea name="statement" {} }
                    button type="submit" { "Apply" }
                }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
struct ApplyForm {
    csrf: String,
    name: String,
    #[serde(default)]
    statement: String,
}

async fn apply(
    State(state): State<AppState>,
    auth: Auth,
    Form(form): Form<ApplyForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    state
        .arena
        .apply(&auth.actor, &form.name, &form.statement)
        .await?;
    see_other("/apply")
}

#[derive(Debug, Deserialize)]
struct BundleForm {
    csrf: String,
    bundle: String,
}

/// An organizer creates a competition from a bundle's YAML; errors name the field.
async fn create_competition(
    State(state): State<AppState>,
    auth: Auth,
    Form(form): Form<BundleForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let competition = state
        .arena
        .create_competition(&auth.actor, &form.bundle)
        .await?;
    see_other(&format!("/competitions/{}", competition.id.0))
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    auth: Auth,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    auth.check_csrf(&form.csrf)?;
    if let crate::auth::Via::Cookie(token) = &auth.via {
        state.arena.logout(token).await?;
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("medarena_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

/// The score-over-time chart: released public scores as points, one colour per team,
/// drawn as inline SVG on the server.
fn score_chart(points: &[ScorePoint]) -> Markup {
    const W: f64 = 640.0;
    const H: f64 = 220.0;
    const PAD: f64 = 36.0;
    if points.is_empty() {
        return html! { p.muted { "No released scores yet." } };
    }
    let (mut t0, mut t1) = (i64::MAX, i64::MIN);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in points {
        t0 = t0.min(p.submitted_at.as_millis());
        t1 = t1.max(p.submitted_at.as_millis());
        lo = lo.min(p.released_public_score);
        hi = hi.max(p.released_public_score);
    }
    if hi - lo < 1e-9 {
        lo -= 0.05;
        hi += 0.05;
    }
    let span = (t1 - t0).max(1) as f64;
    let mut teams: Vec<OrgId> = points.iter().map(|p| p.team).collect();
    teams.sort();
    teams.dedup();
    let colours = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
    ];
    let x = |t: i64| PAD + (t - t0) as f64 / span * (W - 2.0 * PAD);
    let y = |s: f64| H - PAD - (s - lo) / (hi - lo) * (H - 2.0 * PAD);
    // One line per team through its released scores in time order.
    let lines: Vec<(usize, String)> = teams
        .iter()
        .enumerate()
        .map(|(i, team)| {
            let mut own: Vec<&ScorePoint> = points.iter().filter(|p| p.team == *team).collect();
            own.sort_by_key(|p| p.submitted_at);
            let path = own
                .iter()
                .map(|p| {
                    format!(
                        "{:.1},{:.1}",
                        x(p.submitted_at.as_millis()),
                        y(p.released_public_score)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            (i, path)
        })
        .collect();
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H) } role="img" aria-label="Released public scores over time" {
            line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#999" {}
            line x1=(PAD) y1=(PAD) x2=(PAD) y2=(H - PAD) stroke="#999" {}
            text x="2" y=(PAD) font-size="11" { (format!("{hi:.3}")) }
            text x="2" y=(H - PAD) font-size="11" { (format!("{lo:.3}")) }
            @for (i, path) in &lines {
                polyline points=(path) fill="none" stroke=(colours[i % colours.len()]) stroke-width="1.5" stroke-opacity="0.6" {}
            }
            @for p in points {
                @let colour = colours[teams.iter().position(|t| *t == p.team).unwrap_or(0) % colours.len()];
                circle cx=(format!("{:.1}", x(p.submitted_at.as_millis()))) cy=(format!("{:.1}", y(p.released_public_score))) r="4" fill=(colour) {
                    title { (p.team_name) ": " (format!("{:.4}", p.released_public_score)) }
                }
            }
        }
        p.legend {
            @for (i, team) in teams.iter().enumerate() {
                @let name = points.iter().find(|p| p.team == *team).map_or("", |p| p.team_name.as_str());
                span style={ "color:" (colours[i % colours.len()]) } { "● " (name) " " }
            }
        }
    }
}

/// A released score with its 95% noise interval: `0.7420 ± 0.0600`.
fn noisy(value: Option<f64>, half_width: Option<f64>) -> String {
    match (value, half_width) {
        (Some(v), Some(h)) => format!("{v:.4} ± {h:.4}"),
        (value, _) => score(value),
    }
}

fn leaderboard_table(board: &medarena_arena::Leaderboard, caption: &str) -> Markup {
    html! {
        table.leaderboard data-kind=(format!("{:?}", board.kind).to_lowercase()) {
            caption { (caption) " — " (board.metric) (if board.higher_is_better { " (higher is better)" } else { " (lower is better)" }) }
            thead { tr { th { "#" } th { "Team" } th { (if board.released { "Released score (± 95% noise)" } else { "Exact score" }) } th { "Submitted" } } }
            tbody {
                @if board.entries.is_empty() { tr { td colspan="4" { "No released score yet." } } }
                @for e in &board.entries {
                    tr { td { (e.rank) } td { (e.team_name) } td.num { (noisy(e.score, board.noise_half_width_95)) } td { (time(e.submitted_at)) } }
                }
            }
        }
        @if let Some(h) = board.noise_half_width_95 {
            p.muted.noise { "± " (format!("{h:.4}")) ": 95% interval of the noise in each score. " a href="/privacy" { "Privacy" } }
        }
    }
}

/// What the competition promises the hospitals, in one paragraph.
fn privacy_terms(bundle: &medarena_arena::Bundle) -> Markup {
    let Some(terms) = bundle.release_terms() else {
        return html! {};
    };
    html! {
        h2 { "Privacy" }
        @match terms.level {
            medarena_arena::PrivacyLevel::Row => p.privacy data-level="row" {
                strong { "Row-level differential privacy" } " over every row (training rows, test features and labels): each real run is cut into "
                (terms.blocks) " disjoint blocks, each fitted and scored in a fresh sandbox; the released score is the mean of the blocks' scores plus Laplace noise."
            },
            medarena_arena::PrivacyLevel::Label => p.privacy data-level="label" {
                strong { "Label-level differential privacy (the weaker level)" } " over the test labels only; scores are rounded to "
                (terms.score_grid.map_or("—".to_owned(), |g| g.to_string())) " and a team gets at most " (terms.max_releases.unwrap_or(0))
                " released scores, so scores can say at most " (terms.max_bits.map_or("—".to_owned(), |b| format!("{b:.0}"))) " bits about training rows."
            },
        }
        p.muted { "ε = " (terms.public_epsilon) " per released public score (95% noise ± " (format!("{:.4}", terms.public_half_width_95)) "), "
            "ε = " (terms.final_epsilon) " for each team's released private score; results of real runs are released "
            (terms.release_delay_seconds) " s after they are queued, whatever the run does. "
            a href="/privacy" { "The privacy model" } }
    }
}

/// A competition named in a page's path by id or by slug (`/competitions/cardiac-event-1y`,
/// the name the demo prints and bundles use).
async fn competition_named(
    state: &AppState,
    auth: &Auth,
    name: &str,
) -> Result<medarena_arena::Competition, PageError> {
    let arena = &state.arena;
    if let Ok(id) = name.parse::<i64>() {
        return Ok(arena.competition(&auth.actor, CompetitionId(id)).await?);
    }
    arena
        .competitions(&auth.actor)
        .await?
        .into_iter()
        .find(|c| c.slug == name)
        .ok_or_else(|| {
            ApiError::NotFound(format!("no competition with id or slug `{name}`")).into()
        })
}

async fn competition_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> PageResult {
    let arena = &state.arena;
    let competition = competition_named(&state, &auth, &name).await?;
    let id = competition.id.0;
    let public = arena
        .leaderboard(&auth.actor, competition.id, LeaderboardKind::Public)
        .await?;
    let private = arena
        .leaderboard(&auth.actor, competition.id, LeaderboardKind::Private)
        .await
        .ok();
    let history = arena
        .public_score_history(&auth.actor, competition.id)
        .await?;
    let now = arena.now();
    let team_member =
        auth.actor.role() == Some(Role::TeamMember) && auth.actor.approved_org().is_some();
    let accepted = if team_member {
        arena
            .agreement_acceptance(&auth.actor, competition.id)
            .await?
            .is_some()
    } else {
        false
    };
    // The per-hospital view: a contributing hospital's own rows (organizers: every hospital's).
    let site_scores = match auth.actor.role() {
        Some(Role::Hospital | Role::Organizer) if competition.published_at.is_some() => arena
            .site_scores(&auth.actor, competition.id)
            .await
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    // Development data: what teams develop against (published synthetic releases, else
    // dummy data), for whoever may download it.
    let mut development = None;
    if authorize(
        &auth.actor,
        Action::DownloadDummyData,
        Resource::Dataset { contributors: &[] },
    )
    .is_ok()
    {
        let mut published = Vec::new();
        for dataset in &competition.datasets {
            published.extend(
                arena
                    .synthetic_releases(&auth.actor, *dataset)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.state == medarena_arena::SyntheticState::Published),
            );
        }
        development = Some(published);
    }
    // Result certificates exist once the competition is published (public from then on).
    let certificates = match competition.published_at {
        Some(_) => arena
            .result_certificates(&auth.actor, competition.id)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let bundle = &competition.bundle;
    let curves = bundle.survival_grid();
    let csrf = auth.csrf().unwrap_or_default();
    page(layout(
        &bundle.title,
        &auth,
        html! {
            h1 { (bundle.title) }
            p.muted { "Task: " (task_name(bundle.task)) " · metric " (bundle.metric) " · target " code { (bundle.target) }
                " · " (bundle.limits.submissions_per_team_per_day) " submissions per team per day" }
            @if bundle.task == medarena_arena::bundle::TaskKind::Survival {
                p.muted.survival {
                    @if let Some(grid) = &curves {
                        "Survival: submissions return each row's "
                        strong { "survival probability at each horizon" }
                        " (" (grid.iter().map(|h| format!("{h}")).collect::<Vec<_>>().join(", "))
                        "; ABI version 2, sandbox/ABI.md); the target "
                    } @else {
                        "Survival: submissions return one risk score per row, "
                        strong { "higher meaning an earlier event" }
                        " (sandbox/ABI.md); the target "
                    }
                    code { (bundle.target) } " is paired with the dataset's event column."
                    @if let Some(survival) = &bundle.survival {
                        @if !survival.horizons.is_empty() {
                            " Horizons: " (survival.horizons.iter().map(|h| format!("{h}")).collect::<Vec<_>>().join(", ")) "."
                        }
                    }
                }
            }
            @if competition.published_at.is_some() { p.notice { "Final results published." } }
            @else if competition.closed_at.is_some() { p.notice { "Closed to submissions; the private leaderboard will be revealed by the organizers." } }
            div.description { @for paragraph in bundle.description.split("\n\n") { p { (paragraph) } } }
            h2 { "Phases" }
            ul { @for phase in &bundle.phases {
                li { strong { (phase.name) } " (" (format!("{:?}", phase.kind)) "): " (phase.starts_at.format("%Y-%m-%d %H:%M")) " → " (phase.ends_at.format("%Y-%m-%d %H:%M")) " UTC"
                    @if phase.contains(now) { " — " strong { "now" } } }
            } }
            h2 { "Leaderboard" }
            (leaderboard_table(&public, "Public leaderboard (released scores)"))
            @if let Some(private) = &private { (leaderboard_table(private, "Private leaderboard")) }
            @if !certificates.is_empty() {
                h2 { "Result certificates" }
                p.muted { "Each final entry's result, signed by the platform and anchored in the ledger; check a downloaded one offline with "
                    code { "medarena ledger verify --certificate FILE --key ledger.pub" } "." }
                ul.certificates { @for c in &certificates {
                    @if let medarena_arena::certificate::CertificateSubject::Result(r) = &c.body.subject {
                        li { a href={ "/certificates/" (c.body.serial) } { "#" (r.rank) " " (r.team.name) } " · " (r.submission) }
                    }
                } }
            }
            h2 { "Scores over time" }
            (score_chart(&history))
            (privacy_terms(bundle))
            @if !site_scores.is_empty() {
                h2 { "On your hospital's patients" }
                p.muted { "Each final entry's " (bundle.metric) " on the private rows your hospital contributed, "
                    "released with noise at publication (ε " (site_scores[0].release.epsilon) " each; see "
                    a href="/privacy" { "privacy" } ")." }
                table.site-scores {
                    thead { tr { th { "hospital" } th { "team" } th { "submission" } th { "released score" } } }
                    tbody { @for row in &site_scores {
                        tr { td { (row.release.hospital) } td { (row.team_name) } td { (row.submission) }
                            td { (format!("{:.3}", row.release.released_score)) } }
                    } }
                }
            }
            @if let Some(published) = &development {
                h2 { "Development data" }
                @if published.is_empty() {
                    p { "No hospital has published synthetic data for this competition yet: development data is "
                        strong { "dummy data" } " drawn from the manifest's declared ranges (it carries no signal)." }
                } @else {
                    p { "Synthetic rows drawn from the hospitals' " strong { "differentially private" }
                        " releases (each keeps the 1- and 2-way structure of its hospital's rows at the ε shown; "
                        a href="/privacy" { "privacy" } "). Dummy-data runs use this table." }
                    (synthetic_table(published, None, ""))
                }
                p { a.download href={ "/api/v1/competitions/" (id) "/development-data" } { "Download the development data (CSV, the dummy run's table)" }
                    " · more rows: " code { "medarena dataset dummy --from-server " (id) " --rows 10000 -o dev.csv" } }
            }
            @if team_member {
                h2 { "Your team" }
                @if !accepted {
                    h3 { "Data-use agreement" }
                    pre.agreement { (bundle.agreement) }
                    form method="post" action={ "/competitions/" (id) "/accept" } {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="agreement_sha256" value=(Arena::agreement_sha256(&competition));
                        button type="submit" { "I accept on behalf of my team" }
                    }
                } @else {
                    form method="post" action={ "/competitions/" (id) "/submit" } enctype="multipart/form-data" {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "WebAssembly module (.wasm)" input type="file" name="module" accept=".wasm" required; }
                        button type="submit" { "Submit" }
                    }
                    p { a href={ "/competitions/" (id) "/submissions" } { "Your submissions and remaining budget" } }
                }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
struct AcceptForm {
    csrf: String,
    agreement_sha256: String,
}

async fn accept(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<AcceptForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    state
        .arena
        .accept_agreement(&auth.actor, CompetitionId(id), &form.agreement_sha256)
        .await?;
    see_other(&format!("/competitions/{id}"))
}

async fn submit(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    MultipartBody(multipart): MultipartBody,
) -> PageResult {
    let parts = read_parts(multipart).await?;
    check_form(&auth, &parts.text("csrf")?.unwrap_or_default())?;
    let module = parts
        .bytes("module")
        .ok_or_else(|| ApiError::bad_request("module", "choose a .wasm file"))?;
    state
        .arena
        .submit(&auth.actor, CompetitionId(id), &module)
        .await?;
    see_other(&format!("/competitions/{id}/submissions"))
}

async fn submissions_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> PageResult {
    require_signed_in(&auth)?;
    let competition = competition_named(&state, &auth, &name).await?;
    let id = competition.id.0;
    let team = auth.actor.approved_org().map(|m| m.org);
    let submissions = state
        .arena
        .submissions(&auth.actor, competition.id, team)
        .await?;
    // Each submission's receipt: the evidence code of its `submission_received` entry.
    let mut receipts = std::collections::HashMap::new();
    for submission in &submissions {
        let events = state
            .arena
            .submission_receipts(&auth.actor, submission.id)
            .await;
        if let Some(code) = evidence_of(events, "submission_received") {
            receipts.insert(submission.id, code);
        }
    }
    let budget = match team {
        Some(team) => state
            .arena
            .budget(&auth.actor, competition.id, team)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    page(layout(
        "Submissions",
        &auth,
        html! {
            h1 { "Submissions — " a href={ "/competitions/" (id) } { (competition.bundle.title) } }
            @if !budget.is_empty() {
                h2 { "Privacy budget" }
                table { thead { tr { th { "Dataset" } th { "Spent here ε" } th { "Competition cap ε" } th { "Spent on the dataset ε" } th { "Hospitals' cap ε" } th { "Remaining ε" } } }
                    tbody { @for b in &budget { tr { td { (b.dataset) } td.num { (format!("{:.3}", b.spent)) } td.num { (format!("{:.3}", b.total)) } td.num { (format!("{:.3}", b.dataset_spent)) } td.num { (format!("{:.3}", b.dataset_cap)) } td.num.remaining { (format!("{:.3}", b.remaining())) } } } } }
                p.muted { "A real run's ε is reserved when it is queued (with your first, also the final score's). Your budget on a dataset is shared by every competition that uses it." }
            }
            table.submissions {
                thead { tr { th { "Submission" } th { "Phase" } th { "Status" } th { "Outcome" } th { "Dummy score" } th { "Public score (released)" } th { "Private" } th { "Submitted" } th { "Receipt" } } }
                tbody {
                    @if submissions.is_empty() { tr { td colspan="9" { "No submission yet." } } }
                    @for s in &submissions {
                        tr {
                            td { (s.id.0) } td { (s.phase) }
                            td.status { (s.status.as_str())
                                @if let (medarena_arena::SubmissionStatus::QueuedReal, Some(at)) = (s.status, s.release_at) { br; small.release { "released at " (time(at)) } } }
                            td { (s.outcome.map_or("—", |o| o.as_str())) }
                            td.num { (score(s.dummy_score)) }
                            td.num { (noisy(s.released_public_score, s.noise_half_width_95)) }
                            td.num { (score(s.private_score)) }
                            td { (time(s.submitted_at)) }
                            td { @if let Some(code) = receipts.get(&s.id) { a.receipt href={ "/ledger?code=" (code) } title=(code) { (code.get(..11).unwrap_or(code)) "…" } } }
                        }
                    }
                }
            }
            p.muted { "Statuses update as the queue runs the dummy-data check and then the real-data run. A real-data run shows as queued until its release time, whatever it does; then it is completed with its released score (a run that failed on real data is scored as the competition's fallback prediction). Reload to refresh." }
        },
    ))
}

async fn datasets_page(State(state): State<AppState>, auth: Auth) -> PageResult {
    require_signed_in(&auth)?;
    let datasets = state.arena.datasets(&auth.actor).await?;
    let may_create = authorize(&auth.actor, Action::CreateDataset, Resource::Platform).is_ok();
    let csrf = auth.csrf().unwrap_or_default();
    page(layout(
        "Datasets",
        &auth,
        html! {
            h1 { "Datasets" }
            table { thead { tr { th { "Dataset" } th { "State" } th { "Created" } } }
                tbody { @for d in &datasets { tr { td { a href={ "/datasets/" (d.id.0) } { (d.title) } " " code { (d.slug) } } td { (d.state.as_str()) } td { (time(d.created_at)) } } } } }
            @if may_create {
                h2 { "Open a dataset" }
                form method="post" action="/datasets" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Slug" input name="slug" required pattern="[a-z0-9-]+" placeholder="cardiac-events"; }
                    label { "Title" input name="title" required; }
                    label { "Description" textarea name="description" {} }
                    button type="submit" { "Create" }
                }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
struct DatasetForm {
    csrf: String,
    slug: String,
    title: String,
    #[serde(default)]
    description: String,
}

async fn create_dataset(
    State(state): State<AppState>,
    auth: Auth,
    Form(form): Form<DatasetForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let dataset = state
        .arena
        .create_dataset(&auth.actor, &form.slug, &form.title, &form.description)
        .await?;
    see_other(&format!("/datasets/{}", dataset.id.0))
}

/// A validation report: the findings (rule, severity, column, rows affected), never values.
fn report_table(report: &Value) -> Markup {
    let findings = report
        .get("findings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let field = |f: &Value, key: &str| {
        f.get(key)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default()
    };
    html! {
        @if findings.is_empty() { p.ok { "No findings." } }
        @else {
            table.report {
                thead { tr { th { "Severity" } th { "Rule" } th { "Column" } th { "Rows" } th { "First rows" } th { "What" } } }
                tbody { @for f in &findings {
                    tr class=(field(f, "severity")) {
                        td { (field(f, "severity")) } td { code { (field(f, "rule")) } } td { (field(f, "column")) }
                        td.num { (field(f, "rows")) } td { (row_list(f)) } td { (field(f, "message")) }
                    }
                } }
            }
        }
    }
}

/// A finding's first row numbers, `1, 2, 3, …`.
fn row_list(finding: &Value) -> String {
    let rows: Vec<String> = finding
        .get("row_numbers")
        .and_then(Value::as_array)
        .map(|rows| rows.iter().map(Value::to_string).collect())
        .unwrap_or_default();
    rows.join(", ")
}

/// The evidence code of the first event of `kind` among a subject's receipts, when the
/// viewer may see them and the event has reached the ledger.
fn evidence_of(
    events: Result<Vec<medarena_arena::AuditRecord>, ArenaError>,
    kind: &str,
) -> Option<String> {
    events
        .ok()?
        .into_iter()
        .find(|e| e.event.kind() == kind)
        .and_then(|e| e.evidence)
}

/// The evidence code of an upload's `contribution_uploaded` ledger entry, when visible.
async fn upload_receipt(state: &AppState, auth: &Auth, c: &Contribution) -> Option<String> {
    let events = state.arena.contribution_receipts(&auth.actor, c.id).await;
    evidence_of(events, "contribution_uploaded")
}

fn contribution_block(c: &Contribution, receipt: Option<&str>) -> Markup {
    html! {
        div.contribution {
            h3 { (c.file_name) " — " span.state { (c.state.as_str()) } }
            p.muted { "Uploaded " (time(c.created_at)) " · " (c.size_bytes) " bytes · SHA-256 " code { (c.content_sha256) }
                @if let Some(rows) = c.rows { " · " (rows) " rows" }
                @if let Some(code) = receipt { " · receipt " a.receipt href={ "/ledger?code=" (code) } { (code) } } }
            (report_table(&c.report))
        }
    }
}

async fn dataset_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> PageResult {
    require_signed_in(&auth)?;
    render_dataset(&state, &auth, DatasetId(id), None).await
}

async fn render_dataset(
    state: &AppState,
    auth: &Auth,
    id: DatasetId,
    rejected: Option<&Contribution>,
) -> PageResult {
    let view = state.arena.dataset(&auth.actor, id).await?;
    let usage = state
        .arena
        .dataset_usage(&auth.actor, id)
        .await
        .unwrap_or_default();
    let spent: f64 = usage.iter().map(|u| u.epsilon).sum();
    let privacy = state.arena.dataset_privacy(&auth.actor, id).await.ok();
    let contributors: Vec<_> = view.contributions.iter().map(|c| c.hospital).collect();
    let sets_terms = authorize(
        &auth.actor,
        Action::SetDatasetPrivacy,
        Resource::Dataset {
            contributors: &contributors,
        },
    )
    .is_ok();
    let mut receipts = Vec::with_capacity(view.contributions.len());
    for c in &view.contributions {
        receipts.push(upload_receipt(state, auth, c).await);
    }
    let rejected_receipt = match rejected {
        Some(c) => upload_receipt(state, auth, c).await,
        None => None,
    };
    let may_upload = authorize(
        &auth.actor,
        Action::ContributeData,
        Resource::Dataset { contributors: &[] },
    )
    .is_ok();
    let synthetic = state
        .arena
        .synthetic_releases(&auth.actor, id)
        .await
        .unwrap_or_default();
    let manages_synthetic = authorize(
        &auth.actor,
        Action::ManageSyntheticData,
        Resource::Dataset {
            contributors: &contributors,
        },
    )
    .is_ok();
    let own_hospital = auth.actor.approved_org().map(|m| m.org);
    // Its hospitals and organizers see the registration certificate of an approved dataset.
    let certificate = match view.dataset.state {
        medarena_arena::DatasetState::Approved => state
            .arena
            .registration_certificate(&auth.actor, id)
            .await
            .ok()
            .map(|c| c.body.serial),
        _ => None,
    };
    let csrf = auth.csrf().unwrap_or_default();
    let d = &view.dataset;
    let markup = layout(
        &d.title,
        auth,
        html! {
            h1 { (d.title) " " code { (d.slug) } }
            p { "State: " strong.state { (d.state.as_str()) } " · " (view.contributor_count) " contributing hospital(s)" }
            p { (d.description) }
            @if !d.review_checklist.is_empty() {
                h2 { "Legality and compliance review" }
                p { "Decision: " strong { @if d.state.as_str() == "approved" { "approved" } @else { "refused" } }
                    @if let Some(at) = d.reviewed_at { " on " (time(at)) }
                    @if let Some(note) = &d.review_note { ": " (note) } }
                table.checklist {
                    thead { tr { th { "Item" } th { "Outcome" } th { "Note" } } }
                    tbody { @for decision in &d.review_checklist {
                        tr { td { (decision.item.as_str()) }
                             td { @if decision.passed { "passes" } @else { strong.error { "fails" } } }
                             td { (decision.note) } }
                    } }
                }
            }
            @if let Some(c) = rejected {
                div.error role="alert" { h2 { "Upload refused" } p { "The file was not kept. Fix what the report names and upload again." } (contribution_block(c, rejected_receipt.as_deref())) }
            }
            @if let Some(serial) = &certificate {
                p.certificate { "Registered: " a href={ "/certificates/" (serial) } { "registration certificate " (serial) }
                    " (signed by the platform and anchored in the ledger; printable, with its JSON)" }
            }
            h2 { "Contributions" }
            @for (c, receipt) in view.contributions.iter().zip(&receipts) {
                (contribution_block(c, receipt.as_deref()))
                @if let Some(at) = c.withdrawn_at {
                    p.error.withdrawn { "Withdrawn by its hospital on " (time(at)) ": " (c.withdrawal_reason.as_deref().unwrap_or(""))
                        ". Its data key is destroyed and its bytes deleted; its receipts stay." }
                } @else if Some(c.hospital) == own_hospital && c.object.is_some() {
                    form.withdraw method="post" action={ "/contributions/" (c.id.0) "/withdraw" } {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "Reason (on the ledger's record of the withdrawal)" input type="text" name="reason" required maxlength="500"; }
                        button type="submit" { "Withdraw this upload for good" }
                    }
                }
            }
            @if view.contributions.is_empty() { p.muted { "None you may see." } }
            @if let Some(privacy) = &privacy {
                h2 { "Privacy terms" }
                p.terms { "Applied to every competition that uses this dataset (the strictest of its hospitals' terms): "
                    strong { (privacy.effective.min_level.as_str()) "-level" } " guarantee at least · "
                    strong { (privacy.effective.per_team_epsilon) } " ε per team · "
                    strong { (privacy.effective.total_epsilon) } " ε across all teams. Spent so far: "
                    (format!("{:.3}", privacy.spent_total)) " ε in all, at most " (format!("{:.3}", privacy.spent_most_by_one_team)) " ε by one team; "
                    (format!("{:.3}", privacy.spent_synthetic)) " ε by synthetic releases (counted for every team)." }
                @if sets_terms {
                    form.terms method="post" action={ "/datasets/" (id.0) "/privacy" } {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "Weakest guarantee allowed "
                            select name="min_level" {
                                option value="row" selected[privacy.effective.min_level == medarena_arena::PrivacyLevel::Row] { "row: DP over every row (recommended)" }
                                option value="label" selected[privacy.effective.min_level == medarena_arena::PrivacyLevel::Label] { "label: DP over test labels only" }
                            } }
                        label { "ε per team (all competitions)" input type="number" name="per_team_epsilon" step="any" min="0" value=(privacy.effective.per_team_epsilon); }
                        label { "ε across all teams" input type="number" name="total_epsilon" step="any" min="0" value=(privacy.effective.total_epsilon); }
                        button type="submit" { "Set my hospital's terms" }
                    }
                    p.muted { "Lowering a cap below what was spent stops new real-data runs at once; runs already released keep their records." }
                }
                @for suspension in &privacy.suspensions {
                    p.error.suspended { "Suspended by " (suspension.hospital) " since " (time(suspension.suspended_at)) ": " (suspension.reason)
                        ". No real-data run reads this dataset until it is resumed." }
                }
                @if sets_terms {
                    @let own_suspension = privacy.suspensions.iter().any(|s| Some(s.hospital) == own_hospital);
                    form.suspension method="post" action={ "/datasets/" (id.0) "/suspension" } {
                        input type="hidden" name="csrf" value=(csrf);
                        @if own_suspension {
                            input type="hidden" name="suspended" value="false";
                            button type="submit" { "Resume my hospital's data" }
                        } @else {
                            input type="hidden" name="suspended" value="true";
                            label { "Reason (shown to the teams whose runs it stops)" input type="text" name="reason" required maxlength="500"; }
                            button type="submit" { "Suspend the use of this dataset" }
                        }
                    }
                }
            }
            @if manages_synthetic || !synthetic.is_empty() {
                h2 { "Synthetic development data" }
                p.muted { "Teams develop against synthetic rows drawn from a hospital's differentially private release of its rows "
                    "(MST: noisy 1- and 2-way marginals, δ = 1e-6). Its ε is charged on this dataset when the rows are measured, "
                    "counts for every team, and stays spent whether the draft is published or discarded. "
                    "Quality compares synthetic rows with the noisy measurements (total variation distance), never with your rows." }
                @if !synthetic.is_empty() { (synthetic_table(&synthetic, own_hospital, &csrf)) }
                @if manages_synthetic {
                    form.synthetic method="post" action={ "/datasets/" (id.0) "/synthetic" } {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "ε to spend on my hospital's rows" input type="number" name="epsilon" step="any" min="0" value="1"; }
                        button type="submit" { "Measure (a draft only my hospital sees)" }
                    }
                }
            }
            h2 { "Usage" }
            p { "ε spent on this dataset: " strong { (format!("{spent:.3}")) } " in " (usage.len()) " charge(s)." }
            @if !usage.is_empty() {
                table { thead { tr { th { "Competition" } th { "Team" } th { "Job" } th { "Purpose" } th { "ε" } th { "When" } } }
                    tbody { @for u in &usage { tr { td { (u.competition) } td { (u.team) } td { (u.job.map_or_else(String::new, |j| j.to_string())) } td { (u.purpose.as_str()) } td.num { (u.epsilon) } td { (time(u.at)) } } } } }
            }
            @if may_upload && d.state.as_str() != "approved" {
                h2 { "Upload a table" }
                form.upload method="post" action={ "/datasets/" (id.0) "/upload" } enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Manifest (YAML or JSON; optional if bundled)" input type="file" name="manifest"; }
                    label { "Table (CSV, Parquet or Arrow IPC)" input type="file" name="data" required; }
                    button type="submit" { "Upload and validate" }
                }
                p.muted { "Uploads are encrypted at rest and validated (schema, PHI, k-anonymity). Nobody can download them." }
            }
        },
    );
    let status = if rejected.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, markup).into_response())
}

/// Synthetic releases; the releasing hospital (`own`) gets its buttons.
fn synthetic_table(
    releases: &[medarena_arena::SyntheticRelease],
    own: Option<medarena_arena::OrgId>,
    csrf: &str,
) -> Markup {
    use medarena_arena::SyntheticState as S;
    html! {
        table.synthetic {
            thead { tr { th { "release" } th { "hospital" } th { "state" } th { "ε (δ)" } th { "synthesizer" }
                th { "TVD per column mean / max" } th { "TVD per pair mean / max" } th { "published" } th {} } }
            tbody { @for r in releases {
                tr { td { (r.id) } td { (r.hospital) } td.state { (r.state.as_str()) }
                    td.num { (format!("{:.3}", r.epsilon)) " (" (r.delta) ")" } td { (r.synthesizer) }
                    td.num { (format!("{:.3} / {:.3}", r.quality.mean_column_tvd, r.quality.max_column_tvd)) }
                    td.num { (format!("{:.3} / {:.3}", r.quality.mean_pair_tvd, r.quality.max_pair_tvd)) }
                    td { (r.published_at.map(time).unwrap_or_default()) }
                    td { @if own == Some(r.hospital) {
                        @for (action, label, state) in [("publish", "Publish", S::Draft), ("discard", "Discard", S::Draft), ("withdraw", "Withdraw", S::Published)] {
                            @if r.state == state {
                                form.inline method="post" action={ "/synthetic/" (r.id.0) "/" (action) } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { (label) }
                                }
                            }
                        }
                    } }
                }
            } }
        }
    }
}

#[derive(Debug, Deserialize)]
struct SyntheticForm {
    csrf: String,
    epsilon: f64,
}

/// A contributing hospital measures its rows for synthetic data (a draft).
async fn measure_synthetic(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<SyntheticForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    state
        .arena
        .measure_synthetic(&auth.actor, DatasetId(id), form.epsilon)
        .await?;
    see_other(&format!("/datasets/{id}"))
}

/// The releasing hospital publishes, discards or withdraws a synthetic release.
async fn change_synthetic(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let action = crate::api::synthetic_action(&action)?;
    let release = state
        .arena
        .change_synthetic(&auth.actor, medarena_arena::SyntheticReleaseId(id), action)
        .await?;
    see_other(&format!("/datasets/{}", release.dataset.0))
}

#[derive(Debug, Deserialize)]
struct SuspensionForm {
    csrf: String,
    suspended: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// A contributing hospital suspends or resumes the use of its dataset.
async fn set_dataset_suspension(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<SuspensionForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    state
        .arena
        .set_dataset_suspension(
            &auth.actor,
            DatasetId(id),
            form.suspended,
            form.reason.as_deref(),
        )
        .await?;
    see_other(&format!("/datasets/{id}"))
}

#[derive(Debug, Deserialize)]
struct WithdrawForm {
    csrf: String,
    reason: String,
}

/// A hospital withdraws one of its uploads (its key destroyed, its bytes deleted).
async fn withdraw_contribution(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<WithdrawForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let withdrawn = state
        .arena
        .withdraw_contribution(
            &auth.actor,
            medarena_arena::ContributionId(id),
            &form.reason,
        )
        .await?;
    see_other(&format!("/datasets/{}", withdrawn.dataset.0))
}

#[derive(Debug, Deserialize)]
struct PrivacyTermsForm {
    csrf: String,
    min_level: String,
    per_team_epsilon: f64,
    total_epsilon: f64,
}

/// A contributing hospital sets its privacy terms for a dataset.
async fn set_dataset_privacy(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<PrivacyTermsForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let min_level = form
        .min_level
        .parse()
        .map_err(|message: String| ApiError::bad_request("min_level", &message))?;
    state
        .arena
        .set_dataset_privacy(
            &auth.actor,
            DatasetId(id),
            &medarena_arena::DatasetPrivacyTerms {
                min_level,
                per_team_epsilon: form.per_team_epsilon,
                total_epsilon: form.total_epsilon,
            },
        )
        .await?;
    see_other(&format!("/datasets/{id}"))
}

/// The privacy model (`PRIVACY.md`), served as it is written.
async fn privacy_page(auth: Auth) -> PageResult {
    page(layout(
        "Privacy",
        &auth,
        html! { pre.document { (PRIVACY_MD) } },
    ))
}

/// The platform's privacy notes, embedded at build time.
pub const PRIVACY_MD: &str = include_str!("../../PRIVACY.md");

async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    MultipartBody(multipart): MultipartBody,
) -> PageResult {
    let parts = read_parts(multipart).await?;
    check_form(&auth, &parts.text("csrf")?.unwrap_or_default())?;
    let upload = upload_from_parts(&parts)?;
    match state
        .arena
        .upload_contribution(&auth.actor, DatasetId(id), &upload)
        .await
    {
        Ok(_) => see_other(&format!("/datasets/{id}")),
        Err(ArenaError::UploadRejected(contribution)) => {
            render_dataset(&state, &auth, DatasetId(id), Some(&contribution)).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn organizer_page(State(state): State<AppState>, auth: Auth) -> PageResult {
    require_signed_in(&auth)?;
    let arena = &state.arena;
    let pending = arena
        .applications(&auth.actor, Some(AdmissionState::Pending))
        .await?;
    let datasets = arena.datasets(&auth.actor).await?;
    let mut to_review = Vec::new();
    for d in datasets.iter().filter(|d| d.state.as_str() == "validated") {
        // What the checklist is checked against: each contribution's declared provenance.
        let view = arena.dataset(&auth.actor, d.id).await?;
        let provenance: Vec<(String, Option<medarena_arena::datasets_spec::Manifest>)> = view
            .contributions
            .iter()
            .filter(|c| c.state.as_str() == "validated")
            .map(|c| {
                let manifest = c
                    .manifest
                    .as_deref()
                    .and_then(|m| medarena_arena::datasets_spec::Manifest::from_str(m).ok());
                (c.file_name.clone(), manifest)
            })
            .collect();
        to_review.push((d, provenance));
    }
    let competitions = arena.competitions(&auth.actor).await?;
    let csrf = auth.csrf().unwrap_or_default();
    let mut scored = Vec::new();
    for c in &competitions {
        let rows = arena.exact_scores(&auth.actor, c.id).await?;
        let mut details = Vec::new();
        for row in rows.iter().take(50) {
            let view = arena.submission(&auth.actor, row.submission).await?;
            details.push((row.clone(), view.exact.and_then(|e| e.result)));
        }
        let comparison = arena
            .compare_top_entries(&auth.actor, c.id, 2)
            .await
            .unwrap_or_default();
        scored.push((c, details, comparison));
    }
    // The executor's result: `evaluation.pooled.public.ci`, `evaluation.block_statuses`, ...
    let ci = |result: &Option<Value>, key: &str| -> String {
        result
            .as_ref()
            .and_then(|r| r.pointer(&format!("/evaluation/pooled/{key}/ci")))
            .and_then(|ci| {
                Some(format!(
                    "[{:.4}, {:.4}]",
                    ci.get("lower")?.as_f64()?,
                    ci.get("upper")?.as_f64()?
                ))
            })
            .unwrap_or_else(|| "—".to_owned())
    };
    let per_site = |result: &Option<Value>| -> String {
        let sites = result
            .as_ref()
            .and_then(|r| r.pointer("/evaluation/pooled/private/per_site"))
            .and_then(Value::as_array);
        sites.map_or_else(String::new, |sites| {
            sites
                .iter()
                .map(|site| {
                    let score = score(site["score"].as_f64());
                    let name = site["site"].as_str().unwrap_or("?");
                    format!("{name}: {score} ({} rows)", site["rows"])
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    // How the run's blocks ended: `100 ok`, or `97 ok, 3 trap`.
    let blocks = |result: &Option<Value>| -> String {
        result
            .as_ref()
            .and_then(|r| r.pointer("/evaluation/block_statuses"))
            .and_then(Value::as_object)
            .map_or_else(String::new, |statuses| {
                statuses
                    .iter()
                    .map(|(status, count)| format!("{count} {status}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
    };
    page(layout(
        "Organizer",
        &auth,
        html! {
            h1 { "Organizer" }
            h2 { "Create a competition" }
            details {
                summary { "From a bundle (YAML): see " code { "arena/examples/bundles/cardiac-event/competition.yaml" } }
                form method="post" action="/organizer/competitions" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Bundle" textarea name="bundle" rows="16" cols="80" required {} }
                    button type="submit" { "Create" }
                }
            }
            h2 { "Applications awaiting review" }
            @if pending.is_empty() { p.muted { "None." } }
            @for org in &pending {
                form.review method="post" action={ "/organizer/applications/" (org.id.0) } {
                    input type="hidden" name="csrf" value=(csrf);
                    strong { (org.name) } " (" (org.kind.as_str()) ") — " (org.statement) " "
                    @if org.kind.as_str() == "team" {
                        select name="tier" { option value="dummy_only" { "dummy data only" } option value="real_data" selected { "real data" } option value="dp_aggregates" { "DP aggregates" } }
                    }
                    button name="decision" value="approve" { "Approve" }
                    button name="decision" value="reject" { "Reject" }
                }
            }
            h2 { "Datasets awaiting approval" }
            @if to_review.is_empty() { p.muted { "None." } }
            @for (d, provenance) in &to_review {
                h3 { a href={ "/datasets/" (d.id.0) } { (d.title) } }
                table.provenance {
                    thead { tr { th { "Upload" } th { "Ethics approval" } th { "Legal basis" } th { "Consent" } th { "De-identification" } th { "Permitted uses" } } }
                    tbody { @for (file, manifest) in provenance {
                        tr {
                            td { (file) }
                            @match manifest {
                                Some(m) => {
                                    td { (m.provenance.ethics_approval) }
                                    td { (m.provenance.legal_basis) }
                                    td { (m.provenance.consent.as_deref().unwrap_or("not stated")) }
                                    td { (format!("{:?}", m.provenance.deidentification.method)) " " (m.provenance.deidentification.description.as_deref().unwrap_or("")) }
                                    td { (m.permitted_uses.purposes.join("; ")) }
                                }
                                None => { td colspan="5" { "no readable manifest" } }
                            }
                        }
                    } }
                }
                form.review.checklist method="post" action={ "/organizer/datasets/" (d.id.0) } {
                    input type="hidden" name="csrf" value=(csrf);
                    @for item in medarena_arena::ReviewItem::ALL {
                        fieldset {
                            legend { (item.as_str()) }
                            label { input type="checkbox" name={ "pass_" (item.as_str()) } value="true"; " passes" }
                            label { "Note" input type="text" name={ "note_" (item.as_str()) } required maxlength="500"; }
                        }
                    }
                    label { "Decision note (optional)" input type="text" name="note" maxlength="2000"; }
                    button name="approve" value="true" { "Approve" }
                    button name="approve" value="false" { "Reject" }
                }
            }
            @for (c, details, comparison) in &scored {
                h2 { a href={ "/competitions/" (c.id.0) } { (c.bundle.title) } }
                table.exact {
                    caption { "Exact scores (the mean of the blocks' scores, what is released with noise); 95% bootstrap intervals and per-site scores of the pooled out-of-block predictions" }
                    thead { tr { th { "Submission" } th { "Team" } th { "Released public" } th { "Exact public" } th { "95% CI" } th { "Private" } th { "95% CI" } th { "Per site (private)" } th { "Blocks" } } }
                    tbody { @for (row, result) in details {
                        tr { td { (row.submission.0) } td { (row.team_name) } td.num { (score(row.released_public_score)) } td.num { (score(row.exact_public_score)) }
                             td { (ci(result, "public")) } td.num { (score(row.private_score)) } td { (ci(result, "private")) }
                             td { (per_site(result)) } td.blocks { (blocks(result)) } }
                    } }
                }
                @for cmp in comparison {
                    p { "Top entries " (cmp.a.0) " vs " (cmp.b.0) ": difference " (format!("{:.4}", cmp.difference)) " [" (format!("{:.4}", cmp.difference_lower)) ", " (format!("{:.4}", cmp.difference_upper)) "], p = " (format!("{:.3}", cmp.p_value)) }
                }
                @if c.closed_at.is_none() {
                    form.inline method="post" action={ "/organizer/competitions/" (c.id.0) "/close" } { input type="hidden" name="csrf" value=(csrf); button { "Close competition" } }
                } @else if c.published_at.is_none() {
                    form.inline method="post" action={ "/organizer/competitions/" (c.id.0) "/publish" } { input type="hidden" name="csrf" value=(csrf); button { "Publish private leaderboard" } }
                } @else { p.muted { "Published." } }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
struct ApplicationForm {
    csrf: String,
    decision: String,
    tier: Option<Tier>,
}

async fn review_application(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<i64>,
    Form(form): Form<ApplicationForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let org = OrgId(org);
    let decision = if form.decision == "approve" {
        let applications = state.arena.applications(&auth.actor, None).await?;
        let is_team = applications
            .iter()
            .any(|o| o.id == org && o.kind.as_str() == "team");
        AdmissionDecision::Approve {
            tier: if is_team { form.tier } else { None },
        }
    } else {
        AdmissionDecision::Reject { note: None }
    };
    state
        .arena
        .review_application(&auth.actor, org, &decision)
        .await?;
    see_other("/organizer")
}

#[derive(Debug, Deserialize)]
struct DatasetReviewForm {
    csrf: String,
    approve: bool,
    #[serde(default)]
    note: Option<String>,
    /// `pass_<item>` (a checked box) and `note_<item>` for every checklist item.
    #[serde(flatten)]
    items: std::collections::HashMap<String, String>,
}

impl DatasetReviewForm {
    fn review(&self) -> medarena_arena::DatasetReview {
        let checklist = medarena_arena::ReviewItem::ALL
            .iter()
            .filter_map(|&item| {
                let note = self.items.get(&format!("note_{}", item.as_str()))?;
                Some(medarena_arena::ChecklistDecision {
                    item,
                    passed: self.items.contains_key(&format!("pass_{}", item.as_str())),
                    note: note.clone(),
                })
            })
            .collect();
        medarena_arena::DatasetReview {
            approve: self.approve,
            checklist,
            note: self.note.clone().filter(|n| !n.trim().is_empty()),
        }
    }
}

async fn review_dataset(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Form(form): Form<DatasetReviewForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    state
        .arena
        .review_dataset(&auth.actor, DatasetId(id), &form.review())
        .await?;
    see_other("/organizer")
}

async fn manage_competition(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let id = CompetitionId(id);
    match action.as_str() {
        "close" => state.arena.close_competition(&auth.actor, id).await?,
        "publish" => state.arena.publish_competition(&auth.actor, id).await?,
        other => return Err(ApiError::NotFound(format!("competition action `{other}`")).into()),
    };
    state.leaderboards.invalidate(id);
    see_other("/organizer")
}

/// A team member's team: admission, tier, members, and adding a colleague by e-mail (the
/// colleague registers as a team member first).
async fn team_page(State(state): State<AppState>, auth: Auth) -> PageResult {
    require_signed_in(&auth)?;
    let me = state.arena.me(&auth.actor).await?;
    let Some(org) = me.organization.filter(|o| o.kind.as_str() == "team") else {
        return page(layout(
            "Team",
            &auth,
            html! { h1 { "Team" } p { "You belong to no team yet: apply with `POST /api/v1/applications` or ask a team member to add you." } },
        ));
    };
    let team = state.arena.team(&auth.actor, org.id).await?;
    let csrf = auth.csrf().unwrap_or_default();
    page(layout(
        "Team",
        &auth,
        html! {
            h1 { (team.team.name) }
            p { "Admission: " strong { (team.team.admission.as_str()) }
                @if let Some(tier) = team.team.tier { " · tier " strong { (tier.as_str()) } } }
            table.members { thead { tr { th { "Member" } th { "E-mail" } th { "Since" } } }
                tbody { @for m in &team.members { tr { td { (m.display_name) } td { (m.email) } td { (time(m.created_at)) } } } } }
            h2 { "Add a member" }
            form method="post" action="/team/members" {
                input type="hidden" name="csrf" value=(csrf);
                label { "E-mail of a registered team-member account" input type="email" name="email" required; }
                button type="submit" { "Add" }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
struct MemberForm {
    csrf: String,
    email: String,
}

async fn add_team_member(
    State(state): State<AppState>,
    auth: Auth,
    Form(form): Form<MemberForm>,
) -> PageResult {
    check_form(&auth, &form.csrf)?;
    let team = auth
        .actor
        .approved_org()
        .map(|m| m.org)
        .ok_or_else(|| ApiError::bad_request("team", "you belong to no approved team"))?;
    state
        .arena
        .add_team_member(&auth.actor, team, &form.email)
        .await?;
    see_other("/team")
}

#[derive(Debug, Deserialize)]
struct LedgerQuery {
    code: Option<String>,
}

async fn ledger_page(
    State(state): State<AppState>,
    auth: Auth,
    Query(query): Query<LedgerQuery>,
) -> PageResult {
    let (key, checkpoint, size, recent) = crate::ledger_api::read_ledger(&state, |shared| {
        shared.read(|l| {
            let size = l.len();
            (
                l.verifier_key().to_string(),
                l.checkpoint().text().to_owned(),
                size,
                l.entries(size.saturating_sub(20), size).unwrap_or_default(),
            )
        })
    })
    .await;
    let lookup = match query.code.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(code) => Some(crate::ledger_api::receipt_for(&state, code).await),
        None => None,
    };
    page(layout(
        "Ledger",
        &auth,
        html! {
            h1 { "Ledger" }
            p { "Every operation is an entry in an append-only Merkle log (RFC 6962) with signed checkpoints. "
                "Check a receipt offline with " code { "medarena ledger verify" } "." }
            form method="get" action="/ledger" {
                label { "Evidence code" input name="code" value=(query.code.clone().unwrap_or_default()) placeholder="XXXXX-XXXXX-..."; }
                button type="submit" { "Look up" }
            }
            @match &lookup {
                Some(Ok(receipt)) => {
                    h2 { "Receipt " code { (receipt.evidence_code) } }
                    p.ok { "Entry " (receipt.leaf_index) " is in the log; the inclusion proof has " (receipt.inclusion_proof.len()) " hashes." }
                    pre { (receipt.entry) }
                    p { a href={ "/api/ledger/receipts/" (receipt.evidence_code) } { "Download the receipt (JSON)" } }
                }
                Some(Err(err)) => { p.error role="alert" { (err.public_message()) } }
                None => {}
            }
            h2 { "Latest checkpoint (" (size) " entries)" }
            pre.checkpoint { (checkpoint) }
            p { "Verifier key: " code { (key) } }
            h2 { "Recent entries" }
            @for entry in recent.iter().rev() {
                details { summary { (entry.index) " · " (entry.event.kind()) } pre { (entry.to_canonical()) } }
            }
        },
    ))
}

/// `/certificates/{serial}`: a certificate as a printable page, with its JSON to download
/// and how to check it. Shown to whoever may read the certificate (see the API).
async fn certificate_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(serial): Path<String>,
) -> PageResult {
    use medarena_arena::certificate::CertificateSubject;
    let document = state.arena.certificate(&auth.actor, &serial).await?;
    let document = crate::api::with_receipt(&state, document).await;
    let body = &document.body;
    let title = match &body.subject {
        CertificateSubject::Registration(_) => "Dataset registration certificate",
        CertificateSubject::Result(_) => "Competition result certificate",
    };
    let json_href = format!("/api/v1/certificates/{}", body.serial);
    let digest = |hex: &str| html! { code.digest { (hex) } };
    page(layout(
        title,
        &auth,
        html! {
            article.certificate {
                h1 { (title) }
                p.muted { "Serial " strong { (body.serial) } " · issued " (body.issued_at) " by " code { (body.issuer) } }
                @match &body.subject {
                    CertificateSubject::Registration(r) => {
                        dl {
                            dt { "Dataset" } dd { (r.dataset_title) " " code { (r.dataset_slug) } " (" (r.dataset) ")" }
                            dt { "Version" } dd { (if r.versions.is_empty() { "—".to_owned() } else { r.versions.join(", ") }) }
                            dt { "Provider(s)" } dd { @for (i, p) in r.providers.iter().enumerate() { @if i > 0 { ", " } (p.name) " (" (p.org) ")" } }
                            dt { "Review" } dd { strong { (r.review.outcome) } " by " (r.review.reviewer_name) " (" (r.review.reviewer) ") on " (r.review.reviewed_at)
                                @if let Some(note) = &r.review.note { br; "Note: " (note) }
                                @for d in &r.review.checklist { br; (d.item.as_str()) ": " @if d.passed { "passes" } @else { "fails" } " — " (d.note) } }
                        }
                        table.contributions {
                            thead { tr { th { "Contribution" } th { "Hospital" } th { "Manifest version" } th { "Manifest SHA-256" } th { "Content SHA-256" } } }
                            tbody { @for c in &r.contributions {
                                tr { td { (c.contribution) } td { (c.hospital) } td { (c.manifest_version.as_deref().unwrap_or("—")) }
                                    td { @if let Some(m) = &c.manifest_sha256 { (digest(m)) } @else { "—" } } td { (digest(&c.content_sha256)) } }
                            } }
                        }
                    }
                    CertificateSubject::Result(r) => {
                        dl {
                            dt { "Competition" } dd { code { (r.competition_slug) } " (" (r.competition) "), bundle " (digest(&r.bundle_sha256)) }
                            dt { "Team" } dd { (r.team.name) " (" (r.team.org) ")" }
                            dt { "Entry" } dd { (r.submission) ", module " (digest(&r.module_sha256)) }
                            dt { "Rank" } dd { strong { (r.rank) } " of " (r.entries) " on the published private leaderboard" }
                            dt { "Released score (" (r.metric) ")" } dd { (noisy(r.released_score, r.noise_half_width_95))
                                @if r.released_score.is_none() { " (the competition shows ranks only)" } }
                            dt { "Published" } dd { (r.published_at) }
                        }
                        table.datasets {
                            thead { tr { th { "Dataset" } th { "Manifest SHA-256" } th { "Registration" } } }
                            tbody { @for d in &r.datasets {
                                tr { td { code { (d.slug) } " (" (d.dataset) ")" }
                                    td { @for m in &d.manifest_sha256 { (digest(m)) br; } }
                                    td { @if let Some(reg) = &d.registration { (reg.serial) ", body " (digest(&reg.body_sha256)) } @else { "—" } } }
                            } }
                        }
                    }
                }
                h2 { "Proof" }
                dl {
                    dt { "Body SHA-256" } dd { (digest(&document.body_sha256)) }
                    dt { "Ledger entry" } dd {
                        @if let Some(anchor) = &document.anchor {
                            a href={ "/api/ledger/receipts/" (anchor.evidence_code) } { code { (anchor.evidence_code) } }
                        } @else { "not yet written (the JSON carries it once it is)" }
                    }
                }
                pre.signature { (document.signature) }
                p.noprint { a.download href=(json_href) { "Download the certificate (JSON)" } }
                p.noprint.muted { "Check it offline with the platform's key ("
                    a href="/api/ledger/key" { "/api/ledger/key" } "): "
                    code { "medarena ledger verify --certificate medarena-certificate-" (body.serial) ".json --key ledger.pub" }
                    ". Any changed byte is refused." }
            }
        },
    ))
}
