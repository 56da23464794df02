//! The pages in a real browser: headless Chromium driven over WebDriver (chromedriver), on
//! an in-process server with the test cast.
//!
//! - the competition page shows the public leaderboard in rank order and the score chart;
//! - a hospital signs in through the form, opens a dataset, uploads a good table through
//!   the upload form and sees it listed, then uploads a table with PHI and sees the refusal
//!   with the findings table;
//! - screenshots of both pages are saved to `target/browser-screenshots/` and checked: a
//!   PNG of the viewport's size, styled (header colour), not blank, with the chart's points
//!   and the refusal's colours where the page lays them out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`; override with `MEDARENA_CHROMIUM` / `MEDARENA_CHROMEDRIVER`).
//! Without them the test fails, saying how to install them: CI installs them.
mod common;

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fantoccini::{Client, ClientBuilder, Locator};
use medarena_arena::ledger_sink::open_ledger;
use medarena_arena::pipeline::SpecValidator;
use medarena_arena::testing::{
    RecordingAuditSink, ScriptedExecutor, ScriptedValidator, successful_result,
};
use medarena_arena::{
    Arena, ContributionData, Dataset, DatasetUpload, DatasetValidator, JobKind, ManualClock,
    SubmissionId, ValidationOutcome, ValidatorError,
};
use serde_json::{Value, json};

use common::world;

/// How long any one wait in the browser may take.
const WAIT: Duration = Duration::from_secs(20);
const WINDOW: (u32, u32) = (1280, 900);
/// The test cast's dataset (validated by the scripted validator while the cast is built).
const CAST_DATASET: &str = "cardiac-events";
const BAD_UPLOAD: &str = include_str!("../../datasets-spec/examples/heart/bad-upload.csv");

// ---------------------------------------------------------------------------------------
// The browser: chromedriver as a child process, killed (with its Chromium) on drop.

fn program(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "the browser test needs {} (not found at {}). Install Chromium and its WebDriver: \
         `sudo apt-get install -y chromium chromium-driver` (Debian/Ubuntu), or point {env} \
         at the program.",
        Path::new(default)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(default),
        path.display(),
    );
    path
}

/// A running chromedriver in its own process group; dropping it kills the group (the
/// driver and any Chromium it started), even when the test panics.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        use std::os::unix::process::CommandExt;
        let chromedriver = program("MEDARENA_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not listen on port {port} within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole process group: chromedriver and the Chromium processes it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let chromium = program("MEDARENA_CHROMIUM", "/usr/bin/chromium");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                "--force-device-scale-factor=1",
                "--hide-scrollbars",
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no browser session from chromedriver at {}: {e}",
                driver.url
            )
        });
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(WAIT),
            Some(WAIT),
            Some(Duration::ZERO),
        ))
        .await
        .expect("timeouts");
    // Headless Chromium's viewport is smaller than its window: grow the window until the
    // viewport (what screenshots show) is WINDOW.
    let (outer_w, outer_h) = client.get_window_size().await.expect("window size");
    let inner = js(&client, "return [window.innerWidth, window.innerHeight];").await;
    let (inner_w, inner_h) = (
        inner[0].as_u64().expect("innerWidth"),
        inner[1].as_u64().expect("innerHeight"),
    );
    let grow = |outer: u64, inner: u64, want: u32| {
        u32::try_from(outer + u64::from(want) - inner).expect("size")
    };
    client
        .set_window_size(
            grow(outer_w, inner_w, WINDOW.0),
            grow(outer_h, inner_h, WINDOW.1),
        )
        .await
        .expect("resize the window");
    let inner = js(&client, "return [window.innerWidth, window.innerHeight];").await;
    assert_eq!(
        (inner[0].as_u64(), inner[1].as_u64()),
        (Some(u64::from(WINDOW.0)), Some(u64::from(WINDOW.1))),
        "the viewport is {}x{} after resizing the window",
        WINDOW.0,
        WINDOW.1
    );
    client
}

async fn wait_for(client: &Client, css: &str, what: &str) -> fantoccini::elements::Element {
    match client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let url = client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let source = client.source().await.unwrap_or_default();
            panic!("{what}: no `{css}` within {WAIT:?} on {url} ({e}); the page:\n{source}")
        }
    }
}

/// Clicks `element` and waits until the page that held it is gone. A selector present on
/// both the old and the new page would otherwise match the old page, whose elements then go
/// stale under the test while the browser navigates.
async fn click_and_leave(element: fantoccini::elements::Element, what: &str) {
    element
        .clone()
        .click()
        .await
        .unwrap_or_else(|e| panic!("{what}: click: {e}"));
    let start = Instant::now();
    // Any answer but an error means the element is still on a live page.
    while element.tag_name().await.is_ok() {
        assert!(
            start.elapsed() < WAIT,
            "{what}: the page did not change within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("script `{script}`: {e}"))
}

/// The HTTP status of the page the browser shows (Navigation Timing).
async fn status(client: &Client) -> u64 {
    js(
        client,
        "return performance.getEntriesByType('navigation')[0].responseStatus;",
    )
    .await
    .as_u64()
    .expect("a navigation status")
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in client.find_all(Locator::Css(css)).await.expect("find") {
        out.push(element.text().await.expect("text"));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The site: the arena of the shared tests with an executor whose scores the test chooses,
// and the real validator for datasets opened in the browser.

/// The scripted validator for the cast's dataset; datasets-spec's validator (the real one,
/// whose reports carry the findings the page shows) for every other dataset.
struct BrowserValidator {
    scripted: ScriptedValidator,
    real: SpecValidator,
}

#[async_trait]
impl DatasetValidator for BrowserValidator {
    async fn validate(
        &self,
        dataset: &Dataset,
        upload: &DatasetUpload,
        others: &[ContributionData],
    ) -> Result<ValidationOutcome, ValidatorError> {
        if dataset.slug == CAST_DATASET {
            self.scripted.validate(dataset, upload, others).await
        } else {
            self.real.validate(dataset, upload, others).await
        }
    }
}

struct Site {
    _dir: tempfile::TempDir,
    arena: Arena,
    clock: Arc<ManualClock>,
    cast: world::Cast,
    /// Released public score per submission (others get the scripted 0.80).
    scores: Arc<Mutex<HashMap<SubmissionId, f64>>>,
    base: String,
}

impl Site {
    async fn start() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(world::public_phase()));
        let scores: Arc<Mutex<HashMap<SubmissionId, f64>>> = Arc::default();
        let chosen = scores.clone();
        let executor = ScriptedExecutor::new(move |request| {
            let mut result = successful_result(request);
            if request.job.kind == JobKind::RealRun
                && let Some(score) = chosen.lock().expect("scores").get(&request.submission.id)
            {
                result.released_public_score = Some(*score);
                result.exact_public_score = Some(*score);
                result.private_score = Some(*score);
            }
            Ok(result)
        });
        let arena = Arena::builder(world::test_config(dir.path()))
            .executor(Arc::new(executor))
            .validator(Arc::new(BrowserValidator {
                scripted: ScriptedValidator::default(),
                real: SpecValidator::new(5),
            }))
            .audit_sink(Arc::new(RecordingAuditSink::default()))
            .clock(clock.clone())
            .certificate_signer(world::test_signer(dir.path()))
            .open()
            .await
            .expect("open arena");
        let cast = world::cast(&arena, world::EXAMPLE_BUNDLE).await;
        let ledger = Arc::new(open_ledger(dir.path(), "medarena.test/ledger").expect("ledger"));
        let app = medarena_web::router(medarena_web::AppState::new(arena.clone(), ledger));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Site {
            _dir: dir,
            arena,
            clock,
            cast,
            scores,
            base,
        }
    }

    /// Submits a module for the team, scores it `score`, and runs the queue dry.
    async fn scored_submission(&self, team: &medarena_arena::Actor, tag: u32, score: f64) {
        let submission = self
            .arena
            .submit(team, self.cast.competition, &world::module(tag))
            .await
            .expect("submit");
        self.scores
            .lock()
            .expect("scores")
            .insert(submission.id, score);
        let mut ran = 0;
        while self
            .arena
            .run_next_job("browser-test-worker")
            .await
            .expect("run job")
            .is_some()
        {
            ran += 1;
            assert!(ran < 100, "queue does not drain");
        }
        assert!(
            ran >= 2,
            "the dummy and the real run of submission {tag} ran ({ran} jobs)"
        );
        self.clock.advance(Duration::from_secs(3 * 3600));
    }
}

// ---------------------------------------------------------------------------------------
// Screenshots.

struct Shot {
    width: u32,
    height: u32,
    rgb: Vec<[u8; 3]>,
}

impl Shot {
    fn decode(bytes: &[u8], name: &str) -> Shot {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder
            .read_info()
            .unwrap_or_else(|e| panic!("{name}: not a PNG: {e}"));
        let mut buf = vec![0; reader.output_buffer_size().expect("PNG buffer size")];
        let info = reader
            .next_frame(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: PNG does not decode: {e}"));
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("{name}: unexpected PNG colour type {other:?}"),
        };
        let rgb = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Shot {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        self.rgb[(y * self.width + x) as usize]
    }

    /// The pixels of a viewport rectangle (CSS pixels = device pixels: scale factor 1).
    fn region(&self, rect: &Rect) -> Vec<[u8; 3]> {
        let x0 = rect.x.max(0.0) as u32;
        let y0 = rect.y.max(0.0) as u32;
        let x1 = ((rect.x + rect.width) as u32).min(self.width);
        let y1 = ((rect.y + rect.height) as u32).min(self.height);
        assert!(
            x1 > x0 + 10 && y1 > y0 + 10,
            "region {rect:?} is not inside the {}x{} screenshot",
            self.width,
            self.height
        );
        let mut out = Vec::new();
        for y in y0..y1 {
            for x in x0..x1 {
                out.push(self.pixel(x, y));
            }
        }
        out
    }
}

fn distinct(pixels: &[[u8; 3]]) -> usize {
    pixels.iter().collect::<HashSet<_>>().len()
}

fn count(pixels: &[[u8; 3]], colour: [u8; 3]) -> usize {
    pixels.iter().filter(|p| **p == colour).count()
}

fn hex(colour: &str) -> [u8; 3] {
    let v = u32::from_str_radix(colour.trim_start_matches('#'), 16).expect("hex colour");
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[derive(Debug)]
struct Rect {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

/// The element's rectangle in the viewport, after scrolling the window to the top.
async fn viewport_rect(client: &Client, css: &str) -> Rect {
    let rect = js(
        client,
        &format!(
            "window.scrollTo(0, 0);
             const r = document.querySelector({css:?}).getBoundingClientRect();
             return [r.x, r.y, r.width, r.height];"
        ),
    )
    .await;
    let n = |i: usize| rect[i].as_f64().expect("a number");
    Rect {
        x: n(0),
        y: n(1),
        width: n(2),
        height: n(3),
    }
}

/// Takes a screenshot, saves it as `target/browser-screenshots/<name>.png`, and checks it is
/// a PNG of the viewport's size, with the stylesheet's header colour on top and many
/// colours (text, tables, borders), not a blank or unstyled page.
async fn screenshot(client: &Client, name: &str) -> Shot {
    js(client, "window.scrollTo(0, 0); return null;").await;
    let viewport = js(
        client,
        "return [window.innerWidth, window.innerHeight, window.devicePixelRatio];",
    )
    .await;
    let bytes = client.screenshot().await.expect("screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, &bytes).expect("write screenshot");
    let shot = Shot::decode(&bytes, &path.display().to_string());
    assert_eq!(viewport[2].as_f64(), Some(1.0), "device pixel ratio");
    assert_eq!(
        (Some(u64::from(shot.width)), Some(u64::from(shot.height))),
        (viewport[0].as_u64(), viewport[1].as_u64()),
        "{}: the screenshot is the viewport's size",
        path.display()
    );
    assert_eq!(
        (shot.width, shot.height),
        WINDOW,
        "{}: the screenshot has the window's size",
        path.display()
    );
    // The header bar's background is style.css's `#123`: the stylesheet was applied.
    assert_eq!(
        shot.pixel(3, 3),
        hex("#112233"),
        "{}: the header is not styled",
        path.display()
    );
    let colours = distinct(&shot.rgb);
    assert!(
        colours >= 100,
        "{}: only {colours} distinct colours: a blank page?",
        path.display()
    );
    shot
}

// ---------------------------------------------------------------------------------------

#[test]
fn pages_in_a_browser() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let driver = Driver::start();
    rt.block_on(async {
        let site = Site::start().await;
        let client = browser(&driver).await;
        leaderboard(&client, &site).await;
        upload(&client, &site).await;
        certificate(&client, &site).await;
        contract_and_statement(&client, &site).await;
        client.close().await.expect("close the browser session");
    });
    drop(driver);
}

/// Two teams' submissions scored: the public leaderboard lists both, best first, and the
/// chart draws every released score in the team's colour.
async fn leaderboard(client: &Client, site: &Site) {
    // Team Y first and lower; team X later, a worse then a better score (its best counts).
    site.scored_submission(&site.cast.team_y, 1, 0.7421).await;
    site.scored_submission(&site.cast.team_x, 2, 0.6803).await;
    site.scored_submission(&site.cast.team_x, 3, 0.9137).await;

    let url = format!("{}/competitions/{}", site.base, site.cast.competition.0);
    client.goto(&url).await.expect("open the competition page");
    wait_for(client, "table.leaderboard", "the competition page").await;
    assert_eq!(status(client).await, 200);
    let rows = texts(client, "table.leaderboard[data-kind=public] tbody tr").await;
    assert_eq!(
        rows.len(),
        2,
        "two teams on the public leaderboard: {rows:?}"
    );
    assert!(
        rows[0].starts_with("1 Team X 0.9137"),
        "Team X's best score first: {rows:?}"
    );
    assert!(
        rows[1].starts_with("2 Team Y 0.7421"),
        "Team Y second: {rows:?}"
    );
    let points = client
        .find_all(Locator::Css("svg.chart circle"))
        .await
        .expect("chart points");
    assert_eq!(points.len(), 3, "one point per released score");
    let legend = texts(client, "p.legend").await.join(" ");
    assert!(
        legend.contains("Team X") && legend.contains("Team Y"),
        "legend: {legend}"
    );

    // The screenshot, with the table and the chart in view.
    let table = viewport_rect(client, "table.leaderboard").await;
    let chart = viewport_rect(client, "svg.chart").await;
    let height = js(client, "return window.innerHeight;")
        .await
        .as_f64()
        .expect("height");
    assert!(
        table.y > 0.0 && chart.y + chart.height <= height,
        "the leaderboard and the chart fit in the first screen (table at {table:?}, chart at \
         {chart:?}, viewport height {height})"
    );
    let shot = screenshot(client, "leaderboard").await;
    let table_pixels = shot.region(&table);
    assert!(
        distinct(&table_pixels) >= 20
            && table_pixels
                .iter()
                .filter(|p| p.iter().all(|c| *c < 110))
                .count()
                >= 200,
        "the leaderboard region has text ({} colours)",
        distinct(&table_pixels)
    );
    let chart_pixels = shot.region(&chart);
    // The first two team colours of the chart (pages.rs), at the points' centres.
    for colour in ["#1f77b4", "#d62728"] {
        assert!(
            count(&chart_pixels, hex(colour)) >= 10,
            "the chart shows points in {colour}"
        );
    }
}

/// The hospital (signed in by `upload`) follows its approved dataset's link to the
/// registration certificate: a printable page naming the dataset, its providers and the
/// proof, with the JSON to download; printing leaves the navigation out.
async fn certificate(client: &Client, site: &Site) {
    let url = format!("{}/datasets/{}", site.base, site.cast.dataset.0);
    client.goto(&url).await.expect("open the dataset page");
    wait_for(client, "p.certificate a", "the certificate link").await;
    client
        .find(Locator::Css("p.certificate a"))
        .await
        .expect("the link")
        .click()
        .await
        .expect("follow it");
    wait_for(client, "article.certificate", "the certificate page").await;
    assert_eq!(status(client).await, 200);
    let serial = format!("reg-{}", site.cast.dataset.0);
    let heading = texts(client, "article.certificate h1").await.join(" ");
    assert_eq!(heading, "Dataset registration certificate");
    let text = texts(client, "article.certificate").await.join(" ");
    for expected in [
        serial.as_str(),
        "Hospital A",
        "Hospital B",
        "approved",
        "medarena certificate v1",
    ] {
        assert!(
            text.contains(expected),
            "the page shows `{expected}`: {text}"
        );
    }
    let download = client
        .find(Locator::Css("article.certificate a.download"))
        .await
        .expect("the download link")
        .attr("href")
        .await
        .expect("href");
    assert_eq!(
        download.as_deref(),
        Some(format!("/api/v1/certificates/{serial}").as_str())
    );
    // Printing hides the navigation, the footer and the download hints.
    let print_rule = js(
        client,
        "for (const sheet of document.styleSheets) for (const rule of sheet.cssRules) \
         if (rule.media && rule.media.mediaText === 'print' && rule.cssText.includes('.noprint')) \
         return true; return false;",
    )
    .await;
    assert_eq!(
        print_rule,
        Value::Bool(true),
        "a print stylesheet for the certificate"
    );
    let article = viewport_rect(client, "article.certificate").await;
    let shot = screenshot(client, "certificate").await;
    let pixels = shot.region(&article);
    assert!(
        distinct(&pixels) >= 20,
        "the certificate region has text ({} colours)",
        distinct(&pixels)
    );
}

/// The hospital (signed in by `upload`) finds a contract proposed for team X among its
/// contracts, reads its terms and accepts them with the page's button; then its statement
/// lists the metered runs of the leaderboard's submissions, with totals and downloads.
async fn contract_and_statement(client: &Client, site: &Site) {
    let organizer = world::sign_in(&site.arena, "org@medarena.test").await.0;
    let proposed = site
        .arena
        .propose_contract(
            &organizer,
            &medarena_arena::ContractProposal {
                team: Some(site.cast.team_x_org),
                quote: Some(medarena_arena::contract::Quote {
                    currency: "EUR".to_owned(),
                    per_run: "2.50".parse().expect("price"),
                    per_cpu_second: "0".parse().expect("price"),
                    per_epsilon: "10".parse().expect("price"),
                }),
                ..world::test_contract(site.cast.competition)
            },
        )
        .await
        .expect("propose");
    client
        .goto(&format!("{}/contracts", site.base))
        .await
        .expect("open /contracts");
    let link = format!("a[href='/contracts/{}']", proposed.id.0);
    wait_for(client, &link, "the proposed contract in the list").await;
    client
        .find(Locator::Css(&link))
        .await
        .expect("the link")
        .click()
        .await
        .expect("follow it");
    wait_for(client, "form.contract button", "the accept button").await;
    let terms = texts(client, "dl").await.join(" ");
    assert!(
        terms.contains("EUR 2.50 per run") && terms.contains(&proposed.terms_sha256),
        "the terms and their digest are shown before accepting: {terms}"
    );
    let button = texts(client, "form.contract button").await;
    // A party hospital may accept or terminate a proposed contract; the first form accepts.
    assert_eq!(button, ["Accept these terms", "Terminate"], "{button:?}");
    let accept = client
        .find(Locator::Css("form.contract button"))
        .await
        .expect("the button");
    click_and_leave(accept, "accept").await;
    wait_for(client, "h2", "the contract page again").await;
    let parties = texts(client, "table tbody tr").await;
    let hospital_a = parties
        .iter()
        .find(|row| row.contains(&format!("hospital {}", site.cast.hospital_a_org)))
        .cloned()
        .unwrap_or_default();
    assert!(
        !hospital_a.contains("awaited"),
        "hospital A's acceptance is recorded: {parties:?}"
    );
    let accepted = site
        .arena
        .contract(&organizer, proposed.id)
        .await
        .expect("contract");
    assert!(
        accepted
            .contract
            .accepted(medarena_arena::contract::Party::Hospital {
                org: site.cast.hospital_a_org
            })
    );

    // The statement: the leaderboard's real runs, metered under the cast's open offer.
    client
        .goto(&format!("{}/statement", site.base))
        .await
        .expect("open /statement");
    wait_for(client, "h1", "the statement page").await;
    let lines = texts(client, "table tbody tr").await;
    assert_eq!(lines.len(), 3, "three released real runs: {lines:?}");
    let totals = texts(client, "ul li").await.join(" ");
    assert!(totals.contains("3 run(s)"), "{totals}");
    let csv = client
        .find(Locator::LinkText("CSV"))
        .await
        .expect("the CSV link")
        .attr("href")
        .await
        .expect("href");
    assert_eq!(csv.as_deref(), Some("/api/v1/statement.csv"));
    let table = viewport_rect(client, "table").await;
    let shot = screenshot(client, "statement").await;
    assert!(
        distinct(&shot.region(&table)) >= 10,
        "the statement table is drawn"
    );
}

/// A hospital signs in, opens a dataset, uploads a good table (listed) and a table with
/// PHI (refused, with the findings; no value of the file on the page).
async fn upload(client: &Client, site: &Site) {
    let files = tempfile::tempdir().expect("tempdir");
    let manifest = files.path().join("manifest.yaml");
    let good = files.path().join("hospital-a.csv");
    let bad = files.path().join("with-phone-numbers.csv");
    std::fs::write(&manifest, medarena_arena::demo::HEART_MANIFEST).expect("write");
    std::fs::write(&good, medarena_arena::demo::HOSPITAL_A_CSV).expect("write");
    std::fs::write(&bad, BAD_UPLOAD).expect("write");

    // Sign in through the form.
    client
        .goto(&format!("{}/login", site.base))
        .await
        .expect("open /login");
    wait_for(client, "input[name=email]", "the sign-in form").await;
    client
        .find(Locator::Css("input[name=email]"))
        .await
        .expect("e-mail field")
        .send_keys("a@hospital-a.test")
        .await
        .expect("type the e-mail");
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys(world::PASSWORD)
        .await
        .expect("type the password");
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("sign in");
    wait_for(client, "form.inline[action='/logout']", "signed in").await;
    let cookies = client.get_all_cookies().await.expect("cookies");
    assert!(
        cookies.iter().any(|c| c.name() == "medarena_session"),
        "the session cookie is set"
    );

    // Open a dataset through the form on /datasets.
    client
        .find(Locator::Css("nav a[href='/datasets']"))
        .await
        .expect("the Datasets link for a hospital")
        .click()
        .await
        .expect("open /datasets");
    wait_for(client, "input[name=slug]", "the new-dataset form").await;
    for (field, value) in [
        ("slug", "heart-browser"),
        ("title", "Heart (browser test)"),
        ("description", "Chest-pain admissions, one-year outcome"),
    ] {
        client
            .find(Locator::Css(&format!("[name={field}]")))
            .await
            .expect("dataset field")
            .send_keys(value)
            .await
            .expect("type");
    }
    client
        .find(Locator::Css("form[action='/datasets'] button[type=submit]"))
        .await
        .expect("create button")
        .click()
        .await
        .expect("create the dataset");
    wait_for(client, "form.upload", "the new dataset's page").await;
    let dataset_url = client.current_url().await.expect("url").to_string();
    assert!(
        dataset_url.contains("/datasets/"),
        "on the dataset page: {dataset_url}"
    );
    assert!(
        client
            .source()
            .await
            .expect("source")
            .contains("Heart (browser test)"),
        "the dataset page names the dataset"
    );

    // A good table: accepted and listed.
    upload_files(client, &manifest, &good).await;
    let listed = wait_for(client, "div.contribution h3", "the accepted upload").await;
    assert_eq!(
        status(client).await,
        200,
        "the accepted upload redirects to the dataset"
    );
    let heading = listed.text().await.expect("text");
    assert!(
        heading.contains("hospital-a.csv") && heading.contains("validated"),
        "the contribution is listed as validated: {heading}"
    );
    assert!(
        client.find(Locator::Css("div.error")).await.is_err(),
        "no refusal for the good table"
    );
    assert!(
        client.source().await.expect("source").contains("600 rows"),
        "the contribution's row count is shown"
    );

    // A table with phone numbers and free text: refused, with the report.
    upload_files(client, &manifest, &bad).await;
    wait_for(client, "div.error table.report", "the refusal's report").await;
    assert_eq!(status(client).await, 422, "a refused upload is a 422");
    let refusal = texts(client, "div.error").await.join("\n");
    assert!(refusal.contains("Upload refused"), "{refusal}");
    assert!(refusal.contains("with-phone-numbers.csv"), "{refusal}");
    let rules = texts(client, "div.error table.report tbody tr td:nth-child(2)").await;
    assert!(
        rules.iter().any(|r| r.starts_with("phi.")),
        "a PHI finding in the report: {rules:?}"
    );
    let phone_row = texts(client, "div.error table.report tbody tr").await;
    assert!(
        phone_row.iter().any(|r| r.contains("phone")),
        "the report names the phone column: {phone_row:?}"
    );
    let page = client.source().await.expect("source");
    assert!(
        !page.contains("13503610580") && !page.contains("follow-up arranged"),
        "the page shows no value of the refused file"
    );
    // The accepted table stays listed below the refusal.
    assert!(
        texts(client, "div.contribution h3")
            .await
            .iter()
            .any(|h| h.contains("hospital-a.csv")),
        "the accepted contribution is still listed"
    );

    let report = viewport_rect(client, "div.error").await;
    let shot = screenshot(client, "upload-refused").await;
    let pixels = shot.region(&report);
    assert!(
        count(&pixels, hex("#fff3f3")) >= 1000,
        "the refusal box has its pink background"
    );
    assert!(
        count(&pixels, hex("#fff0f0")) >= 100,
        "the report's error rows are highlighted"
    );
    assert!(
        pixels
            .iter()
            .filter(|[r, g, b]| *r > 120 && *g < 60 && *b < 60)
            .count()
            >= 50,
        "the refusal's text is red"
    );
}

async fn upload_files(client: &Client, manifest: &Path, data: &Path) {
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    client
        .find(Locator::Css("form.upload input[name=manifest]"))
        .await
        .expect("manifest input")
        .send_keys(&path(manifest))
        .await
        .expect("choose the manifest");
    client
        .find(Locator::Css("form.upload input[name=data]"))
        .await
        .expect("table input")
        .send_keys(&path(data))
        .await
        .expect("choose the table");
    client
        .find(Locator::Css("form.upload button[type=submit]"))
        .await
        .expect("upload button")
        .click()
        .await
        .expect("upload");
}
